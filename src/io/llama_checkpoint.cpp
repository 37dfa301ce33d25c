#include "lowbit/io/llama_checkpoint.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/hf_checkpoint.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/io/quantized_safetensors.hpp"

namespace lowbit::io {
namespace {

using nlohmann::json;

constexpr std::array<const char*, 7> int_fields{"dim",        "hidden_dim", "n_layers", "n_heads",
                                                "n_kv_heads", "vocab_size", "seq_len"};

int& int_field(LlamaConfig& c, std::size_t i) {
  std::array<int*, 7> fields{&c.dim,        &c.hidden_dim, &c.n_layers, &c.n_heads,
                             &c.n_kv_heads, &c.vocab_size, &c.seq_len};
  return *fields[i];
}

std::string out_of_range(const char* name, std::int64_t value, std::int64_t max) {
  std::string text = name;
  text.append(" is ").append(std::to_string(value)).append(", outside [1, ");
  text.append(std::to_string(max)).append("]");
  return text;
}

std::string number_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

/// An error's reason with its tensor, without the file (which the caller's message names).
std::string reason_of(const io_error& e) {
  const std::string& tensor = e.context().tensor;
  if (tensor.empty() || e.reason().find(tensor) != std::string::npos) return e.reason();
  return "tensor '" + tensor + "': " + e.reason();
}

}  // namespace

std::string llama_config_problem(const LlamaConfig& c) {
  using Limits = LlamaConfigLimits;
  const std::array<std::tuple<const char*, int, int>, 7> ranges{{
      {"dim", c.dim, Limits::dim},
      {"hidden_dim", c.hidden_dim, Limits::hidden_dim},
      {"n_layers", c.n_layers, Limits::n_layers},
      {"n_heads", c.n_heads, Limits::n_heads},
      {"n_kv_heads", c.n_kv_heads, Limits::n_heads},
      {"vocab_size", c.vocab_size, Limits::vocab_size},
      {"seq_len", c.seq_len, Limits::seq_len},
  }};
  for (const auto& [name, value, max] : ranges)
    if (value < 1 || value > max) return out_of_range(name, value, max);
  if (c.head_dim == 0 && c.dim % c.n_heads != 0)
    return "dim " + std::to_string(c.dim) + " is not a multiple of n_heads " +
           std::to_string(c.n_heads) + " (and head_dim is not given)";
  if (c.head_dim < 0 || c.head_dim > Limits::head_dim)
    return "head_dim is " + std::to_string(c.head_dim) + ", outside [0, " +
           std::to_string(Limits::head_dim) + "] (0: dim / n_heads)";
  if (c.head_size() % 2 != 0)
    return "head size " + std::to_string(c.head_size()) + " is odd (RoPE rotates pairs)";
  if (static_cast<long long>(c.n_heads) * c.head_size() > Limits::attention_dim)
    return "n_heads * head size is " +
           std::to_string(static_cast<long long>(c.n_heads) * c.head_size()) + ", above " +
           std::to_string(Limits::attention_dim);
  if (c.n_heads % c.n_kv_heads != 0)
    return "n_heads " + std::to_string(c.n_heads) + " is not a multiple of n_kv_heads " +
           std::to_string(c.n_kv_heads);
  // (negated comparisons: NaN fails them)
  if (!(c.norm_eps > 0.0f && c.norm_eps <= 1.0f))
    return "norm_eps " + number_text(c.norm_eps) + " is outside (0, 1]";
  if (!(c.rope_theta >= 1.0f && c.rope_theta <= Limits::rope_theta))
    return "rope_theta " + number_text(c.rope_theta) + " is outside [1, 1e12]";
  if (c.sliding_window < 0 || c.sliding_window > Limits::seq_len)
    return "sliding_window is " + std::to_string(c.sliding_window) + ", outside [0, " +
           std::to_string(Limits::seq_len) + "]";
  if (c.rope_style != RopeStyle::adjacent && c.rope_style != RopeStyle::rotate_half)
    return "rope_style is not one of adjacent, rotate_half";
  const RopeScaling& r = c.rope_scaling;
  if (r.type == RopeScalingType::llama3) {
    if (!(std::isfinite(r.factor) && r.factor > 0.0f))
      return "llama3 rope scaling: factor " + number_text(r.factor) + " is not finite and > 0";
    if (!(std::isfinite(r.low_freq_factor) && r.low_freq_factor > 0.0f))
      return "llama3 rope scaling: low_freq_factor " + number_text(r.low_freq_factor) +
             " is not finite and > 0";
    // (the smooth band divides by high - low)
    if (!(std::isfinite(r.high_freq_factor) && r.high_freq_factor > r.low_freq_factor))
      return "llama3 rope scaling: high_freq_factor " + number_text(r.high_freq_factor) +
             " is not finite and above low_freq_factor " + number_text(r.low_freq_factor);
    if (r.original_max_position_embeddings < 1 ||
        r.original_max_position_embeddings > Limits::seq_len)
      return "llama3 rope scaling: " + out_of_range("original_max_position_embeddings",
                                                    r.original_max_position_embeddings,
                                                    Limits::seq_len);
  } else if (r.type != RopeScalingType::none) {
    return "rope scaling type is not one of none, llama3";
  }
  return {};
}

std::string_view rope_style_name(RopeStyle style) noexcept {
  return style == RopeStyle::rotate_half ? "rotate_half" : "adjacent";
}

void add_llama_config(std::map<std::string, std::string>& metadata, const LlamaConfig& config) {
  LlamaConfig c = config;
  json j = json::object();
  for (std::size_t i = 0; i < int_fields.size(); ++i) j[int_fields[i]] = int_field(c, i);
  j["norm_eps"] = config.norm_eps;
  j["rope_theta"] = config.rope_theta;
  j["shared_classifier"] = config.shared_classifier;
  // The fields the Llama family added; a reader of an older file takes their defaults.
  j["head_dim"] = config.head_dim;  // as set: 0 stays "dim / n_heads"
  j["rope_style"] = rope_style_name(config.rope_style);
  j["qkv_bias"] = config.qkv_bias;
  j["output_bias"] = config.output_bias;
  j["qk_norm"] = config.qk_norm;
  j["sliding_window"] = config.sliding_window;
  const RopeScaling& r = config.rope_scaling;
  if (r.type == RopeScalingType::llama3)
    j["rope_scaling"] = {{"type", "llama3"},
                         {"factor", r.factor},
                         {"low_freq_factor", r.low_freq_factor},
                         {"high_freq_factor", r.high_freq_factor},
                         {"original_max_position_embeddings", r.original_max_position_embeddings}};
  metadata[std::string(llama_config_metadata_key)] = j.dump();
}

LlamaConfig read_llama_config(const SafetensorsFile& file) {
  const std::string path = file.path().string();
  auto fail = [&](const std::string& why) -> void {
    std::string message = "metadata \"lowbit.llama.config\": ";
    message.append(why);
    throw io_error(message, ErrorContext{path, {}, {}});
  };
  auto it = file.metadata().find(std::string(llama_config_metadata_key));
  if (it == file.metadata().end()) fail("absent (not a Llama checkpoint written by lowbit)");
  json j = json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) fail("not a JSON object");
  // An integer field in [0, INT_MAX] (the bounds come from llama_config_problem).
  const auto read_int = [&](const json& object, const std::string& name, int& out) {
    auto f = object.find(name);
    if (f == object.end() || !f->is_number_integer())
      fail("field \"" + name + "\" is missing or not an integer");
    const auto value = f->get<std::int64_t>();
    if (value < 0 || value > std::numeric_limits<int>::max())
      fail("field \"" + name + "\" is out of range");
    out = static_cast<int>(value);
  };
  const auto read_float = [&](const json& object, const std::string& name, float& out) {
    auto f = object.find(name);
    if (f == object.end() || !f->is_number())
      fail("field \"" + name + "\" is missing or not a number");
    // As a double first: a value past float's range (1e300) must not be converted.
    const auto value = f->get<double>();
    if (!std::isfinite(value) || std::fabs(value) > std::numeric_limits<float>::max())
      fail("field \"" + name + "\" is " + f->dump() + ", not a finite float");
    out = static_cast<float>(value);
  };
  const auto read_bool = [&](const std::string& name, bool& out) {
    auto f = j.find(name);
    if (f == j.end() || !f->is_boolean())
      fail("field \"" + name + "\" is missing or not a boolean");
    out = f->get<bool>();
  };
  LlamaConfig c;
  for (std::size_t i = 0; i < int_fields.size(); ++i) read_int(j, int_fields[i], int_field(c, i));
  read_float(j, "norm_eps", c.norm_eps);
  read_float(j, "rope_theta", c.rope_theta);
  read_bool("shared_classifier", c.shared_classifier);
  // Written since the Llama family's fields: optional, so that older files keep loading (they
  // were all llama2.c layouts: adjacent RoPE pairs, no biases, no q/k norm).
  if (j.contains("head_dim")) read_int(j, "head_dim", c.head_dim);
  if (j.contains("rope_style")) {
    const json& style = j["rope_style"];
    if (style == "adjacent")
      c.rope_style = RopeStyle::adjacent;
    else if (style == "rotate_half")
      c.rope_style = RopeStyle::rotate_half;
    else
      fail("field \"rope_style\" is " + style.dump() + ", not \"adjacent\" or \"rotate_half\"");
  }
  for (const char* name : {"qkv_bias", "output_bias", "qk_norm"})
    if (j.contains(name))
      read_bool(name, std::strcmp(name, "qkv_bias") == 0      ? c.qkv_bias
                      : std::strcmp(name, "output_bias") == 0 ? c.output_bias
                                                              : c.qk_norm);
  if (j.contains("sliding_window")) read_int(j, "sliding_window", c.sliding_window);
  if (auto scaling = j.find("rope_scaling"); scaling != j.end() && !scaling->is_null()) {
    if (!scaling->is_object() || scaling->value("type", json()) != "llama3")
      fail("field \"rope_scaling\" is not an object of type \"llama3\"");
    RopeScaling& r = c.rope_scaling;
    r.type = RopeScalingType::llama3;
    read_float(*scaling, "factor", r.factor);
    read_float(*scaling, "low_freq_factor", r.low_freq_factor);
    read_float(*scaling, "high_freq_factor", r.high_freq_factor);
    read_int(*scaling, "original_max_position_embeddings", r.original_max_position_embeddings);
  }
  if (const std::string problem = llama_config_problem(c); !problem.empty()) fail(problem);
  return c;
}

