// The tokenizer a model comes with, whichever file holds it: llama2.c's tokenizer.bin, a Hugging
// Face tokenizer.json, or a GGUF file's own vocabulary. Evaluation and calibration ask it only to
// encode a corpus, decode, say the BOS the model expects, and its vocabulary size.
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "lowbit/io/bpe_tokenizer.hpp"
#include "lowbit/io/tokenizer.hpp"

namespace lowbit::io {

class ModelTokenizer {
 public:
  enum class Kind { llama2c, tokenizer_json, gguf };

  /// llama2.c's tokenizer: the model is fed BOS (token 1), as llama2.c's run.c does.
  ModelTokenizer(Tokenizer tokenizer, std::string source);
  /// A Hugging Face tokenizer from a tokenizer.json or a GGUF vocabulary (`kind`): the model is fed
  /// BOS only where the tokenizer adds one (BpeTokenizer::adds_bos).
  ModelTokenizer(BpeTokenizer tokenizer, Kind kind, std::string source);

  Kind kind() const noexcept { return kind_; }
  /// "llama2.c", "tokenizer.json" or "GGUF".
  std::string_view kind_name() const noexcept;
  /// The file it was read from, as given.
  const std::string& source() const noexcept { return source_; }
  /// One past the largest token id.
  int vocab_size() const noexcept;
  /// The token the model is fed before a text, or nullopt when the model takes none.
  std::optional<int> bos() const noexcept { return bos_; }

  /// The ids of a whole text, with no BOS, EOS or other special token added: llama2.c's
  /// encode_corpus (a dummy-prefix space, chunked), or BpeTokenizer::encode(text, false) (no
  /// prefix space unless the tokenizer's own normalizer or pre-tokenizer adds one).
  std::vector<int> encode(std::string_view text) const;
  /// The text of `ids` (llama2.c: as if they followed BOS, which drops the dummy prefix). Throws
  /// lowbit::invalid_argument for an id outside the vocabulary.
  std::string decode(std::span<const int> ids) const;

 private:
  std::variant<Tokenizer, BpeTokenizer> tokenizer_;
  Kind kind_;
  std::string source_;
  std::optional<int> bos_;
};

/// The tokenizer in `path` for a model whose embedding has `model_vocab_size` rows, the file's
/// kind chosen by its content: GGUF's magic (its tokenizer.ggml.* vocabulary), JSON (a
/// tokenizer.json), else a llama2.c tokenizer.bin of exactly `model_vocab_size` tokens (the file
/// does not say its size). Throws lowbit::io_error naming the file for one it cannot read as its
/// kind, lowbit::unsupported for a tokenizer component lowbit lacks, and lowbit::invalid_argument
/// naming the file, `model_name` and both sizes when the tokenizer has more tokens than the model
/// has rows.
ModelTokenizer read_model_tokenizer(const std::filesystem::path& path, int model_vocab_size,
                                    std::string_view model_name = {});

}  // namespace lowbit::io
