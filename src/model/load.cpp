#include "lowbit/model/load.hpp"

#include <cmath>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/gguf_llama.hpp"
#include "lowbit/io/hf_checkpoint.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/io/quantized_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"

namespace lowbit::model {

namespace {

std::string index_text(std::size_t i) {
  std::string text = "[";
  text.append(std::to_string(i)).append("]");
  return text;
}

/// Throws io_error naming the file, the tensor and the position of the first NaN or infinite
/// weight: a non-finite weight poisons every logit downstream, so it is refused at load, as the
/// llama2.c reader refuses it. `cols` is the row length of a matrix (0 for other shapes).
void require_finite(std::span<const float> values, const std::string& file,
                    const std::string& tensor, const std::vector<std::size_t>& shape,
                    std::size_t cols, const char* what) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (std::isfinite(values[i])) continue;
    // (append, not operator+: GCC 12 reports a false -Wrestrict on the chain of temporaries)
    std::string reason = what;
    reason.append(" ")
        .append(cols > 0 ? detail::shape_text(i / cols, i % cols) : index_text(i))
        .append(" is ")
        .append(std::isnan(values[i]) ? "NaN" : "infinite");
    throw io_error(reason, ErrorContext{file, tensor, shape});
  }
}

/// A Hugging Face checkpoint: its tensors checked against config.json by HfCheckpoint, converted
/// to float one at a time under their Llama names.
LlamaModel load_hf(const std::filesystem::path& path) {
  const io::HfCheckpoint checkpoint(path);
  std::vector<NamedTensor> tensors;
  tensors.reserve(checkpoint.tensors().size());
  for (const io::TensorLayout& t : checkpoint.tensors()) {
    tensors.push_back({t.name, t.shape, checkpoint.to_float(t.name)});
    require_finite(tensors.back().data, checkpoint.file_of(t.name).string(),
                   checkpoint.hf_name(t.name), t.shape, t.shape.size() == 2 ? t.shape[1] : 0,
                   "weight");
  }
  try {
    return LlamaModel(checkpoint.config().llama, tensors);
  } catch (const invalid_argument& e) {
    throw io_error(e.what(), ErrorContext{checkpoint.weights_path().string(), {}, {}});
  }
}

/// A GGUF file: float tensors checked for NaN and infinity, linear weights handed to the kernels
/// in their ggml blocks (each dequantized once, to check it, then let go).
LlamaModel load_gguf(const std::filesystem::path& path) {
  const io::GgufFile file(path);
  io::GgufLlama model = io::read_gguf_llama(file);
  const std::string name = path.string();
  for (const NamedTensor& t : model.tensors)
    require_finite(t.data, name, t.name, t.shape, t.shape.size() == 2 ? t.shape[1] : 0, "weight");
  for (const io::NamedQuantized& q : model.block_weights) {
    const std::vector<float> w = q.matrix.dequantize();
    require_finite(w, name, q.name, {q.matrix.rows(), q.matrix.cols()}, q.matrix.cols(),
                   "dequantized weight");
  }
  try {
    return LlamaModel(model.config, model.tensors, std::move(model.block_weights));
  } catch (const invalid_argument& e) {
    throw io_error(e.what(), ErrorContext{name, {}, {}});
  }
}

/// lowbit's own safetensors layout: float and quantized tensors, the config in the metadata.
LlamaModel load_lowbit_safetensors(const std::filesystem::path& path) {
  const io::SafetensorsFile file(path);
  const std::string name = path.string();
  const LlamaConfig config = io::read_llama_config(file);
  const std::vector<std::string> quantized = io::quantized_names(file);

  std::set<std::string> parts;  // tensors that belong to a quantized weight
  std::vector<QuantizedMatrix> matrices;
  matrices.reserve(quantized.size());
  for (const auto& q : quantized) {
    matrices.push_back(io::read_quantized(file, q));
    for (const auto& part : io::quantized_layout(q, matrices.back().scheme(),
                                                 matrices.back().rows(), matrices.back().cols()))
      parts.insert(part.name);
  }
  std::vector<NamedTensor> tensors;
  std::set<std::string> float_names;
  for (const auto& t : file.names()) {
    if (parts.count(t) != 0) continue;
    const io::TensorInfo& info = file.info(t);
    switch (info.dtype) {
      case io::DType::F64:
      case io::DType::F32:
      case io::DType::F16:
      case io::DType::BF16:
        break;
      default:
        throw io_error("tensor of dtype " + std::string(io::dtype_name(info.dtype)) +
                           " is neither a float weight nor part of a quantized one",
                       ErrorContext{name, t, info.shape});
    }
    tensors.push_back({t, info.shape, file.to_float(t)});
    require_finite(tensors.back().data, name, t, info.shape,
                   info.shape.size() == 2 ? info.shape[1] : 0, "weight");
    float_names.insert(t);
  }
  std::vector<io::NamedQuantized> quantized_weights;
  quantized_weights.reserve(quantized.size());
  for (std::size_t i = 0; i < quantized.size(); ++i) {
    if (float_names.count(quantized[i]) != 0)
      throw io_error("tensor is stored both as floats and quantized",
                     ErrorContext{name, quantized[i], {}});
    // Scales, zero points, codebooks or FP8 codes can make a non-finite weight too: checked on
    // the dequantized weights (in the inputs' basis), which are then let go.
    const QuantizedMatrix& m = matrices[i];
    const std::vector<float> w = m.dequantize_unrotated();
    require_finite(w, name, quantized[i], {m.rows(), m.cols()}, m.cols(), "dequantized weight");
    quantized_weights.push_back({quantized[i], std::move(matrices[i])});
  }
  try {
    return LlamaModel(config, tensors, std::move(quantized_weights));
  } catch (const invalid_argument& e) {
    throw io_error(e.what(), ErrorContext{name, {}, {}});
  }
}

}  // namespace

LlamaModel load_llama(const std::filesystem::path& path) {
  const std::string format = io::detect_checkpoint_format(path);
  if (format == "llama2c") {
    const io::Llama2cCheckpoint checkpoint = io::read_llama2c(path);
    return LlamaModel(checkpoint.config, checkpoint.tensors);
  }
  if (format == "huggingface") return load_hf(path);
  if (format == "gguf") return load_gguf(path);
  return load_lowbit_safetensors(path);
}

}  // namespace lowbit::model
