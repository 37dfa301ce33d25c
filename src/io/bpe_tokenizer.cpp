#include "lowbit/io/bpe_tokenizer.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <queue>
#include <string>
#include <utility>

#include "io/bpe_pipeline.hpp"
#include "io/utf8.hpp"
#include "lowbit/error.hpp"

namespace lowbit::io {

using detail::PrependScheme;
using detail::Span;
using detail::SplitBehavior;

// ---- the pipeline's tables ----------------------------------------------------------------------

namespace detail {

void TokenTrie::insert(std::string_view text, int value) {
  int node = 0;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    auto& children = nodes_[static_cast<std::size_t>(node)].children;
    const auto it = std::find_if(children.begin(), children.end(),
                                 [&](const auto& child) { return child.first == byte; });
    if (it != children.end()) {
      node = it->second;
      continue;
    }
    const int child = static_cast<int>(nodes_.size());
    children.emplace_back(byte, child);
    nodes_.emplace_back();
    node = child;
  }
  nodes_[static_cast<std::size_t>(node)].value = value;
}

std::optional<std::pair<std::size_t, int>> TokenTrie::longest_at(std::string_view text,
                                                                 std::size_t at) const {
  std::optional<std::pair<std::size_t, int>> longest;
  int node = 0;
  for (std::size_t i = at; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const auto& children = nodes_[static_cast<std::size_t>(node)].children;
    const auto it = std::find_if(children.begin(), children.end(),
                                 [&](const auto& child) { return child.first == byte; });
    if (it == children.end()) break;
    node = it->second;
    if (const int value = nodes_[static_cast<std::size_t>(node)].value; value >= 0)
      longest = std::pair{i + 1 - at, value};
  }
  return longest;
}

}  // namespace detail

const std::array<std::string, 256>& byte_level_characters() {
  // GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 for
  // U+0100.. in byte order, so every byte is a visible character and a token is printable text.
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> characters;
    std::uint32_t next = 256;
    for (std::uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      characters[b] = utf8::encode(printable ? b : next++);
    }
    return characters;
  }();
  return table;
}

void BpeTokenizer::Pipeline::reserve_ids(std::size_t count) {
  pieces.assign(count, std::string());
  known.assign(count, 0);
  special.assign(count, 0);
}

void BpeTokenizer::Pipeline::set_piece(int id, std::string text) {
  pieces[static_cast<std::size_t>(id)] = std::move(text);
  known[static_cast<std::size_t>(id)] = 1;
}

std::string BpeTokenizer::Pipeline::normalize(std::string text) const {
  for (const NormalizerStep& step : normalizer) {
    if (step.kind == NormalizerStep::Kind::prepend) {
      if (!text.empty()) text.insert(0, step.content);
      continue;
    }
    if (step.pattern.empty() || text.find(step.pattern) == std::string::npos) continue;
    std::string replaced;
    replaced.reserve(text.size());
    std::size_t from = 0;
    for (std::size_t at; (at = text.find(step.pattern, from)) != std::string::npos;
         from = at + step.pattern.size())
      replaced.append(text, from, at - from).append(step.content);
    replaced.append(text, from);
    text = std::move(replaced);
  }
  return text;
}

void BpeTokenizer::Pipeline::index_added_tokens() {
  normalized_content.clear();
  decode_text.clear();
  raw_trie = {};
  normalized_trie = {};
  for (std::size_t i = 0; i < added.size(); ++i) {
    const AddedToken& token = added[i];
    // A normalized token is matched as the normalizer writes it (Llama 2's "</s>" as "▁</s>").
    normalized_content.push_back(token.normalized ? normalize(token.content) : token.content);
    (token.normalized ? normalized_trie : raw_trie)
        .insert(normalized_content.back(), static_cast<int>(i));
    special[static_cast<std::size_t>(token.id)] = token.special ? 1 : 0;
    if (normalized_content.back() != token.content)
      decode_text[token.id] = normalized_content.back();
  }
}

// ---- encode -------------------------------------------------------------------------------------

