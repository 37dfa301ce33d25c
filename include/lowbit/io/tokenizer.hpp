// The SentencePiece-style BPE tokenizer of llama2.c: encode and decode exactly as its run.c does.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lowbit::io {

class Tokenizer {
 public:
  static constexpr int bos_id = 1;
  static constexpr int eos_id = 2;
  static constexpr int byte_fallback_offset = 3;  // token 3 + b is the byte <0xbb>

  Tokenizer() = default;
  /// `vocab[i]` is token i's bytes, `scores[i]` its merge priority (higher merges first).
  Tokenizer(std::vector<std::string> vocab, std::vector<float> scores);

  int vocab_size() const noexcept { return static_cast<int>(vocab_.size()); }
  const std::string& piece(int token) const;
  float score(int token) const;
  /// The token whose bytes are exactly `text`, or -1.
  int lookup(std::string_view text) const;

  /// llama2.c's encode: optional BOS, the dummy-prefix " " token when `text` is non-empty, one
  /// token per UTF-8 codepoint (bytes + 3 when the codepoint is not in the vocabulary), then
  /// repeatedly merge the adjacent pair whose concatenation is the highest-scoring token; optional
  /// EOS.
  std::vector<int> encode(std::string_view text, bool bos, bool eos) const;

  /// llama2.c's decode: the bytes of `token`, without the leading space right after BOS, and
  /// "<0xAB>" pieces as the raw byte 0xAB.
  std::string decode(int prev_token, int token) const;

 private:
  std::vector<std::string> vocab_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> index_;
};

}  // namespace lowbit::io
