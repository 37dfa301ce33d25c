// libFuzzer harness: the llama2.c tokenizer reader (read_llama2c_tokenizer: every size and the
// byte-fallback vocabulary rule) and Tokenizer::encode/decode on fuzzer text, with encode checked
// against a transcription of llama2.c's quadratic encode. lowbit::error is the expected answer to
// a bad file; anything else (another exception, a crash, a sanitizer report, a broken invariant,
// a mismatch with the reference) is a finding.
//
// Input: byte 0 flags (bit 0 BOS, bit 1 EOS, bit 2 vocabulary from pieces instead of a file,
// bit 3 without the byte tokens), bytes 1-2 vocab_size (uint16 LE), bytes 3-6 blob length L
// (uint32 LE, clamped), then L bytes of blob, then the text.
//   file mode: the blob is a llama2.c tokenizer file, read with that vocab_size. A seed: flags 0,
//     512, the size of stories260K/tok512.bin, the file itself, then some text.
//   pieces mode: <unk>, <s>, </s>, the 256 byte tokens unless bit 3, then the blob's pieces, each
//     a score byte (int8 / 4; 127 NaN, -128 -inf), a length byte (mod 8) and the bytes; so that
//     encode's merging is fuzzed without seeds, on vocabularies no file reader would accept.
#include "fuzz_input.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/io/tokenizer.hpp"

namespace {

using lowbit::io::Tokenizer;

using lowbit::fuzz::InputFile;
using lowbit::fuzz::require;

// llama2.c's encode (run.c), transcribed as tests/test_tokenizer.cpp has it: quadratic, so it is
// run on short texts only. Used only where encode succeeded, so every id it makes is in range.
std::vector<int> reference_encode(const Tokenizer& t, std::string_view text, bool bos, bool eos) {
  std::vector<int> tokens;
  if (bos) tokens.push_back(Tokenizer::bos_id);
  if (!text.empty()) tokens.push_back(t.lookup(" "));
  std::string codepoint;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if ((byte & 0xC0) != 0x80) codepoint.clear();
    codepoint += text[i];
    const bool continues =
        i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80;
    if (continues && codepoint.size() < 4) continue;
    const int id = t.lookup(codepoint);
    if (id >= 0) {
      tokens.push_back(id);
    } else {
      for (char b : codepoint)
        tokens.push_back(static_cast<unsigned char>(b) + Tokenizer::byte_fallback_offset);
    }
    codepoint.clear();
  }
  for (;;) {
    float best_score = -1e10f;
    int best_id = -1;
    std::size_t best_index = 0;
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
      const int id = t.lookup(t.piece(tokens[i]) + t.piece(tokens[i + 1]));
      if (id >= 0 && t.score(id) > best_score) {
        best_score = t.score(id);
        best_id = id;
        best_index = i;
      }
    }
    if (best_id < 0) break;
    tokens[best_index] = best_id;
    tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(best_index) + 1);
  }
  if (eos) tokens.push_back(Tokenizer::eos_id);
  return tokens;
}

Tokenizer from_pieces(std::string_view blob, bool byte_tokens) {
  std::vector<std::string> vocab = {"<unk>", "\n<s>\n", "\n</s>\n"};
  std::vector<float> scores(3, 0.0f);
  if (byte_tokens) {
    for (int b = 0; b < 256; ++b) {
      char piece[8];
      std::snprintf(piece, sizeof piece, "<0x%02X>", static_cast<unsigned>(b));
      vocab.emplace_back(piece);
      scores.push_back(0.0f);
    }
  }
  while (blob.size() >= 2) {
    const auto score_byte = static_cast<std::int8_t>(blob[0]);
    const std::size_t length =
        std::min<std::size_t>(static_cast<unsigned char>(blob[1]) % 8, blob.size() - 2);
    scores.push_back(score_byte == 127    ? std::numeric_limits<float>::quiet_NaN()
                     : score_byte == -128 ? -std::numeric_limits<float>::infinity()
                                          : static_cast<float>(score_byte) / 4.0f);
    vocab.emplace_back(blob.substr(2, length));
    blob.remove_prefix(2 + length);
  }
  return Tokenizer(std::move(vocab), std::move(scores));
}

std::uint32_t little_endian(const std::uint8_t* bytes, int count) {
  std::uint32_t value = 0;
  for (int i = count - 1; i >= 0; --i) value = value << 8 | bytes[i];
  return value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t header = 7;
  if (size < header) return 0;
  const std::uint8_t flags = data[0];
  const bool bos = flags & 1, eos = flags & 2, pieces_mode = flags & 4, byte_tokens = !(flags & 8);
  const int vocab_size = static_cast<int>(little_endian(data + 1, 2));
  const std::size_t blob_size = std::min<std::size_t>(little_endian(data + 3, 4), size - header);
  const std::uint8_t* blob = data + header;
  const std::string_view text(reinterpret_cast<const char*>(blob + blob_size),
                              size - header - blob_size);

  static InputFile input;
  Tokenizer t;
  try {
    t = pieces_mode ? from_pieces({reinterpret_cast<const char*>(blob), blob_size}, byte_tokens)
                    : lowbit::io::read_llama2c_tokenizer(input.write(blob, blob_size), vocab_size);
  } catch (const lowbit::error&) {
    return 0;
  }
  // What the reader accepts is a vocabulary that encodes any text: byte fallback and " ".
  if (!pieces_mode)
    require(t.vocab_size() == vocab_size && t.byte_fallback() && t.lookup(" ") >= 0);

  std::vector<int> tokens;
  try {
    tokens = t.encode(text, bos, eos);
  } catch (const lowbit::invalid_argument&) {
    require(pieces_mode);
    return 0;
  }
  for (const int token : tokens) {
    require(token >= 0 && token < t.vocab_size());
    (void)t.decode(tokens.front(), token);
  }
  require(tokens.size() <= text.size() + 3);  // BOS, the dummy prefix, a token per byte, EOS
  if (text.size() <= 256) require(tokens == reference_encode(t, text, bos, eos));
  return 0;
}
