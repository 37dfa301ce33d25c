#include "lowbit/io/tokenizer.hpp"

#include <cstddef>
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

}  // namespace

Tokenizer::Tokenizer(std::vector<std::string> vocab, std::vector<float> scores)
    : vocab_(std::move(vocab)), scores_(std::move(scores)) {
  if (vocab_.size() != scores_.size())
    throw invalid_argument("tokenizer: " + std::to_string(vocab_.size()) + " tokens but " +
                           std::to_string(scores_.size()) + " scores");
  // The first of duplicate pieces wins, so lookups are deterministic.
  for (std::size_t i = 0; i < vocab_.size(); ++i) index_.emplace(vocab_[i], static_cast<int>(i));
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
  const auto it = index_.find(std::string(text));
  return it == index_.end() ? -1 : it->second;
}

std::vector<int> Tokenizer::encode(std::string_view text, bool bos, bool eos) const {
  std::vector<int> tokens;
  if (bos) tokens.push_back(bos_id);
  if (!text.empty()) {
    const int dummy = lookup(" ");
    if (dummy < 0) throw invalid_argument("tokenizer: the vocabulary has no \" \" token");
    tokens.push_back(dummy);
  }

  // One token per UTF-8 codepoint (up to 4 bytes), or its bytes when it is not in the vocabulary.
  std::string codepoint;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if ((byte & 0xC0) != 0x80) codepoint.clear();
    codepoint += text[i];
    const bool continues =
        i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80;
    if (continues && codepoint.size() < 4) continue;
    const int id = lookup(codepoint);
    if (id >= 0) {
      tokens.push_back(id);
    } else {
      for (char b : codepoint)
        tokens.push_back(static_cast<unsigned char>(b) + byte_fallback_offset);
    }
    codepoint.clear();
  }

  // Merge the best-scoring adjacent pair until none merges; ties go to the leftmost pair.
  for (;;) {
    float best_score = -1e10f;
    int best_id = -1;
    std::size_t best_index = 0;
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
      const int id = lookup(vocab_[static_cast<std::size_t>(tokens[i])] +
                            vocab_[static_cast<std::size_t>(tokens[i + 1])]);
      if (id >= 0 && scores_[static_cast<std::size_t>(id)] > best_score) {
        best_score = scores_[static_cast<std::size_t>(id)];
        best_id = id;
        best_index = i;
      }
    }
    if (best_id < 0) break;
    tokens[best_index] = best_id;
    tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(best_index) + 1);
  }

  if (eos) tokens.push_back(eos_id);
  return tokens;
}

std::string Tokenizer::decode(int prev_token, int token) const {
  std::string_view text = piece(token);
  if (prev_token == bos_id && !text.empty() && text.front() == ' ') text.remove_prefix(1);
  // "<0xAB>": a byte-fallback token stands for the raw byte.
  if (text.size() == 6 && text.substr(0, 3) == "<0x" && text.back() == '>') {
    const int hi = hex_digit(text[3]), lo = hex_digit(text[4]);
    if (hi >= 0 && lo >= 0) return std::string(1, static_cast<char>(hi * 16 + lo));
  }
  return std::string(text);
}

}  // namespace lowbit::io
