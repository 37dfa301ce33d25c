// Hugging Face checkpoints of the Llama family: a model directory with config.json and
// model.safetensors (or model.safetensors.index.json and its shards), in F32, F16 or BF16, for
// LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM and Qwen3ForCausalLM. The config is read
// as transformers reads it into a LlamaConfig (rotate-half RoPE: HF's q and k rows are laid out
// for it), and the tensors are offered under lowbit's Llama names.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/io/llama_config.hpp"
#include "lowbit/io/safetensors.hpp"

namespace lowbit::io {

/// What a config.json says about a model.
struct HfConfig {
  std::string architecture;  // "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", ...
  LlamaConfig llama;         // the forward pass's shape; rope_style is rotate_half
  std::vector<int> bos_token_ids, eos_token_ids;  // an int or a list in the file; empty for null
};

/// Parses the text of a config.json as transformers reads it: hidden_size, intermediate_size,
/// num_hidden_layers, num_attention_heads and vocab_size are required; num_key_value_heads
/// (default: the heads), head_dim (default hidden_size / heads; Qwen3: 128), rms_norm_eps (1e-6),
/// max_position_embeddings (the architecture's default), tie_word_embeddings (false),
/// attention_bias (false), the rotary base and type from "rope_parameters" (transformers 5) or
/// "rope_theta" and "rope_scaling" (transformers 4), rope types "default" and "llama3".
/// Throws io_error naming `file` and the field for a wrong JSON type, a value out of bounds
/// (llama_config_problem), an unsupported architecture, rope type or option (mlp_bias, a
/// hidden_act other than silu, Qwen's use_sliding_window, partial rotary).
HfConfig parse_hf_config(std::string_view json_text, const std::string& file);

/// Reads and parses a config.json (at most 16 MB). io_error naming the file when unreadable.
HfConfig read_hf_config(const std::filesystem::path& config_json);

/// The Llama name (io/llama_config.hpp's vocabulary) of a Hugging Face tensor name:
/// model.embed_tokens.weight -> tok_embeddings.weight, model.layers.N.self_attn.q_proj.weight ->
/// layers.N.attention.wq.weight (k, v, o: wk, wv, wo; .bias likewise), self_attn.q_norm.weight ->
/// attention.q_norm.weight, mlp.gate_proj / up_proj / down_proj -> feed_forward.w1 / w3 / w2,
/// input_layernorm -> attention_norm, post_attention_layernorm -> ffn_norm, model.norm.weight ->
/// norm.weight, lm_head.weight -> output.weight. Empty for a name the family does not have.
std::string llama_name_of_hf_tensor(std::string_view hf_name);

/// Whether `path` is a Hugging Face checkpoint: a directory holding config.json, a
/// *.safetensors.index.json file, or a .safetensors file with a config.json beside it and no
/// lowbit config in its metadata. Never throws for a path it cannot read (answers false).
bool is_hf_checkpoint(const std::filesystem::path& path);

/// A Hugging Face checkpoint opened for reading tensor by tensor: config.json parsed, every
/// tensor's name, dtype and shape checked against the config on open. Throws io_error naming the
/// file and the tensor for a missing, unexpected or misshapen tensor, a dtype other than F32, F16
/// or BF16, or a bad config (parse_hf_config). A tied lm_head.weight and the rotary buffers some
/// checkpoints store (rotary_emb.inv_freq) are ignored, as transformers ignores them.
class HfCheckpoint {
 public:
  /// `path`: the model directory, its model.safetensors.index.json, or its model.safetensors.
  explicit HfCheckpoint(const std::filesystem::path& path);

  const std::filesystem::path& directory() const noexcept { return directory_; }
  /// The index or the single safetensors file the weights come from.
  const std::filesystem::path& weights_path() const noexcept { return weights_path_; }
  const HfConfig& config() const noexcept { return config_; }
  /// The model's tensors under their Llama names (dtype and shape as stored), in forward-pass
  /// order: the embedding, each layer's, the final norm, the classifier when not tied.
  const std::vector<TensorLayout>& tensors() const noexcept { return tensors_; }
  /// The Hugging Face name a Llama name is stored under; io_error for an unknown name.
  const std::string& hf_name(std::string_view llama_name) const;
  /// The stored tensor (bytes in the mapping) of a Llama name.
  const TensorInfo& info(std::string_view llama_name) const;
  /// The file holding a Llama name's tensor (a shard, or model.safetensors).
  const std::filesystem::path& file_of(std::string_view llama_name) const;
  /// The tensor's values as float (BF16 and F16 widened exactly).
  std::vector<float> to_float(std::string_view llama_name) const;

 private:
  std::filesystem::path directory_, weights_path_;
  HfConfig config_;
  std::optional<SafetensorsFile> single_;
  std::optional<ShardedSafetensors> sharded_;
  std::vector<TensorLayout> tensors_;
  std::map<std::string, std::string, std::less<>> hf_names_;  // Llama name -> HF name
};

}  // namespace lowbit::io
