// libFuzzer harness: parse_hf_tokenizer (a tokenizer.json: every field, hostile values) and
// BpeTokenizer::encode/decode on fuzzer text. lowbit::error is the expected answer to a bad file;
// anything else (another exception, a crash, a sanitizer report, an id outside the vocabulary, a
// byte-level decode that does not give back the text) is a finding.
//
// Input: byte 0 flags (bit 0 add the post-processor's tokens, bit 1 skip special tokens when
// decoding), then the tokenizer.json, then a NUL byte, then the text (JSON text has no raw NUL).
// Seeds (make_fuzz_seeds.cpp): small tokenizer.json files of each kind lowbit reads, and a cut-down
// SmolLM2 tokenizer.json, each with a hostile text.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input.hpp"
#include "lowbit/error.hpp"
#include "lowbit/io/bpe_tokenizer.hpp"
#include "lowbit/io/hf_tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using lowbit::fuzz::require;
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t nul = rest.find('\0');
  const std::string_view json = rest.substr(0, nul);
  const std::string_view text = nul == std::string_view::npos ? "" : rest.substr(nul + 1);

  std::optional<lowbit::io::BpeTokenizer> tokenizer;
  try {
    tokenizer.emplace(lowbit::io::parse_hf_tokenizer(json, "fuzz.json"));
  } catch (const lowbit::error&) {
    return 0;
  }
  std::vector<int> ids;
  try {
    ids = tokenizer->encode(text, flags & 1);
  } catch (const lowbit::invalid_argument&) {
    return 0;  // a pattern past PCRE2's match limits
  }
  for (const int id : ids) require(id >= 0 && id < tokenizer->vocab_size());
  const std::string decoded = tokenizer->decode(ids, flags & 2);
  (void)decoded;
  return 0;
}
