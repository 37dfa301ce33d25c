#include "lowbit/io/model_tokenizer.hpp"

#include <cstddef>
#include <fstream>
#include <string>
#include <utility>

#include "lowbit/error.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/gguf_llama.hpp"
#include "lowbit/io/hf_tokenizer.hpp"
#include "lowbit/io/llama2c.hpp"

namespace lowbit::io {

namespace {

// Overloaded lambdas for std::visit.
template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

/// Whether the file's first byte past whitespace (and a UTF-8 byte order mark) is '{'. A llama2.c
/// tokenizer.bin starts with its int32 max_token_length, which would have to be 123 + 256 k with
/// whitespace-free high bytes to pass for JSON; no real one does.
bool looks_like_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char head[64] = {};
  in.read(head, sizeof head);
  const auto size = static_cast<std::size_t>(in.gcount());
  std::size_t i = 0;
  if (size >= 3 && head[0] == '\xEF' && head[1] == '\xBB' && head[2] == '\xBF') i = 3;
  while (i < size && (head[i] == ' ' || head[i] == '\t' || head[i] == '\n' || head[i] == '\r')) ++i;
  return i < size && head[i] == '{';
}

std::string model_label(std::string_view model_name) {
  return model_name.empty() ? std::string("the model")
                            : "the model '" + std::string(model_name) + "'";
}

/// A tokenizer may have fewer tokens than the model has embedding rows (padded vocabularies), never
/// more: those ids would index past the embedding.
void check_vocabulary_fits(const ModelTokenizer& tokenizer, int model_vocab_size,
                           std::string_view model_name) {
  if (tokenizer.vocab_size() <= model_vocab_size) return;
  throw invalid_argument("the " + std::string(tokenizer.kind_name()) + " tokenizer has " +
                             std::to_string(tokenizer.vocab_size()) + " tokens, more than the " +
                             std::to_string(model_vocab_size) + " rows of the embedding of " +
                             model_label(model_name),
                         {tokenizer.source(), "", {}});
}

}  // namespace

ModelTokenizer::ModelTokenizer(Tokenizer tokenizer, std::string source)
    : tokenizer_(std::move(tokenizer)),
      kind_(Kind::llama2c),
      source_(std::move(source)),
      bos_(Tokenizer::bos_id) {}

ModelTokenizer::ModelTokenizer(BpeTokenizer tokenizer, Kind kind, std::string source)
    : tokenizer_(std::move(tokenizer)), kind_(kind), source_(std::move(source)) {
  if (kind == Kind::llama2c)
    throw invalid_argument("ModelTokenizer: a BpeTokenizer is a tokenizer.json's or a GGUF's",
                           {source_, "", {}});
  const BpeTokenizer& bpe = std::get<BpeTokenizer>(tokenizer_);
  if (bpe.adds_bos()) bos_ = bpe.bos_id();
}

std::string_view ModelTokenizer::kind_name() const noexcept {
  switch (kind_) {
    case Kind::llama2c:
      return "llama2.c";
    case Kind::tokenizer_json:
      return "tokenizer.json";
    case Kind::gguf:
      return "GGUF";
  }
  return "?";
}

int ModelTokenizer::vocab_size() const noexcept {
  return std::visit([](const auto& t) { return t.vocab_size(); }, tokenizer_);
}

std::vector<int> ModelTokenizer::encode(std::string_view text) const {
  return std::visit(Overloaded{[&](const Tokenizer& t) { return encode_corpus(t, text); },
                               [&](const BpeTokenizer& t) { return t.encode(text, false); }},
                    tokenizer_);
}

std::string ModelTokenizer::decode(std::span<const int> ids) const {
  return std::visit(Overloaded{[&](const Tokenizer& t) {
                                 std::string text;
                                 int previous = Tokenizer::bos_id;
                                 for (const int id : ids) {
                                   text += t.decode(previous, id);
                                   previous = id;
                                 }
                                 return text;
                               },
                               [&](const BpeTokenizer& t) { return t.decode(ids, false); }},
                    tokenizer_);
}

ModelTokenizer read_model_tokenizer(const std::filesystem::path& path, int model_vocab_size,
                                    std::string_view model_name) {
  const std::string file = path.string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw io_error("the tokenizer is not a regular file", {file, "", {}});
  if (model_vocab_size <= 0)
    throw invalid_argument("read_model_tokenizer: the model's vocabulary size " +
                               std::to_string(model_vocab_size) + " is not positive",
                           {file, "", {}});
  if (has_gguf_magic(path)) {
    ModelTokenizer tokenizer(BpeTokenizer(read_gguf_vocabulary(GgufFile(path)), file),
                             ModelTokenizer::Kind::gguf, file);
    check_vocabulary_fits(tokenizer, model_vocab_size, model_name);
    return tokenizer;
  }
  if (looks_like_json(path)) {
    ModelTokenizer tokenizer(read_hf_tokenizer(path), ModelTokenizer::Kind::tokenizer_json, file);
    check_vocabulary_fits(tokenizer, model_vocab_size, model_name);
    return tokenizer;
  }
  // A llama2.c file does not say how many tokens it holds: it must hold exactly the model's.
  try {
    return ModelTokenizer(read_llama2c_tokenizer(path, model_vocab_size), file);
  } catch (const io_error& e) {
    throw io_error("read as a llama2.c tokenizer.bin (neither GGUF nor JSON) of " +
                       std::to_string(model_vocab_size) + " tokens, the vocabulary of " +
                       model_label(model_name) + ": " + e.reason(),
                   e.context());
  }
}

}  // namespace lowbit::io
