// A small forward pass of the Llama family (Llama, Mistral, Qwen2, Qwen3: llama2.c's run.c with the
// family's options): enough to check that a checkpoint loads correctly and to measure what
// quantization does to a real model's output.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/io/llama_config.hpp"
#include "lowbit/io/named_quantized.hpp"
#include "lowbit/kernels/backend.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quantized_matrix.hpp"

namespace lowbit::model {

// The readers' vocabulary (io/llama_config.hpp), used unqualified by the forward pass.
using io::LlamaConfig;
using io::NamedQuantized;
using io::NamedTensor;

/// What a linear layer does with its input before the multiplication (kernels/backend.hpp).
using ActivationQuantization = kernels::ActivationQuantization;

/// The weight of a linear layer, [out, in]: float, or a QuantizedMatrix, which is prepared once for
/// the default kernel backend (kernels/gemm.hpp) and multiplied there: the forward pass runs on
/// the same kernels an inference engine would use.
class Linear {
 public:
  Linear() = default;
  Linear(std::vector<float> weights, std::size_t rows, std::size_t cols);
  /// int8_per_token needs integer weights, llm_int8 int8 per-channel weights
  /// (w8a8_weight_scheme()); outlier_threshold is LLM.int8()'s. Throws unsupported otherwise.
  explicit Linear(QuantizedMatrix quantized,
                  ActivationQuantization activations = ActivationQuantization::none,
                  float outlier_threshold = 6.0f);

  std::size_t rows() const noexcept { return rows_; }
  std::size_t cols() const noexcept { return cols_; }
  bool is_quantized() const noexcept { return quantized_ != nullptr; }
  ActivationQuantization activations() const noexcept { return activations_; }
  float outlier_threshold() const noexcept { return outlier_threshold_; }
  /// The QuantizedMatrix this layer was built from, or nullptr for a float layer.
  const QuantizedMatrix* quantized() const noexcept { return quantized_.get(); }
  /// The float weights (for a quantized layer, dequantized in the inputs' basis: what calibration
  /// and inspection read; the kernels multiply the packed ones). A quantized layer dequantizes on
  /// the first call only (thread-safe), so that a model that is only run never holds float copies
  /// of its quantized weights.
  MatrixView<const float> weights() const;
  /// The kernels' copy of a quantized layer, or nullptr for a float layer.
  const kernels::PreparedMatrix* prepared() const noexcept { return prepared_.get(); }

 private:
  struct DequantizedWeights {
    std::once_flag once;
    std::vector<float> values;
  };

  std::vector<float> weights_;  // a float layer's weights
  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
  // A quantized layer: the matrix (which the kernels' prepared copy shares), and its float weights
  // once asked for. Immutable or filled once; shared by copies.
  std::shared_ptr<const QuantizedMatrix> quantized_;
  std::shared_ptr<DequantizedWeights> dequantized_;
  std::shared_ptr<const kernels::PreparedMatrix> prepared_;
  ActivationQuantization activations_ = ActivationQuantization::none;
  float outlier_threshold_ = 6.0f;
};

/// y = W x. Every linear layer of the forward pass goes through here.
void linear(const Linear& layer, std::span<const float> x, std::span<float> y);
/// Y = X W^T for a batch of inputs, X [batch, in] and Y [batch, out] row-major: one GEMM, each
/// weight read once for the whole batch (the kernels' GEMM for a quantized layer, Eigen's for a
/// float one; a batch of one is linear()).
void linear(const Linear& layer, MatrixView<const float> x, MatrixView<float> y);

/// The rotary inverse frequencies of one head, head_size / 2 of them: rope_theta^(-2i / head_size),
/// in float as transformers computes them, then Llama 3.1's scaling when config.rope_scaling asks
/// (transformers' _compute_llama3_parameters, step for step in float). Pair i of a head (adjacent
/// or rotate-half, config.rope_style) turns by position * inv_freq[i].
std::vector<float> rope_inverse_frequencies(const LlamaConfig& config);

class LlamaModel {
 public:
  /// Takes the tensors by their Llama names (tok_embeddings.weight, layers.{i}.attention.wq.weight,
  /// ..., norm.weight, and output.weight unless config.shared_classifier; with config.qkv_bias
  /// layers.{i}.attention.w{q,k,v}.bias, with output_bias layers.{i}.attention.wo.bias, with
  /// qk_norm layers.{i}.attention.{q,k}_norm.weight of head_size values). wq is [q_dim, dim], wk
  /// and wv [kv_dim, dim], wo [dim, q_dim] (LlamaConfig). Throws
  /// lowbit::invalid_argument for a config that cannot describe a model (io::llama_config_problem
  /// says why), a missing tensor or a wrong shape.
  LlamaModel(const LlamaConfig& config, std::span<const NamedTensor> tensors);
  /// The same, with some linear weights given quantized instead (each name at most once, and not
  /// also among `tensors`): they go straight to the kernels, with no float copy made at load.
  LlamaModel(const LlamaConfig& config, std::span<const NamedTensor> tensors,
             std::vector<io::NamedQuantized> quantized);

