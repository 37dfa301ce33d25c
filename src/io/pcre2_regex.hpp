// PCRE2 (8-bit, UTF, Unicode properties, JIT) behind a small interface: the pre-tokenizer regexes
// of the BPE tokenizers. Private to the library: no public header sees PCRE2.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::io::detail {

/// A [begin, end) byte range of a subject string.
struct Span {
  std::size_t begin;
  std::size_t end;
};

/// Scratch memory for matching (match data, a JIT stack, the match limits): one per encode call,
/// shared by every regex it runs, so that a long text does not allocate per piece.
class RegexScratch {
 public:
  RegexScratch();
  ~RegexScratch();
  RegexScratch(const RegexScratch&) = delete;
  RegexScratch& operator=(const RegexScratch&) = delete;

 private:
  friend class Regex;
  struct State;
  std::unique_ptr<State> state_;
};

/// A compiled regex. Patterns are written in the dialect of Hugging Face `tokenizers` (Oniguruma):
/// `\s`, `\S` and `\w` are rewritten to Oniguruma's Unicode definitions before PCRE2 compiles them
/// (PCRE2's `\s` also takes U+180E, its `\w` no combining marks).
class Regex {
 public:
  /// Throws std::invalid_argument with PCRE2's message when the pattern does not compile (the
  /// caller names the file and field). `literal`: the pattern is a plain string.
  explicit Regex(std::string_view pattern, bool literal = false);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  /// Every non-overlapping match in `subject` (valid UTF-8), left to right; empty matches are
  /// skipped as Oniguruma's find_iter steps past them. Throws lowbit::invalid_argument when a
  /// match exceeds PCRE2's limits (a pathological pattern on a long text).
  void find_all(std::string_view subject, RegexScratch& scratch, std::vector<Span>& matches) const;

 private:
  struct Code;
  std::unique_ptr<Code> code_;
};

/// The pattern with Oniguruma's `\s`, `\S` and `\w` spelled out for PCRE2 (exposed for tests).
std::string oniguruma_to_pcre2(std::string_view pattern);

}  // namespace lowbit::io::detail
