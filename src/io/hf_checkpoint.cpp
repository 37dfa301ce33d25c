#include "lowbit/io/hf_checkpoint.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include "lowbit/error.hpp"
#include "lowbit/io/llama_checkpoint.hpp"

namespace lowbit::io {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

/// The architectures lowbit runs, with what transformers' config classes default to.
struct Architecture {
  std::string_view name;        // "architectures"[0]
  std::string_view model_type;  // the config's "model_type", used when "architectures" is absent
  int default_max_positions;
  int default_head_dim;  // 0: hidden_size / num_attention_heads
  bool qkv_bias_always;  // Qwen2: q, k and v always have a bias, o never
  bool reads_attention_bias;
  bool qk_norm;
  bool reads_sliding_window;    // Mistral: "sliding_window" applies to every layer
  bool has_use_sliding_window;  // Qwen: "use_sliding_window" (refused when true)
};
constexpr std::array<Architecture, 4> architectures{{
    {"LlamaForCausalLM", "llama", 2048, 0, false, true, false, false, false},
    {"MistralForCausalLM", "mistral", 4096 * 32, 0, false, false, false, true, false},
    {"Qwen2ForCausalLM", "qwen2", 32768, 0, true, false, false, false, true},
    {"Qwen3ForCausalLM", "qwen3", 32768, 128, false, true, true, false, true},
}};

std::string supported_list() {
  std::string list;
  for (const Architecture& a : architectures) list.append(list.empty() ? "" : ", ").append(a.name);
  return list;
}

/// Reads config.json's fields with transformers' types and defaults; every failure names the file
/// and the field.
class ConfigReader {
 public:
  ConfigReader(const json& j, const std::string& file) : j_(j), file_(file) {}

  [[noreturn]] void fail(const std::string& field, const std::string& why) const {
    throw io_error("config field \"" + field + "\" " + why, ErrorContext{file_, {}, {}});
  }
  /// The field, or nullptr when absent or null (transformers' "not given").
  const json* find(const json& object, const std::string& name) const {
    auto it = object.find(name);
    return it == object.end() || it->is_null() ? nullptr : &*it;
  }
  const json* find(const std::string& name) const { return find(j_, name); }
  const std::string& file() const noexcept { return file_; }

  /// An integer in [minimum, maximum]; `fallback` when absent (nullopt: required).
  int integer(const json& object, const std::string& name, long long minimum, long long maximum,
              std::optional<int> fallback) const {
    const json* f = find(object, name);
    if (f == nullptr) {
      if (!fallback) fail(name, "is missing");
      return *fallback;
    }
    if (!f->is_number_integer()) fail(name, "is " + f->dump() + ", not an integer");
    // Compared as the JSON's own type: a uint64 above 2^63 must not wrap to a small int64.
    const bool too_large = f->is_number_unsigned()
                               ? f->get<std::uint64_t>() > static_cast<std::uint64_t>(maximum)
                               : f->get<std::int64_t>() > maximum;
    if (too_large || (!f->is_number_unsigned() && f->get<std::int64_t>() < minimum) ||
        (f->is_number_unsigned() && f->get<std::uint64_t>() < static_cast<std::uint64_t>(minimum)))
      fail(name, "is " + f->dump() + ", outside [" + std::to_string(minimum) + ", " +
                     std::to_string(maximum) + "]");
    return static_cast<int>(f->get<std::int64_t>());
  }
  int integer(const std::string& name, long long minimum, long long maximum,
              std::optional<int> fallback) const {
    return integer(j_, name, minimum, maximum, fallback);
  }
  /// A finite number that fits a float; `fallback` when absent.
  float number(const json& object, const std::string& name, std::optional<float> fallback) const {
    const json* f = find(object, name);
    if (f == nullptr) {
      if (!fallback) fail(name, "is missing");
      return *fallback;
    }
    if (!f->is_number()) fail(name, "is " + f->dump() + ", not a number");
    const auto value = f->get<double>();
    if (!std::isfinite(value) || std::fabs(value) > std::numeric_limits<float>::max())
      fail(name, "is " + f->dump() + ", not a finite float");
    return static_cast<float>(value);
  }
  bool boolean(const std::string& name, bool fallback) const {
    const json* f = find(name);
    if (f == nullptr) return fallback;
    if (!f->is_boolean()) fail(name, "is " + f->dump() + ", not a boolean");
    return f->get<bool>();
  }
  /// An int, a list of ints, or null (empty).
  std::vector<int> token_ids(const std::string& name) const {
    const json* f = find(name);
    if (f == nullptr) return {};
    const auto id = [&](const json& v) {
      if (!v.is_number_integer() || v.get<std::int64_t>() < 0 ||
          (v.is_number_unsigned() && v.get<std::uint64_t>() > std::numeric_limits<int>::max()) ||
          v.get<std::int64_t>() > std::numeric_limits<int>::max())
        fail(name, "holds " + v.dump() + ", not a token id (an integer in [0, 2^31))");
      return static_cast<int>(v.get<std::int64_t>());
    };
    if (!f->is_array()) return {id(*f)};
    if (f->size() > (1u << 16)) fail(name, "lists more than 65536 ids");
    std::vector<int> ids;
    for (const json& v : *f) ids.push_back(id(v));
    return ids;
  }
  std::string string(const json& object, const std::string& name, std::string fallback) const {
    const json* f = find(object, name);
    if (f == nullptr) return fallback;
    if (!f->is_string()) fail(name, "is " + f->dump() + ", not a string");
    return f->get<std::string>();
  }

