// Reading llama2.c checkpoints (version 0, the "legacy" export of Karpathy's llama2.c) and its
// tokenizer files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/io/llama_config.hpp"
#include "lowbit/io/tokenizer.hpp"

namespace lowbit::io {

struct Llama2cCheckpoint {
  LlamaConfig config;
  /// Float tensors with Llama names: tok_embeddings.weight, layers.{i}.attention_norm.weight,
  /// layers.{i}.attention.{wq,wk,wv,wo}.weight, layers.{i}.ffn_norm.weight,
  /// layers.{i}.feed_forward.{w1,w2,w3}.weight, norm.weight, and output.weight when the checkpoint
  /// has its own classifier (config.shared_classifier is false). Matrices are [out, in].
  std::vector<NamedTensor> tensors;
};

/// A llama2.c checkpoint (version 0) opened for reading tensor by tensor, so that a converter or
/// quantizer holds one tensor at a time. Opening validates the header (every field plausible and
/// consistent) and the file's size against it, before any tensor is read.
class Llama2cFile {
 public:
  struct TensorEntry {
    std::string name;  // Llama name, as listed for Llama2cCheckpoint::tensors
    std::vector<std::size_t> shape;
    std::uint64_t offset = 0;  // byte offset in the file
  };

  /// Throws lowbit::io_error naming the file when the header is implausible or the file is
  /// shorter or longer than the header says.
  explicit Llama2cFile(const std::filesystem::path& path);

  const std::filesystem::path& path() const noexcept { return path_; }
  const LlamaConfig& config() const noexcept { return config_; }
  /// The named tensors in file order (the RoPE tables are not listed).
  const std::vector<TensorEntry>& tensors() const noexcept { return tensors_; }
  /// Reads one tensor. Throws lowbit::io_error naming the file and tensor for an unknown name, a
  /// read error, or a weight that is NaN or infinite.
  NamedTensor read(std::string_view name) const;

 private:
  std::filesystem::path path_;
  LlamaConfig config_;
  std::vector<TensorEntry> tensors_;
};

/// Reads a version-0 llama2.c checkpoint: seven int32 (dim, hidden_dim, n_layers, n_heads,
/// n_kv_heads, vocab_size, seq_len; a negative vocab_size means an unshared classifier), then the
/// float32 arrays. The RoPE tables are skipped. Throws lowbit::io_error naming the file when the
/// header is implausible, the file is shorter or longer than the header says, or a weight is not
/// finite.
Llama2cCheckpoint read_llama2c(const std::filesystem::path& path);

/// Reads a llama2.c tokenizer file: int32 max_token_length, then per token float32 score, int32
/// length, the bytes. Throws lowbit::io_error naming the file when it is malformed.
Tokenizer read_llama2c_tokenizer(const std::filesystem::path& path, int vocab_size);

}  // namespace lowbit::io
