// `lowbit inspect`: what a checkpoint holds: tensors, dtypes, shapes, metadata and, for quantized
// weights, their Scheme and bits per weight.
#include <set>
#include <string>

#include <fmt/core.h>

#include "commands.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/io/quantized_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"

namespace lowbit::cli {
namespace {

std::string shape_text(const std::vector<std::size_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

void print_config(const model::LlamaConfig& c) {
  fmt::print(
      "llama config: dim {}, hidden_dim {}, layers {}, heads {}, kv heads {}, vocab {}, seq_len "
      "{}{}\n",
      c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len,
      c.shared_classifier ? ", classifier shared with the embedding" : "");
}

}  // namespace

int run_inspect(const std::filesystem::path& file) {
  const std::string format = io::detect_checkpoint_format(file);
  fmt::print("{}: {}\n", file.string(),
             format == "llama2c" ? "llama2.c checkpoint (version 0)" : "safetensors");
  if (format == "llama2c") {
    const io::Llama2cCheckpoint checkpoint = io::read_llama2c(file);
    print_config(checkpoint.config);
    fmt::print("{:<44} {:<8} {}\n", "tensor", "dtype", "shape");
    for (const model::NamedTensor& t : checkpoint.tensors)
      fmt::print("{:<44} {:<8} {}\n", t.name, "F32", shape_text(t.shape));
    return 0;
  }

  const io::SafetensorsFile st(file);
  if (st.metadata().count("lowbit.llama.config")) print_config(io::read_llama_config(st));
  for (const auto& [key, value] : st.metadata())
    if (key != "lowbit.llama.config" && key != "lowbit.quantization")
      fmt::print("metadata {} = {}\n", key, value);

  const std::vector<std::string> quantized = io::quantized_names(st);
  fmt::print("{:<44} {:<8} {}\n", "tensor", "dtype", "shape");
  for (const std::string& name : st.names()) {
    const io::TensorInfo& info = st.info(name);
    fmt::print("{:<44} {:<8} {}\n", name, io::dtype_name(info.dtype), shape_text(info.shape));
  }
  if (!quantized.empty()) {
    fmt::print("\n{} quantized weights:\n{:<44} {:<12} {:>7}  {}\n", quantized.size(), "weight",
               "shape", "bits/w", "scheme");
    for (const std::string& name : quantized) {
      const QuantizedMatrix q = io::read_quantized(st, name);
      fmt::print("{:<44} {:<12} {:>7.3f}  {}\n", name, fmt::format("{}x{}", q.rows(), q.cols()),
                 q.bits_per_weight(), q.scheme().to_string());
    }
  }
  return 0;
}

}  // namespace lowbit::cli