 private:
  const json& j_;
  const std::string& file_;
};

const Architecture& find_architecture(const ConfigReader& reader, const json& j) {
  std::string name;
  if (const json* list = reader.find("architectures")) {
    if (!list->is_array() || list->empty() || !(*list)[0].is_string())
      reader.fail("architectures", "is " + list->dump() + ", not a list of names");
    name = (*list)[0].get<std::string>();
    if (list->size() > 1)
      reader.fail("architectures", "lists " + std::to_string(list->size()) +
                                       " architectures; lowbit reads a checkpoint of one");
    for (const Architecture& a : architectures)
      if (a.name == name) return a;
  } else {
    // No "architectures": transformers goes by "model_type".
    name = reader.string(j, "model_type", "");
    for (const Architecture& a : architectures)
      if (a.model_type == name) return a;
    if (name.empty()) reader.fail("architectures", "is missing (and so is model_type)");
  }
  throw io_error("unsupported architecture '" + name + "' (lowbit reads " + supported_list() + ")",
                 ErrorContext{reader.file(), {}, {}});
}

/// The rotary settings: transformers 5's "rope_parameters" {rope_theta, rope_type, ...}, else
/// transformers 4's top-level "rope_theta" and "rope_scaling" {rope_type (or "type"), ...}.
void read_rope(const ConfigReader& reader, const json& j, LlamaConfig& c) {
  const json* scaling = nullptr;
  std::string where = "rope_scaling";
  if (const json* parameters = reader.find("rope_parameters")) {
    if (!parameters->is_object()) reader.fail("rope_parameters", "is not an object");
    c.rope_theta = reader.number(*parameters, "rope_theta", 10000.0f);
    scaling = parameters;
    where = "rope_parameters";
  } else {
    c.rope_theta = reader.number(j, "rope_theta", 10000.0f);
    scaling = reader.find("rope_scaling");
    if (scaling != nullptr && !scaling->is_object())
      reader.fail("rope_scaling", "is not an object");
  }
  if (scaling == nullptr) return;
  std::string type = reader.string(*scaling, "rope_type", "");
  if (type.empty()) type = reader.string(*scaling, "type", "default");
  if (type == "default") return;
  if (type != "llama3")
    throw io_error("unsupported rope type '" + type + "' in \"" + where +
                       "\" (lowbit runs \"default\" and \"llama3\")",
                   ErrorContext{reader.file(), {}, {}});
  RopeScaling& r = c.rope_scaling;
  r.type = RopeScalingType::llama3;
  r.factor = reader.number(*scaling, "factor", std::nullopt);
  r.low_freq_factor = reader.number(*scaling, "low_freq_factor", std::nullopt);
  r.high_freq_factor = reader.number(*scaling, "high_freq_factor", std::nullopt);
  r.original_max_position_embeddings = reader.integer(*scaling, "original_max_position_embeddings",
                                                      1, LlamaConfigLimits::seq_len, std::nullopt);
}

/// "model.layers.N." -> N, or nullopt (N is decimal digits without a sign or leading zero).
std::optional<std::size_t> layer_index(std::string_view name, std::string_view& rest) {
  constexpr std::string_view prefix = "model.layers.";
  if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
  name.remove_prefix(prefix.size());
  std::size_t digits = 0, value = 0;
  while (digits < name.size() && name[digits] >= '0' && name[digits] <= '9') {
    if (digits == 9) return std::nullopt;  // far past any layer count
    value = value * 10 + static_cast<std::size_t>(name[digits] - '0');
    ++digits;
  }
  if (digits == 0 || digits >= name.size() || name[digits] != '.' || (digits > 1 && name[0] == '0'))
    return std::nullopt;
  rest = name.substr(digits + 1);
  return value;
}

/// A layer's tensors: Hugging Face name after "model.layers.N.", Llama name after "layers.N.".
constexpr std::array<std::pair<std::string_view, std::string_view>, 15> layer_tensor_names{{
    {"self_attn.q_proj.weight", "attention.wq.weight"},
    {"self_attn.k_proj.weight", "attention.wk.weight"},
    {"self_attn.v_proj.weight", "attention.wv.weight"},
    {"self_attn.o_proj.weight", "attention.wo.weight"},
    {"self_attn.q_proj.bias", "attention.wq.bias"},
    {"self_attn.k_proj.bias", "attention.wk.bias"},
    {"self_attn.v_proj.bias", "attention.wv.bias"},
    {"self_attn.o_proj.bias", "attention.wo.bias"},
    {"self_attn.q_norm.weight", "attention.q_norm.weight"},
    {"self_attn.k_norm.weight", "attention.k_norm.weight"},
    {"mlp.gate_proj.weight", "feed_forward.w1.weight"},
    {"mlp.down_proj.weight", "feed_forward.w2.weight"},
    {"mlp.up_proj.weight", "feed_forward.w3.weight"},
    {"input_layernorm.weight", "attention_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
}};

/// The Hugging Face name of a Llama name (for a message about a tensor that is missing).
std::string hf_name_of(const std::string& llama) {
  if (llama == "tok_embeddings.weight") return "model.embed_tokens.weight";
  if (llama == "norm.weight") return "model.norm.weight";
  if (llama == "output.weight") return "lm_head.weight";
  const std::size_t layer_end = llama.find('.', 7);  // after "layers."
  if (llama.rfind("layers.", 0) == 0 && layer_end != std::string::npos) {
    const std::string_view rest = std::string_view(llama).substr(layer_end + 1);
    for (const auto& [hf, name] : layer_tensor_names)
      if (rest == name) return "model." + llama.substr(0, layer_end + 1) + std::string(hf);
  }
  return llama;
}

/// Tensors a checkpoint may hold that are not weights: transformers ignores them on load.
bool ignored_tensor(std::string_view hf_name) {
  constexpr std::string_view buffer = ".rotary_emb.inv_freq";
  return hf_name.size() >= buffer.size() &&
         hf_name.substr(hf_name.size() - buffer.size()) == buffer;
}

/// Every tensor a config's model has, under its Llama name, with its shape.
std::vector<std::pair<std::string, std::vector<std::size_t>>> expected_tensors(
    const LlamaConfig& c) {
  const auto dim = static_cast<std::size_t>(c.dim), hidden = static_cast<std::size_t>(c.hidden_dim),
             q_dim = static_cast<std::size_t>(c.q_dim()),
             kv_dim = static_cast<std::size_t>(c.kv_dim()),
             head = static_cast<std::size_t>(c.head_size()),
             vocab = static_cast<std::size_t>(c.vocab_size);
  std::vector<std::pair<std::string, std::vector<std::size_t>>> out;
  out.push_back({"tok_embeddings.weight", {vocab, dim}});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    out.push_back({p + "attention_norm.weight", {dim}});
    out.push_back({p + "attention.wq.weight", {q_dim, dim}});
    out.push_back({p + "attention.wk.weight", {kv_dim, dim}});
    out.push_back({p + "attention.wv.weight", {kv_dim, dim}});
    out.push_back({p + "attention.wo.weight", {dim, q_dim}});
    if (c.qkv_bias) {
      out.push_back({p + "attention.wq.bias", {q_dim}});
      out.push_back({p + "attention.wk.bias", {kv_dim}});
      out.push_back({p + "attention.wv.bias", {kv_dim}});
    }
    if (c.output_bias) out.push_back({p + "attention.wo.bias", {dim}});
    if (c.qk_norm) {
      out.push_back({p + "attention.q_norm.weight", {head}});
      out.push_back({p + "attention.k_norm.weight", {head}});
    }
    out.push_back({p + "ffn_norm.weight", {dim}});
    out.push_back({p + "feed_forward.w1.weight", {hidden, dim}});
    out.push_back({p + "feed_forward.w2.weight", {dim, hidden}});
    out.push_back({p + "feed_forward.w3.weight", {hidden, dim}});
  }
  out.push_back({"norm.weight", {dim}});
  if (!c.shared_classifier) out.push_back({"output.weight", {vocab, dim}});
  return out;
}

std::string shape_text(const std::vector<std::size_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i)
    text.append(i ? ", " : "").append(std::to_string(shape[i]));
  return text + "]";
}

}  // namespace

