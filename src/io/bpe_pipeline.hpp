// BpeTokenizer's pipeline, the stages of Hugging Face `tokenizers` in the order it runs them:
// added tokens, normalizer, pre-tokenizer, BPE model, post-processor; and the decoder. Filled by
// read_hf_tokenizer (tokenizer.json) and by the BpeVocabulary constructor (GGUF); run by
// bpe_tokenizer.cpp. Private to the library.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "io/pcre2_regex.hpp"
#include "lowbit/io/bpe_tokenizer.hpp"

namespace lowbit::io {

namespace detail {

// Hashes std::string and std::string_view alike, so that lookups need no temporary string.
struct TextHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const noexcept {
    return std::hash<std::string_view>{}(text);
  }
};
using TextIndex = std::unordered_map<std::string, int, TextHash, std::equal_to<>>;

/// The added tokens' texts, for leftmost-longest matching (what tokenizers' Aho-Corasick does).
class TokenTrie {
 public:
  void insert(std::string_view text, int value);
  bool empty() const noexcept { return nodes_.size() <= 1; }
  /// The longest inserted text that starts at text[at], as (length, value), or nullopt.
  std::optional<std::pair<std::size_t, int>> longest_at(std::string_view text,
                                                        std::size_t at) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int>> children;
    int value = -1;
  };
  std::vector<Node> nodes_{Node{}};
};

enum class SplitBehavior { isolated, removed, merged_with_previous, merged_with_next, contiguous };
enum class PrependScheme { always, first, never };

}  // namespace detail

struct BpeTokenizer::Pipeline {
  struct NormalizerStep {
    enum class Kind { prepend, replace } kind;
    std::string pattern;  // replace: the text replaced
    std::string content;  // prepend: the text; replace: its replacement
  };
  struct PreTokenizerStep {
    enum class Kind { split, byte_level, metaspace } kind;
    explicit PreTokenizerStep(Kind k) : kind(k) {}
    std::shared_ptr<const detail::Regex> regex;  // split; byte_level with use_regex
    detail::SplitBehavior behavior = detail::SplitBehavior::isolated;
    bool add_prefix_space = false;  // byte_level
    std::string replacement;        // metaspace ("▁")
    detail::PrependScheme prepend = detail::PrependScheme::always;
    bool split = true;  // metaspace: split before each replacement character
  };
  struct AddedToken {
    std::string content;
    int id = 0;
    bool special = false;
    bool normalized = false;  // matched in the normalized text, as the normalizer writes it
    bool lstrip = false, rstrip = false;
  };
  struct DecoderStep {
    enum class Kind { byte_level, metaspace, replace, byte_fallback, fuse, strip } kind;
    explicit DecoderStep(Kind k, std::string from = {}, std::string to = {})
        : kind(k), pattern(std::move(from)), content(std::move(to)) {}
    std::string pattern, content;     // replace; metaspace and strip: content is the character
    std::size_t start = 0, stop = 0;  // strip
    detail::PrependScheme prepend = detail::PrependScheme::always;  // metaspace
  };
  struct Merge {
    int rank;
    int merged;
  };

  std::vector<NormalizerStep> normalizer;
  std::vector<PreTokenizerStep> pre_tokenizer;

  // The BPE model.
  std::vector<std::string> pieces;  // id -> text, the model's tokens and the added ones
  std::vector<std::uint8_t> known;  // id -> whether the id has a token (ids may have holes)
  detail::TextIndex vocab;          // the model's tokens
  bool merge_by_score = false;      // GGUF "llama": the merged token's score, highest first
  std::unordered_map<std::uint64_t, Merge> merges;  // (left << 32 | right) -> rank, merged id
  std::vector<float> scores;                        // merge_by_score: id -> score
  bool byte_fallback = false;
  std::array<int, 256> byte_tokens{};  // "<0xAB>" ids, -1 where absent
  std::optional<int> unk;
  bool fuse_unk = false;
  bool ignore_merges = false;  // a pre-token that is itself a token is not merged (Llama 3)

  std::vector<AddedToken> added;
  detail::TextIndex added_index;  // content -> id
  detail::TokenTrie raw_trie;     // values: indices into `added`
  detail::TokenTrie normalized_trie;
  std::vector<std::string> normalized_content;  // per `added` entry: the text matched
  std::vector<std::uint8_t> special;            // id -> special
  /// Normalized added tokens decode from their normalized text (tokenizers' simple_id_to_token).
  std::unordered_map<int, std::string> decode_text;

  std::vector<int> prefix, suffix;  // the post-processor's tokens around the text
  std::optional<int> bos, eos;

  bool has_decoder = false;  // without one, decode joins the tokens with " " (as tokenizers does)
  std::vector<DecoderStep> decoder;

  /// Sizes the id tables for `count` ids (all unknown), after the caller bounded `count`.
  void reserve_ids(std::size_t count);
  /// Records token `id` (the caller checked the id's range and that it is new).
  void set_piece(int id, std::string text);
  /// Finishes the added tokens: their normalized texts, the tries and the special flags.
  void index_added_tokens();
  /// The normalizer applied to `text`.
  std::string normalize(std::string text) const;
};

/// The regexes of the pre-tokenizers (in tokenizers' Oniguruma dialect).
namespace pre_tokenizer_patterns {
// GPT-2's, which tokenizers' ByteLevel uses when use_regex is true.
inline constexpr std::string_view gpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view llama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view qwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
}  // namespace pre_tokenizer_patterns

/// The bytes-to-characters table of byte-level BPE (GPT-2's bytes_to_unicode): each byte's
/// character, UTF-8 encoded.
const std::array<std::string, 256>& byte_level_characters();

}  // namespace lowbit::io