namespace {

struct Segment {
  std::string text;
  int token = -1;            // an added token's id, or -1 for text still to tokenize
  bool starts_text = false;  // begins at offset 0 of the text (Metaspace's prepend_scheme "first")
};

// Unicode's White_Space, which tokenizers' lstrip and rstrip remove around an added token.
bool is_white_space(std::uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Splits `segment` around the added tokens of `trie`, leftmost-longest, as tokenizers'
// AddedVocabulary::find_matches does.
void split_on_added_tokens(const BpeTokenizer::Pipeline& p, const detail::TokenTrie& trie,
                           Segment segment, std::vector<Segment>& out) {
  const std::string_view text = segment.text;
  if (trie.empty() || text.empty()) {
    if (!text.empty()) out.push_back(std::move(segment));
    return;
  }
  std::size_t done = 0;
  for (std::size_t at = 0; at < text.size();) {
    const auto match = trie.longest_at(text, at);
    if (!match) {
      ++at;
      continue;
    }
    const auto& token = p.added[static_cast<std::size_t>(match->second)];
    std::size_t begin = at, end = at + match->first;
    if (token.lstrip) {
      std::size_t stripped = begin;
      while (stripped > done) {
        const std::size_t previous = utf8::previous_start(text, stripped);
        if (!is_white_space(utf8::decode_at(text, previous))) break;
        stripped = previous;
      }
      begin = stripped;
    }
    if (token.rstrip)
      while (end < text.size() && is_white_space(utf8::decode_at(text, end)))
        end += utf8::sequence_length(text, end);
    if (done < begin)
      out.push_back(
          {std::string(text.substr(done, begin - done)), -1, segment.starts_text && done == 0});
    out.push_back({std::string(text.substr(begin, end - begin)), token.id, false});
    done = at = end;
  }
  if (done < text.size())
    out.push_back({std::string(text.substr(done)), -1, segment.starts_text && done == 0});
}

// The pieces of `text` that `behavior` makes of the regex's matches and the text between them.
void split_by(std::string_view text, const std::vector<Span>& matches, SplitBehavior behavior,
              std::vector<Span>& pieces) {
  std::vector<std::pair<Span, bool>> spans;  // (span, is a match), covering the text
  std::size_t done = 0;
  for (const Span& m : matches) {
    if (done < m.begin) spans.push_back({{done, m.begin}, false});
    spans.push_back({m, true});
    done = m.end;
  }
  if (done < text.size()) spans.push_back({{done, text.size()}, false});

  pieces.clear();
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::isolated:
      for (const auto& [span, is_match] : spans) pieces.push_back(span);
      break;
    case SplitBehavior::removed:
      for (const auto& [span, is_match] : spans)
        if (!is_match) pieces.push_back(span);
      break;
    case SplitBehavior::merged_with_previous:
      for (const auto& [span, is_match] : spans) {
        if (is_match && !previous_match && !pieces.empty())
          pieces.back().end = span.end;
        else
          pieces.push_back(span);
        previous_match = is_match;
      }
      break;
    case SplitBehavior::merged_with_next:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        const auto& [span, is_match] = *it;
        if (is_match && !previous_match && !pieces.empty())
          pieces.back().begin = span.begin;
        else
          pieces.push_back(span);
        previous_match = is_match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
    case SplitBehavior::contiguous:
      for (const auto& [span, is_match] : spans) {
        if (is_match == previous_match && !pieces.empty())
          pieces.back().end = span.end;
        else
          pieces.push_back(span);
        previous_match = is_match;
      }
      break;
  }
}

struct Piece {
  std::string text;
  bool starts_text;
};

// Runs one pre-tokenizer step over every piece.
void pre_tokenize_step(const BpeTokenizer::Pipeline::PreTokenizerStep& step,
                       std::vector<Piece>& pieces, detail::RegexScratch& scratch) {
  using Kind = BpeTokenizer::Pipeline::PreTokenizerStep::Kind;
  std::vector<Piece> out;
  out.reserve(pieces.size());
  std::vector<Span> matches, spans;
  const auto split_into = [&](Piece& piece, SplitBehavior behavior) {
    split_by(piece.text, matches, behavior, spans);
    for (const Span& span : spans)
      if (span.end > span.begin)
        out.push_back({piece.text.substr(span.begin, span.end - span.begin),
                       piece.starts_text && span.begin == 0});
  };
  for (Piece& piece : pieces) {
    switch (step.kind) {
      case Kind::split:
        step.regex->find_all(piece.text, scratch, matches);
        split_into(piece, step.behavior);
        break;
      case Kind::byte_level: {
        if (step.add_prefix_space && piece.text.front() != ' ') piece.text.insert(0, 1, ' ');
        std::vector<Piece> words;
        if (step.regex) {
          step.regex->find_all(piece.text, scratch, matches);
          split_into(piece, SplitBehavior::isolated);
        } else {
          out.push_back(std::move(piece));
        }
        break;
      }
      case Kind::metaspace: {
        std::string replaced;
        replaced.reserve(piece.text.size());
        for (const char c : piece.text) {
          if (c == ' ')
            replaced += step.replacement;
          else
            replaced += c;
        }
        const bool prepend = !replaced.starts_with(step.replacement) &&
                             (step.prepend == PrependScheme::always ||
                              (step.prepend == PrependScheme::first && piece.starts_text));
        if (prepend) replaced.insert(0, step.replacement);
        piece.text = std::move(replaced);
        if (!step.split) {
          out.push_back(std::move(piece));
          break;
        }
        matches.clear();
        for (std::size_t at = 0; (at = piece.text.find(step.replacement, at)) != std::string::npos;
             at += step.replacement.size())
          matches.push_back({at, at + step.replacement.size()});
        split_into(piece, SplitBehavior::merged_with_next);
        break;
      }
    }
  }
  // ByteLevel's bytes-to-characters mapping comes after its split, on every piece.
  if (step.kind == Kind::byte_level) {
    const auto& characters = byte_level_characters();
    for (Piece& piece : out) {
      std::string mapped;
      mapped.reserve(piece.text.size() * 2);
      for (const char c : piece.text) mapped += characters[static_cast<unsigned char>(c)];
      piece.text = std::move(mapped);
    }
  }
  pieces = std::move(out);
}

// The BPE model on one pre-token: its characters (or their byte tokens, or <unk>), then merges,
// the best first (lowest rank, or highest score), the leftmost among equals. Symbols form a linked
// list (a symbol keeps its index when it absorbs its right neighbour, so index order is text
// order) and candidate pairs a heap; a merge changes only the pairs beside it, and candidates it
// made stale are recognised by their tokens when popped. O(n log n) in the pre-token's length.
class WordEncoder {
 public:
  explicit WordEncoder(const BpeTokenizer::Pipeline& p) : p_(p) {}