  const LlamaConfig& config() const noexcept { return config_; }

  /// The names of every linear layer, the classifier ("output.weight") included even when it is
  /// shared with the embedding: the lookup keeps the float embedding either way.
  std::vector<std::string> linear_names() const;
  const Linear& linear_layer(const std::string& name) const;
  /// Replaces a linear layer's weight; the QuantizedMatrix must have the layer's shape.
  void set_linear(const std::string& name, QuantizedMatrix weights);
  /// Replaces a linear layer (float or quantized, any activation mode) of the same shape.
  void set_linear(const std::string& name, Linear layer);

  /// The weights of an RMSNorm ("layers.{i}.attention_norm.weight", "layers.{i}.ffn_norm.weight",
  /// "norm.weight", and with qk_norm "layers.{i}.attention.{q,k}_norm.weight"), writable: smoothing
  /// methods fold per-channel scales into them.
  std::span<float> norm_weight(const std::string& name);

  /// Called, during forward(), with the input of every linear layer just before it is multiplied
  /// (linears that share an input each see it): how calibration statistics are gathered.
  using InputObserver =
      std::function<void(const std::string& linear_name, std::span<const float> input)>;
  void set_input_observer(InputObserver observer);

  /// Runs token `token` at `position` (0-based; positions must be fed in order, each after the
  /// ones before it) and returns the logits, valid until the next call.
  std::span<const float> forward(int token, int position);

  /// Runs `tokens` at positions start_position, start_position + 1, ... in one pass (a prefill):
  /// each linear layer is one GEMM over the whole batch, and attention is causal within the batch
  /// and over the positions cached before it. Returns the logits of every position, [tokens.size(),
  /// vocab_size] row-major, valid until the next call. The same as forward() on each token in turn,
  /// up to the rounding of the batched products (the observer sees every row, layer by layer).
  /// Throws lowbit::invalid_argument for an empty batch, a token outside the vocabulary or
  /// positions past seq_len.
  std::span<const float> forward_batch(std::span<const int> tokens, int start_position);

  /// Whether each input of a ggml-block layer is first rounded as llama.cpp rounds it (to the
  /// weight type's 8-bit activation blocks: quant/ggml.hpp, round_activations_as_ggml), so that a
  /// GGUF model computes what llama.cpp computes, up to the order of float sums. Off by default:
  /// lowbit multiplies float activations, which is the more accurate product.
  void set_ggml_activation_rounding(bool on) noexcept { ggml_activation_rounding_ = on; }

  /// Positions the KV cache holds room for. It grows (doubling) as forward() reaches further
  /// positions, up to config().seq_len: memory follows the positions used (an evaluation window),
  /// not the context length a file declares.
  std::size_t cached_positions() const noexcept { return cached_positions_; }

 private:
  struct Layer {
    std::vector<float> attention_norm, ffn_norm;
    Linear wq, wk, wv, wo, w1, w2, w3;
    std::vector<float> bq, bk, bv, bo;  // biases; empty when the config has none
    std::vector<float> q_norm, k_norm;  // per-head RMSNorm weights; empty without qk_norm
  };
  Linear* find_linear(const std::string& name);
  void observe(std::size_t layer, std::initializer_list<std::size_t> linears,
               std::span<const float> input);
  /// Grows the KV cache to hold positions [0, positions).
  void reserve_positions(std::size_t positions);
  /// Sizes the activations for a batch of `batch` positions.
  void reserve_batch(std::size_t batch);
  // A batch's steps, each reading and updating the residual stream x_ ([batch, dim]). The cos and
  // sin of each row's rotary angles (rope_cos_, rope_sin_: [batch, head_size / 2]) are set before
  // the layers run.
  void set_rotary_angles(std::size_t start_position, std::size_t batch);
  void attention_block(std::size_t layer, std::size_t start_position, std::size_t batch);
  void feed_forward_block(std::size_t layer, std::size_t batch);
  /// Y = X W^T through linear(), the inputs rounded first when ggml_activation_rounding_ is on.
  void multiply(const Linear& layer, MatrixView<const float> x, MatrixView<float> y);

  LlamaConfig config_;
  std::vector<float> embedding_;  // [vocab, dim]
  std::vector<Layer> layers_;
  std::vector<float> final_norm_;
  Linear classifier_;
  std::vector<float> inv_freq_;  // rope_inverse_frequencies(config_)
  // KV cache, per layer [position, kv_dim] for cached_positions_ positions, and the activations
  // of a batch of up to batch_capacity_ positions, row-major.
  std::vector<std::vector<float>> key_cache_, value_cache_;
  std::size_t cached_positions_ = 0;
  std::size_t batch_capacity_ = 0;
  std::vector<float> x_, xb_, xb2_, hb_, hb2_, q_, k_, v_, attention_out_, logits_;
  std::vector<float> rope_cos_, rope_sin_;
  bool ggml_activation_rounding_ = false;
  std::vector<float> rounded_;  // the rounded inputs of one multiplication
  InputObserver observer_;
  std::vector<std::string> observed_names_;
};

}  // namespace lowbit::model
