#include "lowbit/model/llama.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <utility>

#include <Eigen/Core>

#include "lowbit/error.hpp"
#include "lowbit/io/llama_config.hpp"
#include "lowbit/kernels/gemm.hpp"
#include "lowbit/quant/ggml.hpp"

namespace lowbit::model {

namespace {

std::string shape_string(const std::vector<std::size_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

const NamedTensor& find_tensor(std::span<const NamedTensor> tensors, const std::string& name,
                               std::vector<std::size_t> shape) {
  for (const NamedTensor& t : tensors) {
    if (t.name != name) continue;
    std::size_t count = 1;
    for (std::size_t d : shape) count *= d;
    if (t.shape != shape || t.data.size() != count)
      throw invalid_argument("llama model: expected shape " + shape_string(shape) + " with " +
                                 std::to_string(count) + " values, got " +
                                 std::to_string(t.data.size()),
                             {"", name, t.shape});
    return t;
  }
  throw invalid_argument("llama model: tensor is missing", {"", name, shape});
}

/// Quantized linear weights by name, taken out as the layers are built.
using QuantizedByName = std::map<std::string, QuantizedMatrix, std::less<>>;

Linear make_linear(std::span<const NamedTensor> tensors, QuantizedByName& quantized,
                   const std::string& name, std::size_t rows, std::size_t cols) {
  const auto found = quantized.find(name);
  if (found == quantized.end())
    return Linear(find_tensor(tensors, name, {rows, cols}).data, rows, cols);
  QuantizedMatrix matrix = std::move(found->second);
  quantized.erase(found);
  if (matrix.rows() != rows || matrix.cols() != cols)
    throw invalid_argument(
        "llama model: expected a quantized weight of shape " + shape_string({rows, cols}),
        {"", name, {matrix.rows(), matrix.cols()}});
  for (const NamedTensor& t : tensors)
    if (t.name == name)
      throw invalid_argument("llama model: weight given both as floats and quantized",
                             {"", name, {}});
  return Linear(std::move(matrix));
}

void rmsnorm(std::span<float> out, std::span<const float> x, std::span<const float> weight,
             float eps) {
  float ss = 0.0f;
  for (float v : x) ss += v * v;
  ss = 1.0f / std::sqrt(ss / static_cast<float>(x.size()) + eps);
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = weight[i] * (ss * x[i]);
}

/// y += bias, when the layer has one.
void add_bias(std::span<float> y, const std::vector<float>& bias) {
  if (bias.empty()) return;
  for (std::size_t i = 0; i < y.size(); ++i) y[i] += bias[i];
}

/// An RMSNorm over each head of `heads` (Qwen3's q_norm and k_norm), in place.
void normalize_heads(std::span<float> heads, std::size_t head_size,
                     const std::vector<float>& weight, float eps) {
  if (weight.empty()) return;
  for (std::size_t offset = 0; offset < heads.size(); offset += head_size) {
    const std::span<float> head = heads.subspan(offset, head_size);
    rmsnorm(head, head, weight, eps);
  }
}

/// Rotates each head of `heads` by the angles whose cos and sin are given (one per pair): pairs
/// (2i, 2i + 1) in the adjacent style, (i, i + head_size / 2) in the rotate-half style.
void rotate_heads(std::span<float> heads, std::size_t head_size, std::span<const float> cos,
                  std::span<const float> sin, io::RopeStyle style) {
  const std::size_t half = head_size / 2;
  for (std::size_t offset = 0; offset < heads.size(); offset += head_size) {
    float* head = heads.data() + offset;
    for (std::size_t i = 0; i < half; ++i) {
      float& a = style == io::RopeStyle::adjacent ? head[2 * i] : head[i];
      float& b = style == io::RopeStyle::adjacent ? head[2 * i + 1] : head[i + half];
      const float a0 = a, b0 = b;
      a = a0 * cos[i] - b0 * sin[i];
      b = a0 * sin[i] + b0 * cos[i];
    }
  }
}

void softmax(std::span<float> x) {
  const float max = *std::max_element(x.begin(), x.end());
  float sum = 0.0f;
  for (float& v : x) {
    v = std::exp(v - max);
    sum += v;
  }
  for (float& v : x) v /= sum;
}

}  // namespace

Linear::Linear(std::vector<float> weights, std::size_t rows, std::size_t cols)
    : weights_(std::move(weights)), rows_(rows), cols_(cols) {
  if (weights_.size() != rows * cols)
    throw invalid_argument("linear: " + std::to_string(weights_.size()) + " weights for a [" +
                           std::to_string(rows) + ", " + std::to_string(cols) + "] matrix");
}

Linear::Linear(QuantizedMatrix quantized, ActivationQuantization activations,
               float outlier_threshold)
    : rows_(quantized.rows()),
      cols_(quantized.cols()),
      quantized_(std::make_shared<const QuantizedMatrix>(std::move(quantized))),
      dequantized_(std::make_shared<DequantizedWeights>()),
      activations_(activations),
      outlier_threshold_(outlier_threshold) {
  prepared_ = kernels::default_backend().prepare(
      quantized_, kernels::PrepareOptions{activations_, outlier_threshold_});
}

MatrixView<const float> Linear::weights() const {
  if (!quantized_) return {weights_.data(), rows_, cols_};
  // In the inputs' own basis (a rotated matrix is rotated back once here).
  std::call_once(dequantized_->once,
                 [this] { dequantized_->values = quantized_->dequantize_unrotated(); });
  return {dequantized_->values.data(), rows_, cols_};
}

namespace {

/// A dot product with eight independent partial sums: the compiler vectorizes it without
/// -ffast-math (the summation order is written out), and it is as exact as the plain loop.
float dot(const float* a, const float* b, std::size_t n) noexcept {
  constexpr std::size_t lanes = 8;
  float partial[lanes] = {};
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes)
    for (std::size_t l = 0; l < lanes; ++l) partial[l] += a[i + l] * b[i + l];
  float sum = 0.0f;
  for (std::size_t l = 0; l < lanes; ++l) sum += partial[l];
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace

void linear(const Linear& layer, std::span<const float> x, std::span<float> y) {
  if (x.size() != layer.cols() || y.size() != layer.rows())
    throw invalid_argument("linear: x has " + std::to_string(x.size()) + " values and y " +
                           std::to_string(y.size()) + " for a [" + std::to_string(layer.rows()) +
                           ", " + std::to_string(layer.cols()) + "] weight");
  if (const kernels::PreparedMatrix* prepared = layer.prepared()) {
    kernels::gemm(*prepared, MatrixView<const float>(x.data(), 1, x.size()),
                  MatrixView<float>(y.data(), 1, y.size()));
    return;
  }
  const MatrixView<const float> w = layer.weights();
  const auto rows = static_cast<std::ptrdiff_t>(w.rows);
#pragma omp parallel for schedule(static) if (w.size() >= (std::size_t{1} << 18))
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    y[static_cast<std::size_t>(r)] =
        dot(w.row(static_cast<std::size_t>(r)).data(), x.data(), w.cols);
  }
}

void linear(const Linear& layer, MatrixView<const float> x, MatrixView<float> y) {
  if (x.cols != layer.cols() || y.cols != layer.rows() || x.rows != y.rows)
    throw invalid_argument("linear: x is " + detail::shape_text(x.rows, x.cols) + " and y " +
                           detail::shape_text(y.rows, y.cols) + " for a " +
                           detail::shape_text(layer.rows(), layer.cols()) + " weight");
  if (x.rows == 1) {
    linear(layer, x.row(0), y.row(0));
    return;
  }
  if (const kernels::PreparedMatrix* prepared = layer.prepared()) {
    kernels::gemm(*prepared, x, y);
    return;
  }
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Stride = Eigen::OuterStride<>;
  const MatrixView<const float> w = layer.weights();
  const Eigen::Map<const RowMajor> weights(w.data, static_cast<Eigen::Index>(w.rows),
                                           static_cast<Eigen::Index>(w.cols));
  const Eigen::Map<const RowMajor, 0, Stride> inputs(
      x.data, static_cast<Eigen::Index>(x.rows), static_cast<Eigen::Index>(x.cols),
      Stride(static_cast<Eigen::Index>(x.row_stride)));
  Eigen::Map<RowMajor, 0, Stride> outputs(y.data, static_cast<Eigen::Index>(y.rows),
                                          static_cast<Eigen::Index>(y.cols),
                                          Stride(static_cast<Eigen::Index>(y.row_stride)));
  outputs.noalias() = inputs * weights.transpose();
}

std::vector<float> rope_inverse_frequencies(const LlamaConfig& config) {
  const auto head_size = static_cast<std::size_t>(config.head_size());
  std::vector<float> inv_freq(head_size / 2);
  for (std::size_t i = 0; i < inv_freq.size(); ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_size);
    inv_freq[i] = 1.0f / std::pow(config.rope_theta, exponent);
  }
  const io::RopeScaling& r = config.rope_scaling;
  if (r.type != io::RopeScalingType::llama3) return inv_freq;
  // transformers' _compute_llama3_parameters on float32 tensors: every operation in float, its
  // Python scalars rounded to float where they meet a tensor.
  const auto old_context = static_cast<float>(r.original_max_position_embeddings);
  const auto low_freq_wavelen = static_cast<float>(
      static_cast<double>(r.original_max_position_embeddings) / r.low_freq_factor);
  const auto high_freq_wavelen = static_cast<float>(
      static_cast<double>(r.original_max_position_embeddings) / r.high_freq_factor);
  const auto band = static_cast<float>(static_cast<double>(r.high_freq_factor) - r.low_freq_factor);
  const auto two_pi = static_cast<float>(2.0 * 3.14159265358979323846);
  for (float& f : inv_freq) {
    const float wavelen = two_pi / f;
    // Long wavelengths: divided by factor; short ones kept; between them, a smooth ramp.
    float scaled = wavelen > low_freq_wavelen ? f / r.factor : f;
    if (!(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen)) {
      const float smooth = (old_context / wavelen - r.low_freq_factor) / band;
      scaled = (1.0f - smooth) * scaled / r.factor + smooth * scaled;
    }
    f = scaled;
  }
  return inv_freq;
}

LlamaModel::LlamaModel(const LlamaConfig& config, std::span<const NamedTensor> tensors)
    : LlamaModel(config, tensors, {}) {}

LlamaModel::LlamaModel(const LlamaConfig& config, std::span<const NamedTensor> tensors,
                       std::vector<NamedQuantized> quantized_weights)
    : config_(config) {
  QuantizedByName quantized;
  for (NamedQuantized& q : quantized_weights)
    if (!quantized.emplace(q.name, std::move(q.matrix)).second)
      throw invalid_argument("llama model: quantized weight given twice", {"", q.name, {}});
  const LlamaConfig& c = config_;
  if (const std::string problem = io::llama_config_problem(c); !problem.empty())
    throw invalid_argument("llama model: config: " + problem);
  const auto dim = static_cast<std::size_t>(c.dim);
  const auto hidden = static_cast<std::size_t>(c.hidden_dim);
  const auto q_dim = static_cast<std::size_t>(c.q_dim());
  const auto kv_dim = static_cast<std::size_t>(c.kv_dim());
  const auto head_size = static_cast<std::size_t>(c.head_size());
  const auto vocab = static_cast<std::size_t>(c.vocab_size);
  const auto n_layers = static_cast<std::size_t>(c.n_layers);

  embedding_ = find_tensor(tensors, "tok_embeddings.weight", {vocab, dim}).data;
  layers_.resize(n_layers);
  for (std::size_t l = 0; l < n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    Layer& layer = layers_[l];
    layer.attention_norm = find_tensor(tensors, p + "attention_norm.weight", {dim}).data;
    layer.ffn_norm = find_tensor(tensors, p + "ffn_norm.weight", {dim}).data;
    layer.wq = make_linear(tensors, quantized, p + "attention.wq.weight", q_dim, dim);
    layer.wk = make_linear(tensors, quantized, p + "attention.wk.weight", kv_dim, dim);
    layer.wv = make_linear(tensors, quantized, p + "attention.wv.weight", kv_dim, dim);
    layer.wo = make_linear(tensors, quantized, p + "attention.wo.weight", dim, q_dim);
    layer.w1 = make_linear(tensors, quantized, p + "feed_forward.w1.weight", hidden, dim);
    layer.w2 = make_linear(tensors, quantized, p + "feed_forward.w2.weight", dim, hidden);
    layer.w3 = make_linear(tensors, quantized, p + "feed_forward.w3.weight", hidden, dim);
    if (c.qkv_bias) {
      layer.bq = find_tensor(tensors, p + "attention.wq.bias", {q_dim}).data;
      layer.bk = find_tensor(tensors, p + "attention.wk.bias", {kv_dim}).data;
      layer.bv = find_tensor(tensors, p + "attention.wv.bias", {kv_dim}).data;
    }
    if (c.output_bias) layer.bo = find_tensor(tensors, p + "attention.wo.bias", {dim}).data;
    if (c.qk_norm) {
      layer.q_norm = find_tensor(tensors, p + "attention.q_norm.weight", {head_size}).data;
      layer.k_norm = find_tensor(tensors, p + "attention.k_norm.weight", {head_size}).data;
    }
  }
  final_norm_ = find_tensor(tensors, "norm.weight", {dim}).data;
  // A shared classifier multiplies the embedding; it may be given quantized (a GGUF's embedding
  // blocks, what llama.cpp multiplies) while the lookup keeps the float embedding.
  classifier_ = c.shared_classifier && quantized.count("output.weight") == 0
                    ? Linear(embedding_, vocab, dim)
                    : make_linear(tensors, quantized, "output.weight", vocab, dim);
  if (!quantized.empty())
    throw invalid_argument("llama model: no linear layer of this name for a quantized weight",
                           {"", quantized.begin()->first, {}});
  inv_freq_ = rope_inverse_frequencies(c);

  // The KV cache starts empty and grows with the positions forward() reaches.
  key_cache_.resize(n_layers);
  value_cache_.resize(n_layers);
  reserve_batch(1);
}

void LlamaModel::reserve_positions(std::size_t positions) {
  if (positions <= cached_positions_) return;
  // Doubling keeps the copies amortized O(1) a position; never past seq_len.
  const std::size_t grown =
      std::min<std::size_t>(std::max<std::size_t>(positions, 2 * cached_positions_),
                            static_cast<std::size_t>(config_.seq_len));
  const auto kv_dim = static_cast<std::size_t>(config_.kv_dim());
  for (std::size_t l = 0; l < key_cache_.size(); ++l) {
    key_cache_[l].resize(grown * kv_dim, 0.0f);
    value_cache_[l].resize(grown * kv_dim, 0.0f);
  }
  cached_positions_ = grown;
}

std::vector<std::string> LlamaModel::linear_names() const {
  std::vector<std::string> names;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    for (const char* n : {"attention.wq.weight", "attention.wk.weight", "attention.wv.weight",
                          "attention.wo.weight", "feed_forward.w1.weight", "feed_forward.w2.weight",
                          "feed_forward.w3.weight"})
      names.push_back(p + n);
  }
  names.push_back("output.weight");
  return names;
}

