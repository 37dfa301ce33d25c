// The SentencePiece-style BPE tokenizer of llama2.c: encode and decode exactly as its run.c does.
#pragma once

#include <cstddef>
#include <functional>
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
  /// <unk>, <s>, </s> and the 256 byte tokens: the fewest tokens byte fallback needs.
  static constexpr int byte_fallback_vocab_size = byte_fallback_offset + 256;

  Tokenizer() = default;
  /// `vocab[i]` is token i's bytes, `scores[i]` its merge priority (higher merges first). Byte
  /// fallback is on when tokens 3..258 are exactly "<0x00>".."<0xFF>" (byte_fallback()); any other
  /// vocabulary is accepted, and encode refuses text that would need the byte tokens.
  Tokenizer(std::vector<std::string> vocab, std::vector<float> scores);

  int vocab_size() const noexcept { return static_cast<int>(vocab_.size()); }
  /// Whether tokens 3 + b are the byte pieces <0xbb> for every byte b, as llama2.c's encode
  /// assumes when it writes a byte without a token as token 3 + b.
  bool byte_fallback() const noexcept { return byte_fallback_; }
  /// Token `token`'s bytes; throws lowbit::invalid_argument when it is outside [0, vocab_size()).
  const std::string& piece(int token) const;
  float score(int token) const;
  /// The token whose bytes are exactly `text` (the first, if several are), or -1.
  int lookup(std::string_view text) const;

  /// llama2.c's encode: optional BOS, the dummy-prefix " " token when `text` is non-empty, one
  /// token per UTF-8 codepoint (bytes + 3 when the codepoint is not in the vocabulary), then
  /// repeatedly merge the adjacent pair whose concatenation is the highest-scoring token, the
  /// leftmost such pair among equal scores; optional EOS. O(n log n) in the length of `text`.
  /// Throws lowbit::invalid_argument when the vocabulary lacks a token the text needs: BOS or EOS
  /// when asked for, " ", or the byte tokens (byte_fallback() is false).
  std::vector<int> encode(std::string_view text, bool bos, bool eos) const;

  /// llama2.c's decode: the bytes of `token`, without the leading space right after BOS, and
  /// "<0xAB>" pieces as the raw byte 0xAB. Throws lowbit::invalid_argument when `token` is not in
  /// the vocabulary (`prev_token` is only compared with BOS, so any value is accepted).
  std::string decode(int prev_token, int token) const;

 private:
  // Hashes std::string and std::string_view alike, so that lookups need no temporary string.
  struct PieceHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
      return std::hash<std::string_view>{}(text);
    }
  };

  std::vector<std::string> vocab_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int, PieceHash, std::equal_to<>> index_;
  bool byte_fallback_ = false;
};

/// Tokenizes a long text as tokenizer.encode(text, false, false) would, in linear time.
///
/// The text is cut into chunks just before every space that follows a non-space character (a run
/// of spaces stays in one chunk; spaces that end the text stay with the chunk before them). Each
/// chunk after the first is encoded without its leading space, without BOS or EOS: the encoder's
/// dummy-prefix " " stands for that space. The first chunk is encoded as it is (it gets the dummy
/// prefix, as the whole text would). The token lists are concatenated with no separator.
///
/// This equals encoding the whole text at once whenever no vocabulary piece has a space after a
/// non-space character, since no merge can then cross a chunk boundary; SentencePiece vocabularies
/// (tok512 among them) have no such piece. Decoding the tokens in order, the first one as if it
/// followed BOS (which drops the dummy prefix), gives back the text. An empty text gives no tokens.
std::vector<int> encode_corpus(const Tokenizer& tokenizer, std::string_view text);

}  // namespace lowbit::io
