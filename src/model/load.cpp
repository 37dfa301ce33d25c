#include "lowbit/model/load.hpp"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/io/quantized_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"

namespace lowbit::model {

LlamaModel load_llama(const std::filesystem::path& path) {
  const std::string format = io::detect_checkpoint_format(path);
  if (format == "llama2c") {
    const io::Llama2cCheckpoint checkpoint = io::read_llama2c(path);
    return LlamaModel(checkpoint.config, checkpoint.tensors);
  }
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
    float_names.insert(t);
  }
  // LlamaModel wants every weight as floats; quantized layers get a zero placeholder that
  // set_linear replaces (no dequantization happens twice).
  for (std::size_t i = 0; i < quantized.size(); ++i) {
    if (float_names.count(quantized[i]) != 0)
      throw io_error("tensor is stored both as floats and quantized",
                     ErrorContext{name, quantized[i], {}});
    const QuantizedMatrix& m = matrices[i];
    tensors.push_back(
        {quantized[i], {m.rows(), m.cols()}, std::vector<float>(m.rows() * m.cols(), 0.0f)});
  }
  try {
    LlamaModel model(config, tensors);
    tensors.clear();
    for (std::size_t i = 0; i < quantized.size(); ++i)
      model.set_linear(quantized[i], std::move(matrices[i]));
    return model;
  } catch (const invalid_argument& e) {
    throw io_error(e.what(), ErrorContext{name, {}, {}});
  }
}

}  // namespace lowbit::model
