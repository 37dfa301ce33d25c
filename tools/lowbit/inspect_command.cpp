// `lowbit inspect`: what a checkpoint holds: tensors, dtypes, shapes, metadata and, for quantized
// weights, their Scheme and bits per weight.
#include <map>
#include <set>
#include <string>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/gguf_llama.hpp"
#include "lowbit/io/hf_checkpoint.hpp"
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
      "llama config: dim {}, hidden_dim {}, layers {}, heads {}, kv heads {}, head size {}, vocab "
      "{}, seq_len {}{}\n",
      c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.head_size(), c.vocab_size,
      c.seq_len, c.shared_classifier ? ", classifier shared with the embedding" : "");
  fmt::print("  rope: {} pairs, theta {}{}; norm eps {}{}{}{}{}\n",
             io::rope_style_name(c.rope_style), c.rope_theta,
             c.rope_scaling.type == io::RopeScalingType::llama3
                 ? fmt::format(", llama3 scaling (factor {}, low {}, high {}, original {})",
                               c.rope_scaling.factor, c.rope_scaling.low_freq_factor,
                               c.rope_scaling.high_freq_factor,
                               c.rope_scaling.original_max_position_embeddings)
                 : "",
             c.norm_eps, c.qkv_bias ? "; q/k/v biases" : "", c.output_bias ? "; output bias" : "",
             c.qk_norm ? "; q/k RMSNorm per head" : "",
             c.sliding_window > 0 ? fmt::format("; sliding window {}", c.sliding_window) : "");
}

