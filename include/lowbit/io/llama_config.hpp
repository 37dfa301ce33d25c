// What a Llama-family checkpoint holds besides its tensors' bytes: the architecture's shape, and
// float tensors under their Llama names. The readers in io/ produce these; model/ builds its
// forward pass from them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::io {

/// Which dimensions of a head RoPE rotates together. The same weights need the matching style: a
/// checkpoint's format says which one its q and k rows are laid out for, and the reader records
/// it here rather than permuting rows.
enum class RopeStyle {
  adjacent,     // pairs (2i, 2i + 1): llama2.c, GGUF, Meta's original checkpoints
  rotate_half,  // pairs (i, i + head_size / 2): Hugging Face transformers
};

/// "adjacent" or "rotate_half": the spelling lowbit's metadata and messages use.
std::string_view rope_style_name(RopeStyle style) noexcept;

/// The rotary frequencies' scaling ("rope_type" in a Hugging Face config).
enum class RopeScalingType {
  none,    // inv_freq[i] = rope_theta^(-2i / head_size)
  llama3,  // Llama 3.1's: low frequencies divided by factor, a smooth ramp between the bands
};

struct RopeScaling {
  RopeScalingType type = RopeScalingType::none;
  // llama3 only (transformers' _compute_llama3_parameters):
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int original_max_position_embeddings = 0;
};

struct LlamaConfig {
  int dim = 0;         // width of the residual stream
  int hidden_dim = 0;  // width of the FFN
  int n_layers = 0;
  int n_heads = 0;     // query heads
  int n_kv_heads = 0;  // key/value heads (grouped-query attention when < n_heads)
  int vocab_size = 0;
  int seq_len = 0;  // longest sequence the KV cache holds
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  bool shared_classifier = true;  // the classifier is the token embedding (no output.weight)
  // Width of one attention head; 0 means dim / n_heads (Qwen3 and others set it independently).
  int head_dim = 0;
  RopeStyle rope_style = RopeStyle::adjacent;
  RopeScaling rope_scaling;
  bool qkv_bias = false;     // wq, wk, wv add a bias (Qwen2; attention_bias)
  bool output_bias = false;  // wo adds a bias (attention_bias in Llama and Qwen3)
  bool qk_norm = false;      // an RMSNorm over each query and key head before RoPE (Qwen3)
  int sliding_window = 0;    // attend to the last sliding_window positions only; 0: all (Mistral)

  // (Meaningful for a config llama_config_problem accepts; 64-bit products so that an unchecked
  // one cannot overflow.)
  int head_size() const noexcept {
    if (head_dim > 0) return head_dim;
    return n_heads > 0 ? dim / n_heads : 0;
  }
  /// Width of the concatenated query heads (wq's rows, wo's columns).
  int q_dim() const noexcept {
    return static_cast<int>(static_cast<long long>(n_heads) * head_size());
  }
  /// Width of the concatenated key (and value) heads.
  int kv_dim() const noexcept {
    return static_cast<int>(static_cast<long long>(n_kv_heads) * head_size());
  }
};

/// The bounds every reader holds a config to: far above any Llama (dim 8192, hidden 28672, 80
/// layers, vocab 128256, context 128K), small enough that no size derived from them overflows.
struct LlamaConfigLimits {
  static constexpr int dim = 1 << 16;
  static constexpr int hidden_dim = 1 << 18;
  static constexpr int n_layers = 1 << 10;
  static constexpr int n_heads = 1 << 10;  // and n_kv_heads
  static constexpr int vocab_size = 1 << 21;
  static constexpr int seq_len = 1 << 21;
  static constexpr double rope_theta = 1e12;  // the largest (the smallest is 1)
  static constexpr int head_dim = 1 << 12;
  static constexpr int attention_dim = 1 << 18;  // n_heads * head_dim
};

/// Why `config` cannot describe a model (e.g. "n_heads is 0, outside [1, 1024]"), or an empty
/// string when it can: every integer field in [1, its LlamaConfigLimits bound]; head_dim 0 (then
/// dim a multiple of n_heads) or in [1, 4096]; an even head size (RoPE rotates pairs); n_heads *
/// head size at most 2^18; n_heads a multiple of n_kv_heads; norm_eps finite in (0, 1];
/// rope_theta finite in [1, 1e12]; sliding_window in [0, 2^21]; llama3 rope scaling with finite
/// factors, factor and low_freq_factor > 0, high_freq_factor > low_freq_factor and
/// original_max_position_embeddings in [1, 2^21].
std::string llama_config_problem(const LlamaConfig& config);

/// A float tensor with its name, row-major.
struct NamedTensor {
  std::string name;
  std::vector<std::size_t> shape;
  std::vector<float> data;
};

}  // namespace lowbit::io