  void encode(std::string_view word, std::vector<int>& out) {
    if (word.empty()) return;
    if (p_.ignore_merges)
      if (const auto it = p_.vocab.find(word); it != p_.vocab.end()) {
        out.push_back(it->second);
        return;
      }
    initial_symbols(word);
    merge();
    for (int i = symbols_.empty() ? -1 : 0; i >= 0; i = symbols_[static_cast<std::size_t>(i)].next)
      out.push_back(symbols_[static_cast<std::size_t>(i)].token);
  }

 private:
  struct Symbol {
    int token;
    int prev, next;  // -1 at either end
  };
  struct Candidate {
    std::uint64_t order;  // lower merges first: the rank (or the score, ordered) then the position
    int right;
    int left_token, right_token;
    int merged;
    int left() const { return static_cast<int>(order & 0xFFFFFFFFu); }
  };
  struct Worse {  // std::priority_queue pops the greatest: the lowest order
    bool operator()(const Candidate& a, const Candidate& b) const { return a.order > b.order; }
  };
  // One integer compares (priority, position): the rank, or the score's bits turned so that a
  // higher score is a smaller number (scores are not NaN: the vocabulary refuses them).
  static std::uint64_t order_of(std::uint32_t priority, int left) {
    return static_cast<std::uint64_t>(priority) << 32 | static_cast<std::uint32_t>(left);
  }
  static std::uint32_t score_priority(float score) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &score, sizeof bits);
    const std::uint32_t ascending = bits & 0x80000000u ? ~bits : bits | 0x80000000u;
    return ~ascending;
  }

  void initial_symbols(std::string_view word) {
    std::vector<int>& tokens = initial_;
    tokens.clear();
    // tokenizers' merge_word: a pending <unk> is written before the next known character, and
    // consecutive ones fuse into one with fuse_unk.
    bool unk_pending = false;
    for (std::size_t at = 0; at < word.size();) {
      const std::size_t length = utf8::sequence_length(word, at);
      const std::string_view character = word.substr(at, length);
      at += length;
      if (const auto it = p_.vocab.find(character); it != p_.vocab.end()) {
        if (unk_pending) tokens.push_back(*p_.unk);
        unk_pending = false;
        tokens.push_back(it->second);
        continue;
      }
      if (p_.byte_fallback && std::all_of(character.begin(), character.end(), [&](char b) {
            return p_.byte_tokens[static_cast<unsigned char>(b)] >= 0;
          })) {
        for (const char b : character)
          tokens.push_back(p_.byte_tokens[static_cast<unsigned char>(b)]);
        continue;
      }
      // Without <unk>, tokenizers drops the character; so does lowbit, to give the same ids.
      if (!p_.unk) continue;
      if (unk_pending && !p_.fuse_unk) tokens.push_back(*p_.unk);
      unk_pending = true;
    }
    if (unk_pending) tokens.push_back(*p_.unk);

    const int count = static_cast<int>(tokens.size());
    symbols_.resize(tokens.size());
    for (int i = 0; i < count; ++i)
      symbols_[static_cast<std::size_t>(i)] = {tokens[static_cast<std::size_t>(i)], i - 1,
                                               i + 1 < count ? i + 1 : -1};
  }

  void consider(int left) {
    if (left < 0) return;
    const Symbol& l = symbols_[static_cast<std::size_t>(left)];
    if (l.next < 0) return;
    const Symbol& r = symbols_[static_cast<std::size_t>(l.next)];
    if (p_.merge_by_score) {
      pair_.assign(p_.pieces[static_cast<std::size_t>(l.token)]);
      pair_.append(p_.pieces[static_cast<std::size_t>(r.token)]);
      const auto it = p_.vocab.find(pair_);
      if (it == p_.vocab.end()) return;
      const float score = p_.scores[static_cast<std::size_t>(it->second)];
      heap_.push({order_of(score_priority(score), left), l.next, l.token, r.token, it->second});
      return;
    }
    const auto key = static_cast<std::uint64_t>(static_cast<std::uint32_t>(l.token)) << 32 |
                     static_cast<std::uint32_t>(r.token);
    const auto it = p_.merges.find(key);
    if (it == p_.merges.end()) return;
    heap_.push({order_of(static_cast<std::uint32_t>(it->second.rank), left), l.next, l.token,
                r.token, it->second.merged});
  }

  void merge() {
    heap_ = {};
    const int count = static_cast<int>(symbols_.size());
    for (int i = 0; i + 1 < count; ++i) consider(i);
    while (!heap_.empty()) {
      const Candidate best = heap_.top();
      heap_.pop();
      const int best_left = best.left();
      Symbol& left = symbols_[static_cast<std::size_t>(best_left)];
      Symbol& right = symbols_[static_cast<std::size_t>(best.right)];
      if (left.token != best.left_token || left.next != best.right ||
          right.token != best.right_token)
        continue;  // stale: one side has merged since
      left.token = best.merged;
      left.next = right.next;
      if (right.next >= 0) symbols_[static_cast<std::size_t>(right.next)].prev = best_left;
      right.token = -1;
      consider(left.prev);
      consider(best_left);
    }
  }

  const BpeTokenizer::Pipeline& p_;
  std::vector<int> initial_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Candidate, std::vector<Candidate>, Worse> heap_;
  std::string pair_;
};

}  // namespace

