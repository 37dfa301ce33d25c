// Byte-pair-encoding tokenizers as Hugging Face `tokenizers` runs them: byte-level BPE (GPT-2,
// Llama 3, Qwen2, SmolLM2: a regex pre-tokenizer, bytes mapped to printable characters, merges by
// rank) and SentencePiece-style BPE (Llama 2, Mistral: "▁" for spaces, byte fallback, merges by
// rank or by score), with added and special tokens split out of the text first. Built from a
// tokenizer.json (io/hf_tokenizer.hpp) or from a GGUF vocabulary (io/bpe_vocabulary.hpp).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/io/bpe_vocabulary.hpp"

namespace lowbit::io {

class BpeTokenizer {
 public:
  /// The whole pipeline (normalizer, pre-tokenizer, model, post-processor, decoder); defined in
  /// the library's sources, built by read_hf_tokenizer and by the BpeVocabulary constructor.
  struct Pipeline;

  /// The tokenizer llama.cpp builds from a GGUF file's tokenizer.ggml.* keys. Throws
  /// lowbit::io_error naming the field for a vocabulary that cannot work (a merge naming an unknown
  /// token, an id outside the vocabulary, mismatched array lengths, an unknown pre-tokenizer
  /// name), with `source` (the file's name) as the error's file.
  explicit BpeTokenizer(const BpeVocabulary& vocabulary, const std::string& source = "");
  explicit BpeTokenizer(std::shared_ptr<const Pipeline> pipeline);

  /// One past the largest token id (the model's vocabulary and the added tokens).
  int vocab_size() const noexcept;
  /// Token `id`'s text as the file stores it (byte-level tokens in their mapped characters, "▁"
  /// for spaces); throws lowbit::invalid_argument for an id outside the vocabulary.
  const std::string& piece(int id) const;
  /// The id of the token whose text is `piece` (added tokens first), or nullopt.
  std::optional<int> token_id(std::string_view piece) const;
  /// Whether `id` is a special token (decode can skip it).
  bool is_special(int id) const;
  /// BOS and EOS: the GGUF's ids; from a tokenizer.json, BOS is the one special token that the
  /// post-processor puts before the text (Llama 3's <|begin_of_text|>), EOS the one after it.
  std::optional<int> bos_id() const;
  std::optional<int> eos_id() const;
  /// Whether encode(text, true) puts bos_id() before the text: a GGUF's add_bos_token (absent:
  /// llama.cpp's default, true for "llama" vocabularies and false for "gpt2"), a tokenizer.json's
  /// post-processor.
  bool adds_bos() const;

  /// The ids of `text`, as tokenizers' `Tokenizer.encode(text, add_special_tokens).ids`: added and
  /// special tokens split out, each other segment normalized, pre-tokenized and merged. With
  /// `add_special_tokens`, the post-processor's tokens (BOS, EOS) around them. Text that is not
  /// valid UTF-8 is tokenized as if each maximal invalid subsequence were U+FFFD, as Python's
  /// bytes.decode("utf-8", "replace") and Rust's String::from_utf8_lossy give it to `tokenizers`.
  /// O(n log n) in the length of the text.
  std::vector<int> encode(std::string_view text, bool add_special_tokens = false) const;

  /// The text of `ids`, through the file's decoder, as bytes: tokenizers' `decode` without its
  /// final lossy UTF-8 conversion (byte fallback and byte-level tokens that split a character
  /// come back as their bytes, not U+FFFD). `skip_special_tokens` leaves special tokens out.
  /// Throws lowbit::invalid_argument for an id outside the vocabulary.
  std::string decode(std::span<const int> ids, bool skip_special_tokens = false) const;

 private:
  std::shared_ptr<const Pipeline> pipeline_;
};

}  // namespace lowbit::io