void LlamaModel::set_input_observer(InputObserver observer) {
  observer_ = std::move(observer);
  observed_names_.clear();
  if (!observer_) return;
  // Names built once, not on every forward pass: the linear_names() order, 7 per layer.
  observed_names_ = linear_names();
}

void LlamaModel::observe(std::size_t layer, std::initializer_list<std::size_t> linears,
                         std::span<const float> input) {
  if (!observer_) return;
  // Indices into a layer's names, in linear_names() order: wq wk wv wo w1 w2 w3.
  for (std::size_t k : linears) observer_(observed_names_[layer * 7 + k], input);
}

Linear* LlamaModel::find_linear(const std::string& name) {
  if (name == "output.weight") return &classifier_;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    if (name.rfind(p, 0) != 0) continue;
    const std::string rest = name.substr(p.size());
    Layer& layer = layers_[l];
    if (rest == "attention.wq.weight") return &layer.wq;
    if (rest == "attention.wk.weight") return &layer.wk;
    if (rest == "attention.wv.weight") return &layer.wv;
    if (rest == "attention.wo.weight") return &layer.wo;
    if (rest == "feed_forward.w1.weight") return &layer.w1;
    if (rest == "feed_forward.w2.weight") return &layer.w2;
    if (rest == "feed_forward.w3.weight") return &layer.w3;
  }
  return nullptr;
}

