// What a Llama-family checkpoint holds besides its tensors' bytes: the architecture's shape, and
// float tensors under their Llama names. The readers in io/ produce these; model/ builds its
// forward pass from them.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace lowbit::io {

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

  int head_size() const noexcept { return n_heads > 0 ? dim / n_heads : 0; }
  int kv_dim() const noexcept { return n_heads > 0 ? dim / n_heads * n_kv_heads : 0; }
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
};

/// Why `config` cannot describe a model (e.g. "n_heads is 0, outside [1, 1024]"), or an empty
/// string when it can: every integer field in [1, its LlamaConfigLimits bound]; dim a multiple of
/// n_heads, with an even head size (RoPE rotates pairs); n_heads a multiple of n_kv_heads;
/// norm_eps finite in (0, 1]; rope_theta finite in [1, 1e12].
std::string llama_config_problem(const LlamaConfig& config);

/// A float tensor with its name, row-major.
struct NamedTensor {
  std::string name;
  std::vector<std::size_t> shape;
  std::vector<float> data;
};

}  // namespace lowbit::io