nlohmann::ordered_json config_json(const model::LlamaConfig& c) {
  nlohmann::ordered_json out = {{"dim", c.dim},
                                {"hidden_dim", c.hidden_dim},
                                {"n_layers", c.n_layers},
                                {"n_heads", c.n_heads},
                                {"n_kv_heads", c.n_kv_heads},
                                {"head_dim", c.head_size()},
                                {"vocab_size", c.vocab_size},
                                {"seq_len", c.seq_len},
                                {"shared_classifier", c.shared_classifier},
                                {"norm_eps", c.norm_eps},
                                {"rope_theta", c.rope_theta},
                                {"rope_style", io::rope_style_name(c.rope_style)},
                                {"qkv_bias", c.qkv_bias},
                                {"output_bias", c.output_bias},
                                {"qk_norm", c.qk_norm},
                                {"sliding_window", c.sliding_window}};
  if (c.rope_scaling.type == io::RopeScalingType::llama3)
    out["rope_scaling"] = {
        {"type", "llama3"},
        {"factor", c.rope_scaling.factor},
        {"low_freq_factor", c.rope_scaling.low_freq_factor},
        {"high_freq_factor", c.rope_scaling.high_freq_factor},
        {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
  return out;
}

}  // namespace

int run_inspect(const std::filesystem::path& file, bool json) {
  const std::string format = io::detect_checkpoint_format(file);
  nlohmann::ordered_json out = {{"file", file.string()}, {"format", format}};
  const auto add_config = [&](const model::LlamaConfig& c) {
    out["llama_config"] = config_json(c);
    if (!json) print_config(c);
  };
  if (!json) {
    const char* what = format == "llama2c"       ? "llama2.c checkpoint (version 0)"
                       : format == "huggingface" ? "Hugging Face checkpoint"
                       : format == "gguf"        ? "GGUF"
                                                 : "safetensors";
    fmt::print("{}: {}\n", file.string(), what);
  }
  out["tensors"] = nlohmann::ordered_json::array();
  if (format == "llama2c") {
    const io::Llama2cCheckpoint checkpoint = io::read_llama2c(file);
    add_config(checkpoint.config);
    if (!json) fmt::print("{:<44} {:<8} {}\n", "tensor", "dtype", "shape");
    for (const model::NamedTensor& t : checkpoint.tensors) {
      out["tensors"].push_back({{"name", t.name}, {"dtype", "F32"}, {"shape", t.shape}});
      if (!json) fmt::print("{:<44} {:<8} {}\n", t.name, "F32", shape_text(t.shape));
    }
    if (json) fmt::print("{}\n", out.dump(2));
    return 0;
  }

  if (format == "gguf") {
    const io::GgufFile gguf(file);
    out["version"] = gguf.version();
    out["alignment"] = gguf.alignment();
    out["metadata"] = nlohmann::ordered_json::object();
    if (!json) fmt::print("GGUF version {}, alignment {}\n", gguf.version(), gguf.alignment());
    for (const std::string& key : gguf.keys()) {
      const std::string value = gguf.value(key).describe(4, 60);
      out["metadata"][key] = value;
      if (!json) fmt::print("metadata {} = {}\n", key, value);
    }
    // The Llama reading of it, when it is one lowbit runs (else the tensors alone).
    std::map<std::string, std::string> llama_names;  // GGUF name -> Llama name
    try {
      const model::LlamaConfig config = io::read_gguf_llama_config(gguf);
      add_config(config);
      for (const auto& [name, gguf_name] : io::gguf_llama_names(gguf, config))
        llama_names[gguf_name] = name;
    } catch (const io_error& e) {
      out["llama_error"] = e.what();
      if (!json) fmt::print("not a model lowbit runs: {}\n", e.what());
    }
    if (!json) fmt::print("{:<36} {:<36} {:<8} {}\n", "tensor", "as", "type", "shape");
    for (const io::GgufTensorInfo& t : gguf.tensors()) {
      const auto found = llama_names.find(t.name);
      const std::string as = found == llama_names.end() ? "" : found->second;
      out["tensors"].push_back({{"name", t.name},
                                {"llama_name", as},
                                {"type", t.type_info().name},
                                {"shape", t.shape()}});
      if (!json)
        fmt::print("{:<36} {:<36} {:<8} {}\n", t.name, as, t.type_info().name,
                   shape_text(t.shape()));
    }
    if (json) fmt::print("{}\n", out.dump(2));
    return 0;
  }

  if (format == "huggingface") {
    const io::HfCheckpoint checkpoint(file);
    const io::HfConfig& hf = checkpoint.config();
    out["architecture"] = hf.architecture;
    out["weights"] = checkpoint.weights_path().string();
    out["bos_token_ids"] = hf.bos_token_ids;
    out["eos_token_ids"] = hf.eos_token_ids;
    if (!json)
      fmt::print("architecture {}, weights {}\n", hf.architecture,
                 checkpoint.weights_path().string());
    add_config(hf.llama);
    if (!json) fmt::print("{:<44} {:<44} {:<8} {}\n", "tensor", "as", "dtype", "shape");
    for (const io::TensorLayout& t : checkpoint.tensors()) {
      const std::string& hf_name = checkpoint.hf_name(t.name);
      out["tensors"].push_back({{"name", hf_name},
                                {"llama_name", t.name},
                                {"dtype", io::dtype_name(t.dtype)},
                                {"shape", t.shape}});
      if (!json)
        fmt::print("{:<44} {:<44} {:<8} {}\n", hf_name, t.name, io::dtype_name(t.dtype),
                   shape_text(t.shape));
    }
    if (json) fmt::print("{}\n", out.dump(2));
    return 0;
  }

  const io::SafetensorsFile st(file);
  if (st.metadata().count("lowbit.llama.config")) add_config(io::read_llama_config(st));
  out["metadata"] = nlohmann::ordered_json::object();
  for (const auto& [key, value] : st.metadata())
    if (key != "lowbit.llama.config" && key != "lowbit.quantization") {
      out["metadata"][key] = value;
      if (!json) fmt::print("metadata {} = {}\n", key, value);
    }

  const std::vector<std::string> quantized = io::quantized_names(st);
  if (!json) fmt::print("{:<44} {:<8} {}\n", "tensor", "dtype", "shape");
  for (const std::string& name : st.names()) {
    const io::TensorInfo& info = st.info(name);
    out["tensors"].push_back(
        {{"name", name}, {"dtype", io::dtype_name(info.dtype)}, {"shape", info.shape}});
    if (!json)
      fmt::print("{:<44} {:<8} {}\n", name, io::dtype_name(info.dtype), shape_text(info.shape));
  }
  out["quantized"] = nlohmann::ordered_json::array();
  if (!quantized.empty() && !json)
    fmt::print("\n{} quantized weights:\n{:<44} {:<12} {:>7}  {}\n", quantized.size(), "weight",
               "shape", "bits/w", "scheme");
  for (const std::string& name : quantized) {
    const QuantizedMatrix q = io::read_quantized(st, name);
    out["quantized"].push_back({{"name", name},
                                {"rows", q.rows()},
                                {"cols", q.cols()},
                                {"bits_per_weight", q.bits_per_weight()},
                                {"scheme", q.scheme().to_string()}});
    if (!json)
      fmt::print("{:<44} {:<12} {:>7.3f}  {}\n", name, fmt::format("{}x{}", q.rows(), q.cols()),
                 q.bits_per_weight(), q.scheme().to_string());
  }
  if (json) fmt::print("{}\n", out.dump(2));
  return 0;
}

}  // namespace lowbit::cli
