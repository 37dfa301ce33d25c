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

/// A float tensor with its name, row-major.
struct NamedTensor {
  std::string name;
  std::vector<std::size_t> shape;
  std::vector<float> data;
};

}  // namespace lowbit::io