const Linear& LlamaModel::linear_layer(const std::string& name) const {
  const Linear* layer = const_cast<LlamaModel*>(this)->find_linear(name);
  if (!layer) throw invalid_argument("llama model: no linear layer of this name", {"", name, {}});
  return *layer;
}

void LlamaModel::set_linear(const std::string& name, QuantizedMatrix weights) {
  Linear* layer = find_linear(name);
  if (!layer) throw invalid_argument("llama model: no linear layer of this name", {"", name, {}});
  if (weights.rows() != layer->rows() || weights.cols() != layer->cols())
    throw invalid_argument("llama model: replacement weight has the wrong shape",
                           {"", name, {weights.rows(), weights.cols()}});
  *layer = Linear(std::move(weights));
}

void LlamaModel::set_linear(const std::string& name, Linear replacement) {
  Linear* layer = find_linear(name);
  if (!layer) throw invalid_argument("llama model: no linear layer of this name", {"", name, {}});
  if (replacement.rows() != layer->rows() || replacement.cols() != layer->cols())
    throw invalid_argument("llama model: replacement weight has the wrong shape",
                           {"", name, {replacement.rows(), replacement.cols()}});
  *layer = std::move(replacement);
}

std::span<float> LlamaModel::norm_weight(const std::string& name) {
  if (name == "norm.weight") return final_norm_;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    if (name == p + "attention_norm.weight") return layers_[l].attention_norm;
    if (name == p + "ffn_norm.weight") return layers_[l].ffn_norm;
    if (config_.qk_norm && name == p + "attention.q_norm.weight") return layers_[l].q_norm;
    if (config_.qk_norm && name == p + "attention.k_norm.weight") return layers_[l].k_norm;
  }
  throw invalid_argument("llama model: no norm of this name", {"", name, {}});
}