BpeTokenizer::BpeTokenizer(std::shared_ptr<const Pipeline> pipeline)
    : pipeline_(std::move(pipeline)) {
  if (!pipeline_) throw invalid_argument("BpeTokenizer: no pipeline");
}

int BpeTokenizer::vocab_size() const noexcept { return static_cast<int>(pipeline_->pieces.size()); }

const std::string& BpeTokenizer::piece(int id) const {
  if (id < 0 || id >= vocab_size() || !pipeline_->known[static_cast<std::size_t>(id)])
    throw invalid_argument("tokenizer: token " + std::to_string(id) + " is not in the vocabulary");
  return pipeline_->pieces[static_cast<std::size_t>(id)];
}

std::optional<int> BpeTokenizer::token_id(std::string_view text) const {
  if (const auto it = pipeline_->added_index.find(text); it != pipeline_->added_index.end())
    return it->second;
  if (const auto it = pipeline_->vocab.find(text); it != pipeline_->vocab.end()) return it->second;
  return std::nullopt;
}

bool BpeTokenizer::is_special(int id) const {
  piece(id);  // range check
  return pipeline_->special[static_cast<std::size_t>(id)] != 0;
}

std::optional<int> BpeTokenizer::bos_id() const { return pipeline_->bos; }
bool BpeTokenizer::adds_bos() const {
  return pipeline_->bos && !pipeline_->prefix.empty() &&
         pipeline_->prefix.front() == *pipeline_->bos;
}
std::optional<int> BpeTokenizer::eos_id() const { return pipeline_->eos; }