HfConfig parse_hf_config(std::string_view json_text, const std::string& file) {
  const json j = json::parse(json_text.begin(), json_text.end(), nullptr,
                             /*allow_exceptions=*/false);
  if (j.is_discarded()) throw io_error("config is not valid JSON", ErrorContext{file, {}, {}});
  if (!j.is_object()) throw io_error("config is not a JSON object", ErrorContext{file, {}, {}});
  const ConfigReader reader(j, file);
  const Architecture& arch = find_architecture(reader, j);
  using Limits = LlamaConfigLimits;

  HfConfig out;
  out.architecture = std::string(arch.name);
  LlamaConfig& c = out.llama;
  c.rope_style = RopeStyle::rotate_half;  // HF's q and k rows are laid out for rotate-half
  c.dim = reader.integer("hidden_size", 1, Limits::dim, std::nullopt);
  c.hidden_dim = reader.integer("intermediate_size", 1, Limits::hidden_dim, std::nullopt);
  c.n_layers = reader.integer("num_hidden_layers", 1, Limits::n_layers, std::nullopt);
  c.n_heads = reader.integer("num_attention_heads", 1, Limits::n_heads, std::nullopt);
  c.n_kv_heads = reader.integer("num_key_value_heads", 1, Limits::n_heads, c.n_heads);
  c.vocab_size = reader.integer("vocab_size", 1, Limits::vocab_size, std::nullopt);
  c.seq_len =
      reader.integer("max_position_embeddings", 1, Limits::seq_len, arch.default_max_positions);
  // transformers: head_dim if given, else hidden_size // num_attention_heads (floor division).
  c.head_dim =
      reader.integer("head_dim", 1, Limits::head_dim,
                     arch.default_head_dim > 0 ? arch.default_head_dim : c.dim / c.n_heads);
  if (c.head_dim < 1)
    reader.fail("head_dim", "is absent and hidden_size " + std::to_string(c.dim) +
                                " / num_attention_heads " + std::to_string(c.n_heads) + " is 0");
  c.norm_eps = reader.number(j, "rms_norm_eps", 1e-6f);
  c.shared_classifier = reader.boolean("tie_word_embeddings", false);
  read_rope(reader, j, c);

  const bool attention_bias = reader.boolean("attention_bias", false);
  c.qkv_bias = arch.qkv_bias_always || (arch.reads_attention_bias && attention_bias);
  c.output_bias = arch.reads_attention_bias && attention_bias;
  c.qk_norm = arch.qk_norm;
  if (arch.reads_sliding_window)
    c.sliding_window = reader.integer("sliding_window", 0, Limits::seq_len, 0);
  if (arch.has_use_sliding_window && reader.boolean("use_sliding_window", false))
    reader.fail("use_sliding_window", "is true: per-layer sliding windows are not supported");
  if (reader.boolean("mlp_bias", false))
    reader.fail("mlp_bias", "is true: MLP biases are not supported");
  if (const std::string act = reader.string(j, "hidden_act", "silu"); act != "silu")
    reader.fail("hidden_act", "is \"" + act + "\": only silu (SwiGLU) is supported");
  if (const json* partial = reader.find("partial_rotary_factor");
      partial != nullptr && !(partial->is_number() && partial->get<double>() == 1.0))
    reader.fail("partial_rotary_factor", "is " + partial->dump() + ": only 1 is supported");
  out.bos_token_ids = reader.token_ids("bos_token_id");
  out.eos_token_ids = reader.token_ids("eos_token_id");

  if (const std::string problem = llama_config_problem(c); !problem.empty())
    throw io_error("config: " + problem, ErrorContext{file, {}, {}});
  return out;
}

