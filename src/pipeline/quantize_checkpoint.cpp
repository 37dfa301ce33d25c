// quantize_checkpoint (pipeline/quantize_checkpoint.hpp).
#include "lowbit/pipeline/quantize_checkpoint.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/algo/gptq.hpp"
#include "lowbit/algo/incoherence.hpp"
#include "lowbit/error.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/gguf_llama.hpp"
#include "lowbit/io/hf_checkpoint.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/io/quantized_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/model/load.hpp"
#include "lowbit/pipeline/awq.hpp"
#include "lowbit/pipeline/gptq.hpp"

namespace lowbit::pipeline {
namespace {

/// The tensors of an input checkpoint, loaded one at a time, so that memory holds one tensor: a
/// llama2.c file is read tensor by tensor, safetensors files (lowbit's or Hugging Face's, under
/// their Llama names) and GGUF files are memory-mapped.
class TensorSource {
 public:
  explicit TensorSource(const std::filesystem::path& path) {
    const std::string format = io::detect_checkpoint_format(path);
    if (format == "huggingface") {
      hf_.emplace(path);
      config_ = hf_->config().llama;
      entries_ = hf_->tensors();
    } else if (format == "gguf") {
      // Every tensor as float, under its Llama name: the file's blocks are dequantized as ggml
      // does, then quantized again.
      gguf_.emplace(path);
      config_ = io::read_gguf_llama_config(*gguf_);
      for (const auto& [name, gguf_name] : io::gguf_llama_names(*gguf_, *config_)) {
        gguf_names_[name] = gguf_name;
        entries_.push_back({name, io::DType::F32, gguf_->tensor(gguf_name).shape()});
      }
    } else if (format == "llama2c") {
      llama2c_.emplace(path);
      config_ = llama2c_->config();
      for (const auto& t : llama2c_->tensors())
        entries_.push_back({t.name, io::DType::F32, t.shape});
    } else {
      safetensors_.emplace(path);
      if (safetensors_->metadata().count("lowbit.llama.config"))
        config_ = io::read_llama_config(*safetensors_);
      if (!io::quantized_names(*safetensors_).empty())
        throw invalid_argument("the input is already quantized; quantize a float checkpoint",
                               {path.string(), "", {}});
      for (const std::string& name : safetensors_->names()) {
        const io::TensorInfo& info = safetensors_->info(name);
        entries_.push_back({name, info.dtype, info.shape});
      }
    }
  }

  const std::vector<io::TensorLayout>& entries() const noexcept { return entries_; }
  const std::optional<model::LlamaConfig>& config() const noexcept { return config_; }

  std::vector<float> floats(const std::string& name) const {
    if (hf_) return hf_->to_float(name);
    if (gguf_) return gguf_->to_float(gguf_names_.at(name));
    if (safetensors_) return safetensors_->to_float(name);
    return llama2c_->read(name).data;
  }
  /// The tensor's bytes as stored (for tensors copied unchanged).
  std::vector<std::byte> bytes(const std::string& name) const {
    if (safetensors_ || hf_) {
      const auto data = hf_ ? hf_->info(name).data : safetensors_->info(name).data;
      return {data.begin(), data.end()};
    }
    const std::vector<float> values = floats(name);
    std::vector<std::byte> out(values.size() * sizeof(float));
    if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
    return out;
  }