void LlamaModel::reserve_batch(std::size_t batch) {
  if (batch <= batch_capacity_) return;
  const LlamaConfig& c = config_;
  const auto dim = static_cast<std::size_t>(c.dim);
  const auto hidden = static_cast<std::size_t>(c.hidden_dim);
  const auto q_dim = static_cast<std::size_t>(c.q_dim());
  const auto kv_dim = static_cast<std::size_t>(c.kv_dim());
  x_.resize(batch * dim);
  xb_.resize(batch * dim);
  xb2_.resize(batch * dim);
  hb_.resize(batch * hidden);
  hb2_.resize(batch * hidden);
  q_.resize(batch * q_dim);
  k_.resize(batch * kv_dim);
  v_.resize(batch * kv_dim);
  attention_out_.resize(batch * q_dim);
  rope_cos_.resize(batch * inv_freq_.size());
  rope_sin_.resize(batch * inv_freq_.size());
  logits_.resize(batch * static_cast<std::size_t>(c.vocab_size));
  batch_capacity_ = batch;
}

namespace {

/// Row `row` of a [rows, width] row-major buffer.
std::span<float> row_of(std::vector<float>& buffer, std::size_t width, std::size_t row) {
  return {buffer.data() + row * width, width};
}

/// Whether a loop of `work` multiply-adds is worth starting threads for.
bool worth_threads(std::size_t work) noexcept { return work >= (std::size_t{1} << 16); }

}  // namespace