HfConfig read_hf_config(const fs::path& config_json) {
  const std::string file = config_json.string();
  const std::uint64_t size = regular_file_size(config_json);  // no FIFO or directory
  if (size > (std::uint64_t{16} << 20))
    throw io_error("config of " + std::to_string(size) + " bytes exceeds the 16 MB limit",
                   ErrorContext{file, {}, {}});
  std::ifstream in(config_json, std::ios::binary);
  if (!in) throw io_error("cannot open config", ErrorContext{file, {}, {}});
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) throw io_error("cannot read config", ErrorContext{file, {}, {}});
  return parse_hf_config(text.str(), file);
}

std::string llama_name_of_hf_tensor(std::string_view hf_name) {
  if (hf_name == "model.embed_tokens.weight") return "tok_embeddings.weight";
  if (hf_name == "model.norm.weight") return "norm.weight";
  if (hf_name == "lm_head.weight") return "output.weight";
  std::string_view rest;
  const std::optional<std::size_t> layer = layer_index(hf_name, rest);
  if (!layer) return {};
  for (const auto& [hf, llama] : layer_tensor_names)
    if (rest == hf) return "layers." + std::to_string(*layer) + "." + std::string(llama);
  return {};
}

bool is_hf_checkpoint(const fs::path& path) {
  std::error_code error;
  if (fs::is_directory(path, error)) return fs::exists(path / "config.json", error);
  const std::string name = path.filename().string();
  constexpr std::string_view index_suffix = ".safetensors.index.json";
  if (name.size() >= index_suffix.size() &&
      name.compare(name.size() - index_suffix.size(), index_suffix.size(), index_suffix) == 0)
    return true;
  constexpr std::string_view suffix = ".safetensors";
  if (name.size() < suffix.size() ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0 ||
      !fs::exists(path.parent_path() / "config.json", error))
    return false;
  // lowbit's own files (a quantized HF model written into its directory) carry their config.
  try {
    const SafetensorsFile file(path);
    return file.metadata().count(std::string(llama_config_metadata_key)) == 0;
  } catch (const io_error&) {
    return false;  // the safetensors reader reports what is wrong with it
  }
}

