#include "lowbit/io/tokenizer.hpp"

#include <cstddef>
#include <cstdio>
#include <limits>
#include <queue>
#include <string>
#include <utility>

#include "lowbit/error.hpp"

namespace lowbit::io {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The byte a "<0xAB>" piece stands for, or -1 for any other piece.
int byte_of_piece(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text.back() != '>') return -1;
  const int hi = hex_digit(text[3]), lo = hex_digit(text[4]);
  return hi >= 0 && lo >= 0 ? hi * 16 + lo : -1;
}

bool is_utf8_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Bytes as "0xE4 0xB8", for messages about text that may not be printable.
std::string hex_bytes(std::string_view bytes) {
  std::string text;
  for (char c : bytes) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "%s0x%02X", text.empty() ? "" : " ",
                  static_cast<unsigned>(static_cast<unsigned char>(c)));
    text += hex;
  }
  return text;
}

// llama2.c merges a pair only when its token scores above this (its best_score starts here), so
// pairs scoring at or below it, or NaN, never merge.
constexpr float merge_score_floor = -1e10f;

}  // namespace

Tokenizer::Tokenizer(std::vector<std::string> vocab, std::vector<float> scores)
    : vocab_(std::move(vocab)), scores_(std::move(scores)) {
  if (vocab_.size() != scores_.size())
    throw invalid_argument("tokenizer: " + std::to_string(vocab_.size()) + " tokens but " +
                           std::to_string(scores_.size()) + " scores");
  // Token ids are ints, and encode's symbol links are ints too.
  if (vocab_.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw invalid_argument("tokenizer: " + std::to_string(vocab_.size()) +
                           " tokens do not fit int token ids");
  // The first of duplicate pieces wins, so lookups are deterministic.
  for (std::size_t i = 0; i < vocab_.size(); ++i) index_.emplace(vocab_[i], static_cast<int>(i));

  // llama2.c writes a byte without a token as token 3 + byte, unchecked; SentencePiece's byte
  // fallback likewise needs all 256 byte pieces. So fallback is on only when every one of them is
  // exactly where llama2.c looks: with fewer tokens, or other pieces there, 3 + byte would index
  // past the vocabulary or silently mean another token.
  byte_fallback_ = vocab_.size() >= static_cast<std::size_t>(byte_fallback_vocab_size);
  for (int b = 0; byte_fallback_ && b < 256; ++b)
    byte_fallback_ = byte_of_piece(vocab_[static_cast<std::size_t>(byte_fallback_offset + b)]) == b;
}

const std::string& Tokenizer::piece(int token) const {
  if (token < 0 || token >= vocab_size())
    throw invalid_argument("tokenizer: token " + std::to_string(token) + " is outside [0, " +
                           std::to_string(vocab_size()) + ")");
  return vocab_[static_cast<std::size_t>(token)];
}

float Tokenizer::score(int token) const {
  piece(token);  // range check
  return scores_[static_cast<std::size_t>(token)];
}

int Tokenizer::lookup(std::string_view text) const {
  const auto it = index_.find(text);
  return it == index_.end() ? -1 : it->second;
}

std::vector<int> Tokenizer::encode(std::string_view text, bool bos, bool eos) const {
  const auto require_special = [&](bool wanted, int id, const char* name) {
    if (wanted && id >= vocab_size())
      throw invalid_argument("tokenizer: " + std::string(name) + " (token " + std::to_string(id) +
                             ") is outside the vocabulary of " + std::to_string(vocab_size()) +
                             " tokens");
  };
  require_special(bos, bos_id, "BOS");
  require_special(eos, eos_id, "EOS");
  // Symbols are linked by int indices: one per byte at most, plus BOS and the dummy prefix.
  if (text.size() > static_cast<std::size_t>(std::numeric_limits<int>::max() - 2))
    throw invalid_argument("tokenizer: a text of " + std::to_string(text.size()) +
                           " bytes is too long to encode at once");

  // Every id pushed here is in [0, vocab_size()): BOS was checked above, lookups return ids of the
  // vocabulary, and 3 + byte is used only with byte fallback, which needs 259 tokens.
  std::vector<int> initial;
  if (bos) initial.push_back(bos_id);
  if (!text.empty()) {
    const int dummy = lookup(" ");
    if (dummy < 0) throw invalid_argument("tokenizer: the vocabulary has no \" \" token");
    initial.push_back(dummy);
  }
  // One token per UTF-8 codepoint (a lead byte and up to 3 continuation bytes, as llama2.c groups
  // them, valid UTF-8 or not), or its bytes when it is not in the vocabulary.
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = start + 1;
    while (end < text.size() && end - start < 4 && is_utf8_continuation(text[end])) ++end;
    const std::string_view codepoint = text.substr(start, end - start);
    start = end;
    if (const int id = lookup(codepoint); id >= 0) {
      initial.push_back(id);
      continue;
    }
    if (!byte_fallback_)
      throw invalid_argument("tokenizer: the text's bytes " + hex_bytes(codepoint) +
                             " have no token, and the vocabulary has no byte-fallback tokens "
                             "<0x00>..<0xFF> at ids 3..258");
    for (char b : codepoint)
      initial.push_back(static_cast<unsigned char>(b) + byte_fallback_offset);
  }

  // llama2.c merges the best-scoring adjacent pair until none merges, the leftmost among equal
  // scores, rescanning every pair after each merge: quadratic. The same merges in the same order,
  // as SentencePiece does it: the tokens as a linked list of symbols (a symbol keeps its index when
  // it absorbs its right neighbour, so index order is list order), and a heap of candidate pairs
  // ordered by (score, then leftmost index). A merge changes only the pairs beside it; candidates
  // it made stale stay in the heap and are skipped when popped, recognised by their tokens.
  struct Symbol {
    int token;  // -1 once merged into its left neighbour
    int prev;   // -1 at either end
    int next;
  };
  struct Candidate {
    float score;
    int left, right;              // symbol indices
    int left_token, right_token;  // the tokens it was made for
    int merged;
  };
  struct Lower {  // std::priority_queue pops the greatest: the best score, then the leftmost
    bool operator()(const Candidate& a, const Candidate& b) const {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
  };

  const int count = static_cast<int>(initial.size());  // at most text.size() + 2
  std::vector<Symbol> symbols(initial.size());
  for (int i = 0; i < count; ++i)
    symbols[static_cast<std::size_t>(i)] = {initial[static_cast<std::size_t>(i)], i - 1,
                                            i + 1 < count ? i + 1 : -1};
  const auto symbol = [&](int i) -> Symbol& { return symbols[static_cast<std::size_t>(i)]; };

  std::vector<Candidate> storage;
  storage.reserve(initial.size());
  std::priority_queue<Candidate, std::vector<Candidate>, Lower> candidates(Lower{},
                                                                           std::move(storage));
  std::string pair;  // reused: a lookup allocates nothing once it is long enough
  const auto consider = [&](int left) {
    if (left < 0 || symbol(left).next < 0) return;
    const int right = symbol(left).next;
    const int left_token = symbol(left).token, right_token = symbol(right).token;
    pair.assign(vocab_[static_cast<std::size_t>(left_token)]);
    pair.append(vocab_[static_cast<std::size_t>(right_token)]);
    const int merged = lookup(pair);
    if (merged < 0) return;
    const float merged_score = scores_[static_cast<std::size_t>(merged)];
    if (!(merged_score > merge_score_floor)) return;
    candidates.push({merged_score, left, right, left_token, right_token, merged});
  };
  for (int i = 0; i + 1 < count; ++i) consider(i);

  while (!candidates.empty()) {
    const Candidate best = candidates.top();
    candidates.pop();
    Symbol& left = symbol(best.left);
    Symbol& right = symbol(best.right);
    if (left.token != best.left_token || left.next != best.right || right.token != best.right_token)
      continue;  // stale: one side has merged since
    left.token = best.merged;
    left.next = right.next;
    if (right.next >= 0) symbol(right.next).prev = best.left;
    right.token = -1;
    consider(left.prev);
    consider(best.left);
  }

  std::vector<int> tokens;
  tokens.reserve(initial.size() + 1);
  for (int i = count > 0 ? 0 : -1; i >= 0; i = symbol(i).next) tokens.push_back(symbol(i).token);
  if (eos) tokens.push_back(eos_id);
  return tokens;
}

std::string Tokenizer::decode(int prev_token, int token) const {
  std::string_view text = piece(token);  // range check
  if (prev_token == bos_id && !text.empty() && text.front() == ' ') text.remove_prefix(1);
  // "<0xAB>": a byte-fallback token stands for the raw byte.
  if (const int byte = byte_of_piece(text); byte >= 0)
    return std::string(1, static_cast<char>(byte));
  return std::string(text);
}

std::vector<int> encode_corpus(const Tokenizer& tokenizer, std::string_view text) {
  std::vector<int> tokens;
  std::size_t begin = 0;
  auto flush = [&](std::size_t end) {
    std::string_view chunk = text.substr(begin, end - begin);
    // Every chunk but the first starts with the space it was cut before; the dummy prefix of
    // encode stands for it.
    if (begin > 0) chunk.remove_prefix(1);
    const std::vector<int> part = tokenizer.encode(chunk, false, false);
    tokens.insert(tokens.end(), part.begin(), part.end());
    begin = end;
  };
  // Spaces at the very end stay with the chunk before them (a chunk of spaces alone would encode
  // to nothing once its leading space is removed).
  const std::size_t last = text.find_last_not_of(' ');
  const std::size_t content_end = last == std::string_view::npos ? 0 : last + 1;
  for (std::size_t i = 1; i < content_end; ++i)
    if (text[i] == ' ' && text[i - 1] != ' ') flush(i);
  if (!text.empty()) flush(text.size());
  return tokens;
}

}  // namespace lowbit::io