void LlamaModel::set_rotary_angles(std::size_t start_position, std::size_t batch) {
  const std::size_t half = inv_freq_.size();
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(start_position + b) * inv_freq_[i];
      rope_cos_[b * half + i] = std::cos(angle);
      rope_sin_[b * half + i] = std::sin(angle);
    }
}

void LlamaModel::attention_block(std::size_t l, std::size_t start, std::size_t batch) {
  const LlamaConfig& c = config_;
  Layer& layer = layers_[l];
  const auto dim = static_cast<std::size_t>(c.dim);
  const auto q_dim = static_cast<std::size_t>(c.q_dim());
  const auto kv_dim = static_cast<std::size_t>(c.kv_dim());
  const auto head_size = static_cast<std::size_t>(c.head_size());
  const auto n_heads = static_cast<std::size_t>(c.n_heads);
  const auto kv_mul = static_cast<std::size_t>(c.n_heads / c.n_kv_heads);
  const std::size_t half = inv_freq_.size();
  const float inv_sqrt_head = 1.0f / std::sqrt(static_cast<float>(head_size));

  for (std::size_t b = 0; b < batch; ++b)
    rmsnorm(row_of(xb_, dim, b), row_of(x_, dim, b), layer.attention_norm, c.norm_eps);
  if (observer_)
    for (std::size_t b = 0; b < batch; ++b) observe(l, {0, 1, 2}, row_of(xb_, dim, b));
  const MatrixView<const float> xb(xb_.data(), batch, dim);
  multiply(layer.wq, xb, MatrixView<float>(q_.data(), batch, q_dim));
  multiply(layer.wk, xb, MatrixView<float>(k_.data(), batch, kv_dim));
  multiply(layer.wv, xb, MatrixView<float>(v_.data(), batch, kv_dim));
  for (std::size_t b = 0; b < batch; ++b) {
    const std::span<float> q = row_of(q_, q_dim, b), k = row_of(k_, kv_dim, b);
    const std::span<float> v = row_of(v_, kv_dim, b);
    add_bias(q, layer.bq);
    add_bias(k, layer.bk);
    add_bias(v, layer.bv);
    normalize_heads(q, head_size, layer.q_norm, c.norm_eps);
    normalize_heads(k, head_size, layer.k_norm, c.norm_eps);
    const std::span<const float> cos(rope_cos_.data() + b * half, half);
    const std::span<const float> sin(rope_sin_.data() + b * half, half);
    rotate_heads(q, head_size, cos, sin, c.rope_style);
    rotate_heads(k, head_size, cos, sin, c.rope_style);
  }
  // llama.cpp keeps its KV cache in fp16 and multiplies fp16 queries and attention weights with
  // it: rounded the same way when asked to compute as it does.
  if (ggml_activation_rounding_)
    for (std::vector<float>* values : {&q_, &k_, &v_})
      round_activations_as_ggml(
          GgmlType::f16,
          std::span<float>(values->data(), batch * (values == &q_ ? q_dim : kv_dim)));
  // The batch's keys and values join the cache before any row attends: row b sees positions up to
  // start + b, those of the earlier rows included.
  std::copy_n(k_.begin(), batch * kv_dim,
              key_cache_[l].begin() + static_cast<std::ptrdiff_t>(start * kv_dim));
  std::copy_n(v_.begin(), batch * kv_dim,
              value_cache_[l].begin() + static_cast<std::ptrdiff_t>(start * kv_dim));

  // Grouped-query attention: query head h reads key/value head h / kv_mul, over the positions up
  // to the row's own (the last sliding_window of them when the config sets one). Rows and heads
  // are independent tasks.
  const auto window = static_cast<std::size_t>(c.sliding_window);
  const float* keys = key_cache_[l].data();
  const float* values = value_cache_[l].data();
  const std::size_t end = start + batch;
  const auto tasks = static_cast<std::ptrdiff_t>(batch * n_heads);
#pragma omp parallel if (worth_threads(batch * n_heads * end * head_size))
  {
    std::vector<float> scores(end);
#pragma omp for schedule(dynamic, 4)
    for (std::ptrdiff_t task = 0; task < tasks; ++task) {
      const std::size_t b = static_cast<std::size_t>(task) / n_heads;
      const std::size_t h = static_cast<std::size_t>(task) % n_heads;
      const std::size_t pos = start + b;
      const std::size_t first = window > 0 && pos + 1 > window ? pos + 1 - window : 0;
      const float* q = q_.data() + b * q_dim + h * head_size;
      const std::size_t kv_offset = (h / kv_mul) * head_size;
      const std::span<float> att(scores.data(), pos + 1 - first);
      for (std::size_t t = first; t <= pos; ++t)
        att[t - first] = dot(q, keys + t * kv_dim + kv_offset, head_size) * inv_sqrt_head;
      softmax(att);
      if (ggml_activation_rounding_) round_activations_as_ggml(GgmlType::f16, att);
      float* out = attention_out_.data() + b * q_dim + h * head_size;
      std::fill_n(out, head_size, 0.0f);
      for (std::size_t t = first; t <= pos; ++t) {
        const float* v = values + t * kv_dim + kv_offset;
        const float weight = att[t - first];
        for (std::size_t i = 0; i < head_size; ++i) out[i] += weight * v[i];
      }
    }
  }
  if (observer_)
    for (std::size_t b = 0; b < batch; ++b) observe(l, {3}, row_of(attention_out_, q_dim, b));
  multiply(layer.wo, MatrixView<const float>(attention_out_.data(), batch, q_dim),
           MatrixView<float>(xb2_.data(), batch, dim));
  for (std::size_t b = 0; b < batch; ++b) add_bias(row_of(xb2_, dim, b), layer.bo);
  for (std::size_t i = 0; i < batch * dim; ++i) x_[i] += xb2_[i];
}