std::vector<int> BpeTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const Pipeline& p = *pipeline_;
  std::vector<int> ids;
  if (add_special_tokens) ids = p.prefix;

  // Text that is not UTF-8 is read as from_utf8_lossy reads it; valid text is not copied twice.
  std::vector<Segment> segments;
  {
    Segment whole{utf8::is_valid(text) ? std::string(text) : utf8::replace_invalid(text), -1, true};
    std::vector<Segment> raw;
    split_on_added_tokens(p, p.raw_trie, std::move(whole), raw);
    for (Segment& segment : raw) {
      if (segment.token >= 0) {
        segments.push_back(std::move(segment));
        continue;
      }
      segment.text = p.normalize(std::move(segment.text));
      split_on_added_tokens(p, p.normalized_trie, std::move(segment), segments);
    }
  }

  detail::RegexScratch scratch;
  WordEncoder words(p);
  std::vector<Piece> pieces;
  for (Segment& segment : segments) {
    if (segment.token >= 0) {
      ids.push_back(segment.token);
      continue;
    }
    pieces.clear();
    pieces.push_back({std::move(segment.text), segment.starts_text});
    for (const auto& step : p.pre_tokenizer) pre_tokenize_step(step, pieces, scratch);
    for (const Piece& piece : pieces) words.encode(piece.text, ids);
  }
  if (add_special_tokens) ids.insert(ids.end(), p.suffix.begin(), p.suffix.end());
  return ids;
}

// ---- decode -------------------------------------------------------------------------------------