void convert_llama2c_to_safetensors(const std::filesystem::path& in,
                                    const std::filesystem::path& out) {
  // One tensor in memory at a time.
  const Llama2cFile checkpoint(in);
  std::vector<TensorLayout> layout;
  layout.reserve(checkpoint.tensors().size());
  for (const auto& t : checkpoint.tensors()) layout.push_back({t.name, DType::F32, t.shape});
  std::map<std::string, std::string> metadata;
  add_llama_config(metadata, checkpoint.config());
  SafetensorsWriter writer(out, std::move(layout), std::move(metadata));
  for (const auto& t : checkpoint.tensors()) {
    const NamedTensor tensor = checkpoint.read(t.name);
    writer.write(t.name, std::as_bytes(std::span<const float>(tensor.data)));
  }
  writer.finish();
}

std::string detect_checkpoint_format(const std::filesystem::path& path) {
  const std::string file = path.string();
  // A Hugging Face model directory, its shard index, or its model.safetensors with config.json
  // beside it (lowbit's own safetensors files carry their config and are read as lowbit's).
  if (is_hf_checkpoint(path)) return "huggingface";
  const std::uint64_t size = regular_file_size(path);  // no FIFO, device or directory
  // GGUF: its magic number; a file named .gguf is one however broken (opening it says why).
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (has_gguf_magic(path) || extension == ".gguf") return "gguf";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error("cannot open file", ErrorContext{file, {}, {}});
  std::array<unsigned char, 9> head{};
  in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
  const auto got = static_cast<std::size_t>(in.gcount());
  if (got == head.size()) {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | head[static_cast<std::size_t>(i)];
    if (n >= 2 && n <= size - 8 && head[8] == '{') return "safetensors";
  }
  // A file named .safetensors is one, however broken: opening it says what is wrong with it.
  if (extension == ".safetensors") return "safetensors";
  // A llama2.c checkpoint has no magic number: it is one when its header is plausible and its
  // arrays fill the file exactly, which is what opening it checks.
  std::string as_llama2c;
  try {
    const Llama2cFile checkpoint(path);
    return "llama2c";
  } catch (const io_error& e) {
    as_llama2c = reason_of(e);
  }
  // Neither: say what is wrong with it as each, so the real reason is among them (as safetensors,
  // only where its JSON header would start: otherwise its "header length" is any 8 bytes).
  std::string as_safetensors = "no JSON header at byte 8";
  if (got < head.size() || head[8] == '{') {
    try {
      const SafetensorsFile safetensors(path);
      return "safetensors";
    } catch (const io_error& e) {
      as_safetensors = reason_of(e);
    }
  }
  throw io_error("neither a safetensors file nor a llama2.c checkpoint (as safetensors: " +
                     as_safetensors + "; as llama2.c: " + as_llama2c + ")",
                 ErrorContext{file, {}, {}});
}

}  // namespace lowbit::io