void LlamaModel::feed_forward_block(std::size_t l, std::size_t batch) {
  Layer& layer = layers_[l];
  const auto dim = static_cast<std::size_t>(config_.dim);
  const auto hidden = static_cast<std::size_t>(config_.hidden_dim);
  // SwiGLU FFN: w2(silu(w1 x) * w3 x).
  for (std::size_t b = 0; b < batch; ++b)
    rmsnorm(row_of(xb_, dim, b), row_of(x_, dim, b), layer.ffn_norm, config_.norm_eps);
  if (observer_)
    for (std::size_t b = 0; b < batch; ++b) observe(l, {4, 6}, row_of(xb_, dim, b));
  const MatrixView<const float> xb(xb_.data(), batch, dim);
  multiply(layer.w1, xb, MatrixView<float>(hb_.data(), batch, hidden));
  multiply(layer.w3, xb, MatrixView<float>(hb2_.data(), batch, hidden));
  for (std::size_t i = 0; i < batch * hidden; ++i) {
    const float a = hb_[i];
    hb_[i] = a / (1.0f + std::exp(-a)) * hb2_[i];
  }
  if (observer_)
    for (std::size_t b = 0; b < batch; ++b) observe(l, {5}, row_of(hb_, hidden, b));
  multiply(layer.w2, MatrixView<const float>(hb_.data(), batch, hidden),
           MatrixView<float>(xb_.data(), batch, dim));
  for (std::size_t i = 0; i < batch * dim; ++i) x_[i] += xb_[i];
}

