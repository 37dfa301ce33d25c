// A BPE vocabulary as a GGUF file's metadata carries it (the tokenizer.ggml.* keys), in plain
// fields that a GGUF reader fills and BpeTokenizer (io/bpe_tokenizer.hpp) is built from.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lowbit::io {

/// llama.cpp's token types (tokenizer.ggml.token_type).
enum class GgufTokenType : std::int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,       // special: split out of the text, skipped by decode(..., skip_special)
  user_defined = 4,  // an added token: split out of the text, decoded as its text
  unused = 5,
  byte = 6,  // "<0xAB>": the byte fallback of "llama" vocabularies
};

struct BpeVocabulary {
  /// tokenizer.ggml.model: "gpt2" (byte-level BPE, merges by rank) or "llama" (SentencePiece-style
  /// BPE over "▁" with byte fallback, merges by score).
  std::string model;
  /// tokenizer.ggml.pre, as llama.cpp spells it: "default", "gpt-2", "llama-bpe" (Llama 3; also
  /// "llama3", "llama-v3"), "qwen2", "smollm" (also "starcoder", "refact", "command-r",
  /// "codeshell"). Only "gpt2" vocabularies read it.
  std::string pre = "default";
  std::vector<std::string> tokens;  // tokenizer.ggml.tokens: token i's text
  /// tokenizer.ggml.merges: "left right", highest priority first ("gpt2" only; split at the first
  /// space after the first byte, as llama.cpp does).
  std::vector<std::string> merges;
  std::vector<float> scores;  // tokenizer.ggml.scores: merge priority, higher first ("llama")
  std::vector<std::int32_t> token_types;  // tokenizer.ggml.token_type; empty: all normal
  // tokenizer.ggml.{bos,eos,unknown,padding}_token_id: absent or in [0, tokens.size()).
  std::optional<std::int64_t> bos_id, eos_id, unk_id, pad_id;
  /// tokenizer.ggml.add_bos_token, add_eos_token, add_space_prefix; absent: llama.cpp's defaults
  /// for the model ("llama": BOS and the space prefix; "gpt2": neither; EOS never).
  std::optional<bool> add_bos, add_eos, add_space_prefix;
};

}  // namespace lowbit::io