namespace {

// tokenizers' ByteFallback reads "<0x" two hex digits ">" with Rust's u8::from_str_radix, which
// also takes a leading '+'.
int fallback_byte(std::string_view token) {
  if (token.size() != 6 || !token.starts_with("<0x") || token.back() != '>') return -1;
  const auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const int hi = token[3] == '+' ? 0 : hex(token[3]), lo = hex(token[4]);
  return hi >= 0 && lo >= 0 ? hi * 16 + lo : -1;
}

void decode_step(const BpeTokenizer::Pipeline::DecoderStep& step,
                 std::vector<std::string>& tokens) {
  using Kind = BpeTokenizer::Pipeline::DecoderStep::Kind;
  switch (step.kind) {
    case Kind::byte_level: {
      // Each token's characters back to bytes; a token with a character outside the table
      // (an added token's text) stays as it is. All of it joined into one.
      static const auto inverse = [] {
        std::vector<std::pair<std::uint32_t, int>> table;
        const auto& characters = byte_level_characters();
        for (int b = 0; b < 256; ++b)
          table.emplace_back(utf8::decode_at(characters[static_cast<std::size_t>(b)], 0), b);
        std::sort(table.begin(), table.end());
        return table;
      }();
      std::string joined;
      for (const std::string& token : tokens) {
        std::string bytes;
        bool mapped = true;
        for (std::size_t at = 0; at < token.size() && mapped;) {
          const std::uint32_t c = utf8::decode_at(token, at);
          at += utf8::sequence_length(token, at);
          const auto it = std::lower_bound(inverse.begin(), inverse.end(), std::pair{c, -1});
          mapped = it != inverse.end() && it->first == c;
          if (mapped) bytes += static_cast<char>(it->second);
        }
        joined += mapped ? bytes : token;
      }
      tokens.assign(1, std::move(joined));
      break;
    }
    case Kind::metaspace:
      for (std::size_t i = 0; i < tokens.size(); ++i) {
        // tokenizers drops every replacement character of the first token when it prepends one.
        const bool drop = i == 0 && step.prepend != PrependScheme::never;
        std::string out;
        for (std::size_t at = 0, next; at < tokens[i].size(); at = next) {
          if (tokens[i].compare(at, step.content.size(), step.content) == 0) {
            next = at + step.content.size();
            if (!drop) out += ' ';
            continue;
          }
          next = at + 1;
          out += tokens[i][at];
        }
        tokens[i] = std::move(out);
      }
      break;
    case Kind::replace:
      for (std::string& token : tokens) {
        if (step.pattern.empty()) continue;
        std::string out;
        std::size_t from = 0;
        for (std::size_t at; (at = token.find(step.pattern, from)) != std::string::npos;
             from = at + step.pattern.size())
          out.append(token, from, at - from).append(step.content);
        out.append(token, from);
        token = std::move(out);
      }
      break;
    case Kind::byte_fallback: {
      // Runs of byte tokens become their bytes (tokenizers writes U+FFFD per byte when a run is
      // not UTF-8; lowbit keeps the bytes).
      std::vector<std::string> out;
      std::string bytes;
      bool in_run = false;
      for (std::string& token : tokens) {
        if (const int byte = fallback_byte(token); byte >= 0) {
          bytes += static_cast<char>(byte);
          in_run = true;
          continue;
        }
        if (in_run) out.push_back(std::move(bytes));
        bytes.clear();
        in_run = false;
        out.push_back(std::move(token));
      }
      if (in_run) out.push_back(std::move(bytes));
      tokens = std::move(out);
      break;
    }
    case Kind::fuse: {
      std::string joined;
      for (const std::string& token : tokens) joined += token;
      tokens.assign(1, std::move(joined));
      break;
    }
    case Kind::strip:
      // Up to `start` leading and `stop` trailing copies of the character, per token.
      for (std::string& token : tokens) {
        const std::string& c = step.content;
        std::size_t begin = 0, end = token.size();
        for (std::size_t n = 0; n < step.start && token.compare(begin, c.size(), c) == 0 &&
                                begin + c.size() <= token.size();
             ++n)
          begin += c.size();
        for (std::size_t n = 0; n < step.stop && end >= begin + c.size() &&
                                token.compare(end - c.size(), c.size(), c) == 0;
             ++n)
          end -= c.size();
        token = token.substr(begin, end - begin);
      }
      break;
  }
}

}  // namespace

std::string BpeTokenizer::decode(std::span<const int> ids, bool skip_special_tokens) const {
  const Pipeline& p = *pipeline_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int id : ids) {
    const std::string& text = piece(id);  // range check
    if (skip_special_tokens && p.special[static_cast<std::size_t>(id)]) continue;
    const auto normalized = p.decode_text.find(id);
    tokens.push_back(normalized == p.decode_text.end() ? text : normalized->second);
  }
  if (!p.has_decoder) {
    std::string joined;
    for (std::size_t i = 0; i < tokens.size(); ++i) joined.append(i ? " " : "").append(tokens[i]);
    return joined;
  }
  for (const auto& step : p.decoder) decode_step(step, tokens);
  std::string text;
  for (const std::string& token : tokens) text += token;
  return text;
}

}  // namespace lowbit::io