void LlamaModel::multiply(const Linear& layer, MatrixView<const float> x, MatrixView<float> y) {
  const QuantizedMatrix* quantized = layer.quantized();
  if (!ggml_activation_rounding_ || quantized == nullptr ||
      !quantized->scheme().has_block_layout()) {
    linear(layer, x, y);
    return;
  }
  rounded_.resize(x.rows * x.cols);
  for (std::size_t r = 0; r < x.rows; ++r) {
    const std::span<float> row(rounded_.data() + r * x.cols, x.cols);
    std::copy_n(x.row(r).data(), x.cols, row.begin());
    round_activations_as_ggml(*quantized->scheme().ggml_type, row);
  }
  linear(layer, MatrixView<const float>(rounded_.data(), x.rows, x.cols), y);
}

std::span<const float> LlamaModel::forward(int token, int position) {
  return forward_batch(std::span<const int>(&token, 1), position);
}

std::span<const float> LlamaModel::forward_batch(std::span<const int> tokens, int start_position) {
  const LlamaConfig& c = config_;
  if (tokens.empty()) throw invalid_argument("llama forward: no tokens");
  for (const int token : tokens)
    if (token < 0 || token >= c.vocab_size)
      throw invalid_argument("llama forward: token " + std::to_string(token) + " is outside [0, " +
                             std::to_string(c.vocab_size) + ")");
  const auto seq_len = static_cast<std::size_t>(c.seq_len);
  if (start_position < 0 || static_cast<std::size_t>(start_position) >= seq_len ||
      tokens.size() > seq_len - static_cast<std::size_t>(start_position))
    throw invalid_argument("llama forward: positions " + std::to_string(start_position) + " to " +
                           std::to_string(start_position) + " + " + std::to_string(tokens.size()) +
                           " - 1 are outside [0, " + std::to_string(c.seq_len) + ")");
  const auto dim = static_cast<std::size_t>(c.dim);
  const auto vocab = static_cast<std::size_t>(c.vocab_size);
  const auto start = static_cast<std::size_t>(start_position);
  const std::size_t batch = tokens.size();
  reserve_positions(start + batch);
  reserve_batch(batch);
  set_rotary_angles(start, batch);

  for (std::size_t b = 0; b < batch; ++b)
    std::copy_n(
        embedding_.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(tokens[b]) * dim),
        dim, x_.begin() + static_cast<std::ptrdiff_t>(b * dim));
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    attention_block(l, start, batch);
    feed_forward_block(l, batch);
  }

  for (std::size_t b = 0; b < batch; ++b) {
    const std::span<float> x = row_of(x_, dim, b);
    rmsnorm(x, x, final_norm_, c.norm_eps);
  }
  if (observer_)
    for (std::size_t b = 0; b < batch; ++b) observer_("output.weight", row_of(x_, dim, b));
  multiply(classifier_, MatrixView<const float>(x_.data(), batch, dim),
           MatrixView<float>(logits_.data(), batch, vocab));
  return {logits_.data(), batch * vocab};
}

}  // namespace lowbit::model
