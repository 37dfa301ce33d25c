#include "lowbit/io/gguf_llama.hpp"

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "lowbit/error.hpp"

namespace lowbit::io {

namespace {

struct Architecture {
  const char* name;
  RopeStyle rope_style;
  bool qkv_bias;
  bool qk_norm;
};

// What llama.cpp's llama_model_rope_type gives each: LLAMA_ROPE_TYPE_NORM (adjacent pairs) for
// llama, NEOX (halves) for the Qwen family.
constexpr Architecture architectures[] = {
    {"llama", RopeStyle::adjacent, false, false},
    {"qwen2", RopeStyle::rotate_half, true, false},
    {"qwen3", RopeStyle::rotate_half, false, true},
};

[[noreturn]] void fail(const GgufFile& file, const std::string& reason,
                       const std::string& tensor = {}, std::vector<std::size_t> shape = {}) {
  throw io_error(reason, ErrorContext{file.path().string(), tensor, std::move(shape)});
}

// A count key as an int in [0, INT_MAX] (llama_config_problem bounds it further).
int read_count(const GgufFile& file, const std::string& key) {
  const std::int64_t value = file.get_int(key);
  if (value < 0 || value > std::numeric_limits<int>::max())
    fail(file, "metadata '" + key + "' is " + std::to_string(value) + ", not a count");
  return static_cast<int>(value);
}
std::optional<int> read_optional_count(const GgufFile& file, const std::string& key) {
  if (file.find(key) == nullptr) return std::nullopt;
  return read_count(file, key);
}

// llama.cpp's tensor names of block `layer`, and lowbit's.
std::map<std::string, std::string> layer_names(int layer) {
  const std::string g = "blk." + std::to_string(layer) + ".";
  const std::string l = "layers." + std::to_string(layer) + ".";
  return {
      {g + "attn_norm.weight", l + "attention_norm.weight"},
      {g + "attn_q.weight", l + "attention.wq.weight"},
      {g + "attn_k.weight", l + "attention.wk.weight"},
      {g + "attn_v.weight", l + "attention.wv.weight"},
      {g + "attn_output.weight", l + "attention.wo.weight"},
      {g + "attn_q.bias", l + "attention.wq.bias"},
      {g + "attn_k.bias", l + "attention.wk.bias"},
      {g + "attn_v.bias", l + "attention.wv.bias"},
      {g + "attn_output.bias", l + "attention.wo.bias"},
      {g + "attn_q_norm.weight", l + "attention.q_norm.weight"},
      {g + "attn_k_norm.weight", l + "attention.k_norm.weight"},
      {g + "ffn_norm.weight", l + "ffn_norm.weight"},
      {g + "ffn_gate.weight", l + "feed_forward.w1.weight"},
      {g + "ffn_down.weight", l + "feed_forward.w2.weight"},
      {g + "ffn_up.weight", l + "feed_forward.w3.weight"},
  };
}

bool is_linear_weight(const std::string& lowbit_name) {
  return lowbit_name == "output.weight" ||
         (lowbit_name.find(".attention.w") != std::string::npos &&
          lowbit_name.ends_with(".weight")) ||
         lowbit_name.find(".feed_forward.w") != std::string::npos;
}

}  // namespace

LlamaConfig read_gguf_llama_config(const GgufFile& file) {
  const std::string& arch_name = file.get_string("general.architecture");
  const Architecture* arch = nullptr;
  for (const Architecture& a : architectures)
    if (arch_name == a.name) arch = &a;
  if (arch == nullptr)
    fail(file,
         "general.architecture \"" + arch_name + "\" is not one lowbit runs (llama, qwen2, qwen3)");
  const std::string p = arch_name + ".";

  LlamaConfig config;
  config.dim = read_count(file, p + "embedding_length");
  config.hidden_dim = read_count(file, p + "feed_forward_length");
  config.n_layers = read_count(file, p + "block_count");
  config.n_heads = read_count(file, p + "attention.head_count");
  config.n_kv_heads =
      read_optional_count(file, p + "attention.head_count_kv").value_or(config.n_heads);
  config.seq_len = read_count(file, p + "context_length");
  config.norm_eps = static_cast<float>(file.get_double(p + "attention.layer_norm_rms_epsilon"));
  config.rope_theta = static_cast<float>(file.get_double(p + "rope.freq_base", 10000.0));
  config.rope_style = arch->rope_style;
  config.qkv_bias = arch->qkv_bias;
  config.qk_norm = arch->qk_norm;

  // Head width: attention.key_length when the file gives it (Qwen3 and others decouple it from
  // embedding_length / head_count), else the quotient.
  const std::optional<int> key_length = read_optional_count(file, p + "attention.key_length");
  const std::optional<int> value_length = read_optional_count(file, p + "attention.value_length");
  if (key_length && value_length && *key_length != *value_length)
    fail(file, "attention.key_length " + std::to_string(*key_length) + " and value_length " +
                   std::to_string(*value_length) + " differ; lowbit needs equal head widths");
  if (key_length) config.head_dim = *key_length;
  if (config.n_heads > 0 && config.head_dim == config.dim / config.n_heads &&
      config.dim % config.n_heads == 0)
    config.head_dim = 0;  // the usual width: leave it implied, as other readers do
  if (const std::optional<int> rotary = read_optional_count(file, p + "rope.dimension_count")) {
    if (*rotary != config.head_size())
      fail(file, "rope.dimension_count " + std::to_string(*rotary) +
                     " rotates part of each head of " + std::to_string(config.head_size()) +
                     "; lowbit's rotary embedding covers whole heads");
  }
  const std::string scaling = file.get_string(p + "rope.scaling.type", "none");
  if (scaling != "none") fail(file, "rope.scaling.type \"" + scaling + "\" is not supported");
  if (file.contains("rope_freqs.weight"))
    fail(file, "per-frequency rope factors (Llama 3.1's scaling) are not supported",
         "rope_freqs.weight");

  const GgufTensorInfo& embedding = file.tensor("token_embd.weight");
  if (embedding.dims.size() != 2)
    fail(file, "the token embedding is not a matrix", embedding.name, embedding.shape());
  if (embedding.rows() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    fail(file, "the vocabulary is too large", embedding.name, embedding.shape());
  config.vocab_size = static_cast<int>(embedding.rows());
  config.shared_classifier = !file.contains("output.weight");

  const std::string problem = llama_config_problem(config);
  if (!problem.empty()) fail(file, "the model's metadata describes no model: " + problem);
  return config;
}

std::vector<std::pair<std::string, std::string>> gguf_llama_names(const GgufFile& file,
                                                                  const LlamaConfig& config) {
  std::map<std::string, std::string> names = {{"token_embd.weight", "tok_embeddings.weight"},
                                              {"output_norm.weight", "norm.weight"},
                                              {"output.weight", "output.weight"}};
  for (int l = 0; l < config.n_layers; ++l) names.merge(layer_names(l));
  std::vector<std::pair<std::string, std::string>> result;
  for (const GgufTensorInfo& info : file.tensors()) {
    const auto found = names.find(info.name);
    if (found == names.end())
      fail(file, "a tensor lowbit's Llama model has no place for", info.name, info.shape());
    result.emplace_back(found->second, info.name);
  }
  return result;
}

GgufLlama read_gguf_llama(const GgufFile& file) {
  GgufLlama model;
  model.config = read_gguf_llama_config(file);
  for (const auto& [name, gguf_name] : gguf_llama_names(file, model.config)) {
    const GgufTensorInfo& info = file.tensor(gguf_name);
    const bool block_layout = file.is_block_layout(info) && info.type != 0;
    if (is_linear_weight(name) && block_layout) {
      if (info.dims.size() != 2)
        fail(file, "a linear weight that is not a matrix", info.name, info.shape());
      model.block_weights.push_back({name, file.to_quantized(info.name)});
      continue;
    }
    // ggml stores vectors (norms, biases) as 1-D tensors; lowbit's shapes are row-major.
    model.tensors.push_back({name, info.shape(), file.to_float(info.name)});
    if (name == "tok_embeddings.weight" && model.config.shared_classifier && block_layout)
      model.block_weights.push_back({"output.weight", file.to_quantized(info.name)});
  }
  return model;
}

BpeVocabulary read_gguf_vocabulary(const GgufFile& file) {
  BpeVocabulary vocabulary;
  vocabulary.model = file.get_string("tokenizer.ggml.model");
  vocabulary.pre = file.get_string("tokenizer.ggml.pre", "default");
  vocabulary.tokens = file.get_strings("tokenizer.ggml.tokens");
  if (file.find("tokenizer.ggml.merges") != nullptr)
    vocabulary.merges = file.get_strings("tokenizer.ggml.merges");
  if (file.find("tokenizer.ggml.scores") != nullptr)
    for (const double score : file.get_doubles("tokenizer.ggml.scores"))
      vocabulary.scores.push_back(static_cast<float>(score));
  if (file.find("tokenizer.ggml.token_type") != nullptr) {
    for (const std::int64_t type : file.get_ints("tokenizer.ggml.token_type")) {
      if (type < std::numeric_limits<std::int32_t>::min() ||
          type > std::numeric_limits<std::int32_t>::max())
        fail(file, "metadata 'tokenizer.ggml.token_type' holds " + std::to_string(type) +
                       ", not a token type");
      vocabulary.token_types.push_back(static_cast<std::int32_t>(type));
    }
  }
  auto optional_id = [&](const char* key) -> std::optional<std::int64_t> {
    if (file.find(key) == nullptr) return std::nullopt;
    return file.get_int(key);
  };
  vocabulary.bos_id = optional_id("tokenizer.ggml.bos_token_id");
  vocabulary.eos_id = optional_id("tokenizer.ggml.eos_token_id");
  vocabulary.unk_id = optional_id("tokenizer.ggml.unknown_token_id");
  vocabulary.pad_id = optional_id("tokenizer.ggml.padding_token_id");
  auto optional_flag = [&](const char* key) -> std::optional<bool> {
    if (file.find(key) == nullptr) return std::nullopt;
    return file.get_bool(key);
  };
  vocabulary.add_bos = optional_flag("tokenizer.ggml.add_bos_token");
  vocabulary.add_eos = optional_flag("tokenizer.ggml.add_eos_token");
  vocabulary.add_space_prefix = optional_flag("tokenizer.ggml.add_space_prefix");
  return vocabulary;
}

}  // namespace lowbit::io