 private:
  std::optional<io::Llama2cFile> llama2c_;
  std::optional<io::SafetensorsFile> safetensors_;
  std::optional<io::HfCheckpoint> hf_;
  std::optional<io::GgufFile> gguf_;
  std::map<std::string, std::string> gguf_names_;  // Llama name -> GGUF name
  std::optional<model::LlamaConfig> config_;
  std::vector<io::TensorLayout> entries_;
};

bool ends_with(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Linear weights are the 2-D ".weight" tensors other than norms; embeddings only when asked.
bool is_linear_weight(const io::TensorLayout& t, bool quantize_embeddings) {
  if (t.shape.size() != 2 || !ends_with(t.name, ".weight")) return false;
  if (t.name.find("norm") != std::string::npos) return false;
  if (!quantize_embeddings && t.name.find("embed") != std::string::npos) return false;
  return true;
}

/// What AWQ did to a stored layer beyond quantizing it: its columns multiplied by the scales s
/// of its input (W diag(s)), and, for a layer whose output feeds a scaled one (wv, w3), its rows
/// divided by that layer's s. Undone before the stored weights are compared with the originals.
struct AwqFold {
  std::vector<float> column_scales;  // empty: none
  std::vector<float> row_scales;     // empty: none
};

TensorQuantizeReport measure(const std::string& name, std::span<const float> original,
                             const QuantizedMatrix& q, const AwqFold* fold) {
  std::vector<float> back = q.dequantize_unrotated();  // compared in the inputs' basis
  if (fold != nullptr)
    for (std::size_t r = 0; r < q.rows(); ++r)
      for (std::size_t c = 0; c < q.cols(); ++c) {
        float& v = back[r * q.cols() + c];
        if (!fold->column_scales.empty()) v /= fold->column_scales[c];
        if (!fold->row_scales.empty()) v *= fold->row_scales[r];
      }
  double error = 0, signal = 0;
  for (std::size_t i = 0; i < back.size(); ++i) {
    const double d = static_cast<double>(original[i]) - back[i];
    error += d * d;
    signal += static_cast<double>(original[i]) * original[i];
  }
  TensorQuantizeReport report{name, q.rows(), q.cols(), q.bits_per_weight(),
                              0.0,  0.0,      error,    signal};
  report.relative_rms = signal > 0 ? std::sqrt(error / signal) : std::sqrt(error);
  report.sqnr_db = report.relative_rms > 0 ? -20.0 * std::log10(report.relative_rms) : INFINITY;
  return report;
}

bool is_calibrated(const std::string& method) { return method_traits(method).calibrated; }

/// GPTQ and AWQ need the model and calibration text: they run over the whole model first (block by
/// block, docs/design.md), and the quantized matrices (and AWQ's rescaled norms) are then written
/// like any method's.
model::LlamaModel calibrate(const std::filesystem::path& input,
                            const CheckpointQuantizeOptions& options, const Scheme& scheme,
                            const CheckpointProgress& progress,
                            std::map<std::string, AwqFold>& awq_folds) {
  model::LlamaModel model = model::load_llama(input);
  const std::vector<int>& tokens = options.calibration_tokens;
  const model::EvalOptions& windows = options.calibration_windows;
  const auto report = [&](std::size_t done, std::size_t total) {
    if (progress) progress("calibrate", done, total);
  };
  if (options.method.method == "awq") {
    const ModelAwqReport awq =
        quantize_model_awq(model, tokens, windows, scheme, AwqOptions{}, report);
    for (const ModelAwqGroup& group : awq.groups) {
      for (const std::string& linear : group.linears)
        awq_folds[linear].column_scales = group.scales;
      if (group.folded_into.find("norm") == std::string::npos)  // a Linear's rows
        awq_folds[group.folded_into].row_scales = group.scales;
    }
  } else {
    GptqOptions gptq;
    gptq.act_order = options.act_order;
    gptq.static_groups = options.act_order;  // act-order with groups needs them (no g_idx)
    if (options.hadamard) gptq.hadamard = IncoherenceOptions{0, options.method.seed, true};
    quantize_model_gptq(model, tokens, windows, scheme, gptq, report);
  }
  return model;
}

}  // namespace

CheckpointQuantizeReport quantize_checkpoint(const std::filesystem::path& input,
                                             const std::filesystem::path& output,
                                             const CheckpointQuantizeOptions& options,
                                             const CheckpointProgress& progress) {
  // GPTQ and AWQ store what round-to-nearest stores; only how the codes are chosen differs.
  const std::string& method = options.method.method;
  check_method_options(options.method);
  MethodOptions grid = options.method;
  if (is_calibrated(method)) grid.method = "rtn";
  if (options.hadamard && method != "gptq")
    throw invalid_argument(
        "hadamard (GPTQ+Hadamard) goes with gptq; hadamard-rtn is its own method");
  if (options.act_order && method != "gptq") throw invalid_argument("act-order goes with gptq");
  const Quantizer quantizer(grid);
  const TensorSource source(input);
  std::string description = quantizer.describe();
  if (is_calibrated(method)) {
    std::string name = method;
    if (options.act_order) name += " act-order";
    if (options.hadamard) name += "+hadamard";
    description.replace(0, 3, name);
  }
  std::optional<model::LlamaModel> calibrated;
  std::map<std::string, AwqFold> awq_folds;
  if (is_calibrated(method)) {
    if (!source.config())
      throw invalid_argument(
          method +
          " needs a Llama checkpoint (llama2.c, Hugging Face, or safetensors written by lowbit)");
    if (options.calibration_tokens.empty())
      throw invalid_argument(method + " needs calibration tokens");
    calibrated = calibrate(input, options, quantizer.scheme(0, 0), progress, awq_folds);
  }
  // The matrices the calibrated model quantized (the transformer blocks' layers).
  auto calibrated_matrix = [&](const std::string& name) -> const QuantizedMatrix* {
    if (!calibrated) return nullptr;
    const std::vector<std::string> names = calibrated->linear_names();
    if (std::find(names.begin(), names.end(), name) == names.end()) return nullptr;
    return calibrated->linear_layer(name).quantized();
  };
  // AWQ folds its scales into the RMSNorms: those are written from the calibrated model, in f32.
  auto calibrated_norm = [&](const io::TensorLayout& t) -> std::optional<std::vector<float>> {
    if (!calibrated || method != "awq" || t.shape.size() != 1 ||
        t.name.find("norm") == std::string::npos)
      return std::nullopt;
    const std::span<const float> norm = calibrated->norm_weight(t.name);
    return std::vector<float>(norm.begin(), norm.end());
  };

  if (std::none_of(source.entries().begin(), source.entries().end(),
                   [&](const io::TensorLayout& t) {
                     return is_linear_weight(t, options.quantize_embeddings);
                   }))
    throw invalid_argument(
        "no Linear weight to quantize (2-D \".weight\" tensors other than "
        "the norms and, unless asked, the embedding)",
        ErrorContext{input.string(), "", {}});

  // Declare every output tensor first: the safetensors header precedes the data.
  std::vector<io::TensorLayout> layout;
  std::map<std::string, std::string> metadata = options.metadata;
  metadata["lowbit.method"] = description;
  metadata["lowbit.source"] = input.filename().string();
  if (source.config()) io::add_llama_config(metadata, *source.config());
  for (const io::TensorLayout& t : source.entries()) {
    if (is_linear_weight(t, options.quantize_embeddings)) {
      const Scheme scheme = quantizer.scheme(t.shape[0], t.shape[1]);
      for (io::TensorLayout& part : io::quantized_layout(t.name, scheme, t.shape[0], t.shape[1]))
        layout.push_back(std::move(part));
      std::optional<HadamardRotation> rotation = quantizer.rotation(t.shape[1]);
      if (const QuantizedMatrix* q = calibrated_matrix(t.name)) rotation = q->input_rotation();
      io::add_quantization_metadata(metadata, t.name, scheme, t.shape[0], t.shape[1], rotation);
    } else if (calibrated_norm(t)) {
      layout.push_back({t.name, io::DType::F32, t.shape});
    } else {
      layout.push_back(t);
    }
  }

  io::SafetensorsWriter writer(output, layout, metadata);
  CheckpointQuantizeReport summary;
  summary.description = description;
  double weights = 0, bits = 0, error = 0, signal = 0;
  std::size_t done = 0;
  for (const io::TensorLayout& t : source.entries()) {
    if (is_linear_weight(t, options.quantize_embeddings)) {
      const std::vector<float> values = source.floats(t.name);
      const QuantizedMatrix* by_calibration = calibrated_matrix(t.name);
      const QuantizedMatrix q =
          by_calibration != nullptr
              ? *by_calibration
              : quantizer.quantize(MatrixView<const float>(values.data(), t.shape[0], t.shape[1]),
                                   t.name);
      io::write_quantized(writer, t.name, q);
      const auto fold = awq_folds.find(t.name);
      const TensorQuantizeReport report =
          measure(t.name, values, q, fold == awq_folds.end() ? nullptr : &fold->second);
      const double n = static_cast<double>(values.size());
      weights += n;
      bits += report.bits_per_weight * n;
      error += report.error_energy;
      signal += report.signal_energy;
      summary.tensors.push_back(report);
    } else if (const auto norm = calibrated_norm(t)) {
      std::vector<std::byte> bytes(norm->size() * sizeof(float));
      if (!norm->empty()) std::memcpy(bytes.data(), norm->data(), bytes.size());
      writer.write(t.name, bytes);
    } else {
      writer.write(t.name, source.bytes(t.name));
    }
    if (progress) progress("write", ++done, source.entries().size());
  }
  writer.finish();

  summary.bits_per_weight = weights > 0 ? bits / weights : 0;
  summary.relative_rms = signal > 0 ? std::sqrt(error / signal) : 0;
  return summary;
}

}  // namespace lowbit::pipeline