HfCheckpoint::HfCheckpoint(const fs::path& path) {
  std::error_code error;
  const bool is_directory = fs::is_directory(path, error);
  directory_ = is_directory ? path : path.parent_path();
  const fs::path config_path = directory_ / "config.json";
  if (!fs::exists(config_path, error))
    throw io_error("no config.json beside the weights", ErrorContext{path.string(), {}, {}});
  config_ = read_hf_config(config_path);
  weights_path_ = path;
  if (is_directory) {
    weights_path_ = path / "model.safetensors.index.json";
    if (!fs::exists(weights_path_, error)) weights_path_ = path / "model.safetensors";
    if (!fs::exists(weights_path_, error))
      throw io_error("neither model.safetensors nor model.safetensors.index.json is here",
                     ErrorContext{path.string(), {}, {}});
  }
  const LlamaConfig& c = config_.llama;

  const std::string weights = weights_path_.string();
  const bool sharded = weights.size() >= 5 && weights.compare(weights.size() - 5, 5, ".json") == 0;
  std::vector<std::string> names;
  if (sharded) {
    sharded_.emplace(weights_path_);
    names = sharded_->names();
  } else {
    single_.emplace(weights_path_);
    names = single_->names();
  }

  const auto expected = expected_tensors(c);
  std::map<std::string, const std::vector<std::size_t>*, std::less<>> shapes;
  for (const auto& [name, shape] : expected) shapes.emplace(name, &shape);
  for (const std::string& hf : names) {
    if (ignored_tensor(hf)) continue;
    const std::string llama = llama_name_of_hf_tensor(hf);
    if (llama == "output.weight" && c.shared_classifier) continue;  // tied: the embedding's
    const fs::path& file = sharded_ ? sharded_->shard_of(hf).path() : weights_path_;
    const TensorInfo& info = sharded_ ? sharded_->info(hf) : single_->info(hf);
    const auto shape_it = shapes.find(llama);
    if (llama.empty() || shape_it == shapes.end())
      throw io_error("unexpected tensor: not part of this " + config_.architecture +
                         " model (config.json: " + std::to_string(c.n_layers) + " layers" +
                         (c.qkv_bias ? ", q/k/v biases" : "") + (c.qk_norm ? ", q/k norms" : "") +
                         (c.shared_classifier ? ", tied embeddings" : "") + ")",
                     ErrorContext{file.string(), hf, info.shape});
    if (info.dtype != DType::F32 && info.dtype != DType::F16 && info.dtype != DType::BF16)
      throw io_error("dtype " + std::string(dtype_name(info.dtype)) +
                         " is not a float weight (F32, F16 or BF16)",
                     ErrorContext{file.string(), hf, info.shape});
    if (info.shape != *shape_it->second)
      throw io_error("expected shape " + shape_text(*shape_it->second) + " from config.json",
                     ErrorContext{file.string(), hf, info.shape});
    hf_names_.emplace(llama, hf);
  }
  for (const auto& [llama, shape] : expected) {
    auto it = hf_names_.find(llama);
    if (it == hf_names_.end())
      throw io_error("tensor is missing (config.json's model has it: " + llama + ")",
                     ErrorContext{weights, hf_name_of(llama), shape});
    tensors_.push_back({llama, info(llama).dtype, shape});
  }
}

const std::string& HfCheckpoint::hf_name(std::string_view llama_name) const {
  auto it = hf_names_.find(llama_name);
  if (it == hf_names_.end())
    throw io_error("no tensor of this Llama name",
                   ErrorContext{weights_path_.string(), std::string(llama_name), {}});
  return it->second;
}

const TensorInfo& HfCheckpoint::info(std::string_view llama_name) const {
  const std::string& hf = hf_name(llama_name);
  return sharded_ ? sharded_->info(hf) : single_->info(hf);
}

const fs::path& HfCheckpoint::file_of(std::string_view llama_name) const {
  const std::string& hf = hf_name(llama_name);
  return sharded_ ? sharded_->shard_of(hf).path() : weights_path_;
}

std::vector<float> HfCheckpoint::to_float(std::string_view llama_name) const {
  const std::string& hf = hf_name(llama_name);
  return sharded_ ? sharded_->to_float(hf) : single_->to_float(hf);
}

}  // namespace lowbit::io
