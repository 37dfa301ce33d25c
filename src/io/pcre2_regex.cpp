#include "io/pcre2_regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "lowbit/error.hpp"

namespace lowbit::io::detail {

namespace {

// Oniguruma's Unicode classes (Hugging Face `tokenizers` compiles its patterns with it).
constexpr std::string_view onig_space = "\\t-\\r\\x{85}\\p{Z}";
constexpr std::string_view onig_word = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";

// A pathological pattern on a long text is refused, not run for hours: PCRE2 counts its
// backtracking steps per match against this.
constexpr std::uint32_t match_step_limit = 50'000'000;

}  // namespace

std::string oniguruma_to_pcre2(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 16);
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[++i];
      if (next == 's') {
        out.append(in_class ? "" : "[").append(onig_space).append(in_class ? "" : "]");
      } else if (next == 'S' && !in_class) {
        out.append("[^").append(onig_space).append("]");
      } else if (next == 'w') {
        out.append(in_class ? "" : "[").append(onig_word).append(in_class ? "" : "]");
      } else {
        out += c;
        out += next;
      }
      continue;
    }
    out += c;
    if (!in_class && c == '[') {
      in_class = true;
      // "[^]..." and "[]...": a ']' right after the opening is a literal.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
    } else if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      // A POSIX class "[:alpha:]" inside a class: copied through its ":]".
      const std::size_t close = pattern.find(":]", i + 2);
      if (close != std::string_view::npos) {
        out.append(pattern.substr(i + 1, close + 2 - (i + 1)));
        i = close + 1;
      }
    } else if (in_class && c == ']') {
      in_class = false;
    }
  }
  return out;
}

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

struct RegexScratch::State {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  ~State() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

RegexScratch::RegexScratch() : state_(std::make_unique<State>()) {
  state_->data = pcre2_match_data_create(1, nullptr);
  state_->context = pcre2_match_context_create(nullptr);
  // JIT matching runs on its own stack; 32 KiB, growing to 1 MiB, is ample for the tokenizers'
  // patterns (their repeats are of single characters) whatever the text's length.
  state_->jit_stack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, nullptr);
  if (!state_->data || !state_->context || !state_->jit_stack) throw std::bad_alloc();
  pcre2_jit_stack_assign(state_->context, nullptr, state_->jit_stack);
  pcre2_set_match_limit(state_->context, match_step_limit);
}

RegexScratch::~RegexScratch() = default;

Regex::Regex(std::string_view pattern, bool literal) : code_(std::make_unique<Code>()) {
  const std::string translated = literal ? std::string(pattern) : oniguruma_to_pcre2(pattern);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  const std::uint32_t options = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0u);
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                              options, &error_code, &error_offset, nullptr);
  if (!code_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof message);
    throw std::invalid_argument(
        "the regex does not compile: " + std::string(reinterpret_cast<const char*>(message)) +
        " at offset " + std::to_string(error_offset));
  }
  // Without JIT (an unsupported CPU) pcre2_match interprets the pattern: the same matches.
  pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE);
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

void Regex::find_all(std::string_view subject, RegexScratch& scratch,
                     std::vector<Span>& matches) const {
  matches.clear();
  RegexScratch::State& state = *scratch.state_;
  const auto* text = reinterpret_cast<PCRE2_SPTR>(subject.data());
  std::size_t start = 0;
  // PCRE2 checks the subject's UTF-8 on the first call; later calls skip the check, which would
  // otherwise scan the rest of the subject at every match (quadratic).
  std::uint32_t options = 0;
  while (start <= subject.size()) {
    const int rc =
        pcre2_match(code_->code, text, subject.size(), start, options, state.data, state.context);
    options = PCRE2_NO_UTF_CHECK;
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof message);
      throw lowbit::invalid_argument("a pre-tokenizer regex failed on the text: " +
                                     std::string(reinterpret_cast<const char*>(message)));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
    const std::size_t begin = ovector[0], end = ovector[1];
    if (end > begin) {
      matches.push_back({begin, end});
      start = end;
      continue;
    }
    // An empty match: step over one code point, as Oniguruma's find_iter does.
    if (begin >= subject.size()) return;
    start = begin + 1;
    while (start < subject.size() && (static_cast<unsigned char>(subject[start]) & 0xC0) == 0x80)
      ++start;
  }
}

}  // namespace lowbit::io::detail
