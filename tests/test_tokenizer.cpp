// Tokenizer::encode against a transcription of llama2.c's quadratic encode (the algorithm lowbit
// used before its heap-based one), on stories260K's vocabulary and on random vocabularies built
// to force ties, duplicates and unmergeable scores; and the vocabulary rule for byte fallback.
#include "lowbit/io/tokenizer.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/llama2c.hpp"

#ifndef LOWBIT_DATA_DIR
#define LOWBIT_DATA_DIR "../shared/data"
#endif

namespace {

using lowbit::io::Tokenizer;

const std::filesystem::path data_dir = LOWBIT_DATA_DIR;

const Tokenizer& tok512() {
  static const Tokenizer tokenizer =
      lowbit::io::read_llama2c_tokenizer(data_dir / "stories260K" / "tok512.bin", 512);
  return tokenizer;
}

const std::string& pride_and_prejudice() {
  static const std::string text = [] {
    std::ifstream in(data_dir / "text" / "pride-and-prejudice.txt", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }();
  return text;
}

// llama2.c's encode (run.c), transcribed: after every merge, rescan all adjacent pairs for the
// best score, the first found among equal ones. Quadratic; ids are trusted, so it is only run on
// vocabularies with byte fallback.
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

// Both encodes of `text`, with and without BOS and EOS, must agree.
void require_same_as_reference(const Tokenizer& t, const std::string& text) {
  INFO("text of " << text.size() << " bytes: " << text.substr(0, 200));
  for (const bool bos : {false, true}) {
    const bool eos = !bos;
    REQUIRE(t.encode(text, bos, eos) == reference_encode(t, text, bos, eos));
  }
}

std::string decode_all(const Tokenizer& t, const std::vector<int>& tokens) {
  std::string text;
  for (std::size_t i = 0; i < tokens.size(); ++i)
    text += t.decode(i == 0 ? Tokenizer::bos_id : tokens[i - 1], tokens[i]);
  return text;
}

// <unk>, <s>, </s> and the 256 byte tokens, as SentencePiece exports them for llama2.c.
std::vector<std::string> byte_fallback_base() {
  std::vector<std::string> vocab = {"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int b = 0; b < 256; ++b) {
    char piece[8];
    std::snprintf(piece, sizeof piece, "<0x%02X>", static_cast<unsigned>(b));
    vocab.emplace_back(piece);
  }
  return vocab;
}

std::string random_text(std::mt19937& rng, std::size_t length, const std::string& alphabet) {
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::string text;
  while (text.size() < length) text += alphabet[pick(rng)];
  return text;
}

// Random UTF-8: ASCII, Latin, CJK and emoji codepoints, and now and then a stray byte.
std::string random_utf8(std::mt19937& rng, std::size_t codepoints) {
  static const std::vector<std::string> samples = {"a",
                                                   "e",
                                                   "t",
                                                   "h",
                                                   "o",
                                                   "n",
                                                   ".",
                                                   ",",
                                                   "0",
                                                   "7",
                                                   "\n",
                                                   "\xC3\xA9",
                                                   "\xC3\xBC",
                                                   "\xE4\xB8\xAD",
                                                   "\xE6\x96\x87",
                                                   "\xE3\x81\x82",
                                                   "\xF0\x9F\x98\x80",
                                                   "\xE2\x98\x83",
                                                   "\x80",
                                                   "\xFF",
                                                   "\xC3",
                                                   "\xF0\x9F"};
  std::uniform_int_distribution<std::size_t> pick(0, samples.size() - 1);
  std::string text;
  for (std::size_t i = 0; i < codepoints; ++i) text += samples[pick(rng)];
  return text;
}

}  // namespace

TEST_CASE("encode matches llama2.c's quadratic encode on tok512", "[tokenizer]") {
  const Tokenizer& t = tok512();
  REQUIRE(t.byte_fallback());
  std::mt19937 rng(20261207);

  SECTION("edge cases") {
    for (const std::string& text : std::vector<std::string>{
             "", " ", "  ", "a", "\n", "Once upon a time", "\xE2\x98\x83", "\xF0\x9F\x98\x80",
             "\x80\x80\x80\x80\x80\x80", "\xC3", std::string(1, '\0'), "aaaaaaaaaaaaaaaaaaaaaaaaa",
             "1234567890123456789012345678901234567890", "\xE4\xB8\xAD\xE6\x96\x87"})
      require_same_as_reference(t, text);
  }
  SECTION("random bytes, most of them without a token") {
    for (int i = 0; i < 40; ++i) {
      std::string text;
      std::uniform_int_distribution<int> byte(0, 255);
      for (int j = 0; j < 1 + i * 5; ++j) text += static_cast<char>(byte(rng));
      require_same_as_reference(t, text);
    }
  }
  SECTION("random UTF-8") {
    for (int i = 0; i < 40; ++i) require_same_as_reference(t, random_utf8(rng, 1 + i * 4));
  }
  SECTION("random letters without spaces") {
    for (int i = 0; i < 20; ++i)
      require_same_as_reference(t, random_text(rng, 50 + i * 20, "etaoinshrdlu"));
  }
  SECTION("Pride and Prejudice: chunks as tokenize_corpus cuts them, and runs without spaces") {
    const std::string& book = pride_and_prejudice();
    REQUIRE(book.size() > 300000);
    // 40 kB from the middle, chunk by chunk (each chunk loses the space it was cut before).
    const std::string slice = book.substr(200000, 40000);
    std::size_t begin = 0;
    for (std::size_t i = 1; i <= slice.size(); ++i) {
      if (i < slice.size() && !(slice[i] == ' ' && slice[i - 1] != ' ')) continue;
      std::string chunk = slice.substr(begin, i - begin);
      if (begin > 0) chunk.erase(0, 1);
      require_same_as_reference(t, chunk);
      begin = i;
    }
    // Whole paragraphs with their spaces, and without them (merges across what were words).
    for (std::size_t offset : {1000u, 50000u, 123456u, 300000u}) {
      const std::string paragraph = book.substr(offset, 700);
      require_same_as_reference(t, paragraph);
      std::string squeezed;
      std::copy_if(paragraph.begin(), paragraph.end(), std::back_inserter(squeezed),
                   [](char c) { return c != ' '; });
      require_same_as_reference(t, squeezed);
    }
  }
}

TEST_CASE("encode matches the quadratic encode on random vocabularies", "[tokenizer]") {
  // Pieces over a small alphabet so that merges chain; scores from a handful of values so that
  // ties are everywhere; duplicates, an empty piece, pieces that merge with BOS's, and scores that
  // never merge (NaN, -inf, at or below llama2.c's -1e10 floor).
  std::mt19937 rng(7);
  const std::string alphabet = "ab c\xC3\xA9";
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> score_values = {-3.0f, -2.0f, -1.0f, -1.0f, 0.0f,   -0.0f,  1.0f,
                                           5.0f,  nan,   -inf,  inf,   -1e10f, -1e11f, -9.9e9f};
  std::uniform_int_distribution<std::size_t> pick_score(0, score_values.size() - 1);
  for (int trial = 0; trial < 60; ++trial) {
    std::vector<std::string> vocab = byte_fallback_base();
    std::vector<float> scores(vocab.size(), 0.0f);
    const auto add = [&](std::string piece) {
      vocab.push_back(std::move(piece));
      scores.push_back(score_values[pick_score(rng)]);
    };
    for (const char* single : {" ", "a", "b", "c", "\xC3\xA9"}) add(single);
    std::uniform_int_distribution<std::size_t> length(2, 6);
    for (int i = 0; i < 80; ++i) add(random_text(rng, length(rng), alphabet));
    add("");
    add("\n<s>\n ");
    add("\n<s>\n a");
    add(vocab[300]);  // a duplicate: the first one is found
    const Tokenizer t(vocab, scores);
    REQUIRE(t.byte_fallback());
    for (int i = 0; i < 10; ++i) {
      std::uniform_int_distribution<std::size_t> text_length(0, 120);
      require_same_as_reference(t, random_text(rng, text_length(rng), alphabet + "xyz\x80"));
    }
  }
}

TEST_CASE("encode handles 64 kB without spaces, and decodes back", "[tokenizer]") {
  // Too long for the quadratic reference (it took minutes); bench_tokenizer times it.
  const Tokenizer& t = tok512();
  std::string text;
  for (char c : pride_and_prejudice())
    if (c != ' ') text += c;
  text.resize(65536);
  const std::vector<int> tokens = t.encode(text, true, false);
  CHECK(tokens.size() < text.size() * 4 / 5);  // merges happened throughout
  CHECK(decode_all(t, std::vector<int>(tokens.begin() + 1, tokens.end())) == text);
  std::mt19937 rng(3);
  const std::string utf8 = random_utf8(rng, 20000);
  CHECK(decode_all(t, t.encode(utf8, false, false)) == utf8);
}

TEST_CASE("every token encode returns is in the vocabulary and decodes", "[tokenizer]") {
  const Tokenizer& t = tok512();
  std::mt19937 rng(11);
  for (int i = 0; i < 50; ++i) {
    std::string text;
    std::uniform_int_distribution<int> byte(0, 255);
    for (int j = 0; j < 200; ++j) text += static_cast<char>(byte(rng));
    const std::vector<int> tokens = t.encode(text, true, true);
    for (int token : tokens) REQUIRE((token >= 0 && token < t.vocab_size()));
    // Raw bytes (invalid UTF-8 included) come back exactly: every byte has its fallback token.
    CHECK(decode_all(t, std::vector<int>(tokens.begin() + 1, tokens.end() - 1)) == text);
  }
}

TEST_CASE("byte fallback needs tokens 3..258 to be the byte tokens", "[tokenizer]") {
  SECTION("a vocabulary smaller than 259 tokens refuses text that needs byte fallback") {
    // The overflow: "z" has no token, and 3 + 'z' = 125 is past this vocabulary.
    const Tokenizer t({"<unk>", "<s>", "</s>", " ", "a", "b", "ab", " ab"},
                      {0, 0, 0, -1, -1, -1, -0.5f, -0.2f});
    CHECK_FALSE(t.byte_fallback());
    CHECK(t.encode("ab", true, true) == std::vector<int>{1, 7, 2});
    CHECK(t.encode("abab", false, false) == std::vector<int>{7, 6});
    try {
      t.encode("abz", false, false);
      FAIL("no exception");
    } catch (const lowbit::invalid_argument& e) {
      CHECK_THAT(std::string(e.what()),
                 Catch::Contains("0x7A") && Catch::Contains("byte-fallback"));
    }
    CHECK_THROWS_AS(t.encode("\xE4\xB8\xAD", false, false), lowbit::invalid_argument);
  }
  SECTION("259 tokens with another piece where a byte token belongs") {
    std::vector<std::string> vocab = byte_fallback_base();
    vocab.push_back(" ");
    vocab.push_back("a");
    std::vector<float> scores(vocab.size(), 0.0f);
    CHECK(Tokenizer(vocab, scores).byte_fallback());
    vocab[3 + 0x41] = "<0x42>";
    const Tokenizer t(vocab, scores);
    CHECK_FALSE(t.byte_fallback());
    CHECK(t.encode("a", false, false) == std::vector<int>{259, 260});
    CHECK_THROWS_AS(t.encode("A", false, false), lowbit::invalid_argument);
  }
  SECTION("lower-case hex is a byte token too, as llama2.c's decode reads it") {
    std::vector<std::string> vocab = byte_fallback_base();
    vocab[3 + 0xAB] = "<0xab>";
    vocab.push_back(" ");
    const Tokenizer t(vocab, std::vector<float>(vocab.size(), 0.0f));
    CHECK(t.byte_fallback());
    CHECK(t.encode("\xAB", false, false) == std::vector<int>{259, 3 + 0xAB});
    CHECK(t.decode(259, 3 + 0xAB) == "\xAB");
  }
}

TEST_CASE("encode and decode refuse ids outside the vocabulary", "[tokenizer]") {
  const Tokenizer tiny({"<unk>", " "}, {0, 0});
  CHECK(tiny.encode("  ", false, false) == std::vector<int>{1, 1, 1});
  CHECK(tiny.encode("", true, false) == std::vector<int>{Tokenizer::bos_id});  // id 1 is in it
  CHECK(tiny.encode("", false, false).empty());
  CHECK_THROWS_AS(tiny.encode(" ", false, true), lowbit::invalid_argument);  // EOS is id 2
  CHECK_THROWS_AS(Tokenizer({"<unk>"}, {0}).encode("", true, false), lowbit::invalid_argument);
  CHECK_THROWS_AS(Tokenizer().encode("a", false, false), lowbit::invalid_argument);
  CHECK(Tokenizer().encode("", false, false).empty());
  CHECK_THROWS_AS(Tokenizer({"a"}, {}), lowbit::invalid_argument);

  const Tokenizer& t = tok512();
  for (const int bad : {-1, 512, 513, INT_MAX, INT_MIN}) {
    INFO("token " << bad);
    CHECK_THROWS_AS(t.decode(Tokenizer::bos_id, bad), lowbit::invalid_argument);
    CHECK_THROWS_AS(t.piece(bad), lowbit::invalid_argument);
    CHECK_THROWS_AS(t.score(bad), lowbit::invalid_argument);
    CHECK(t.decode(bad, 100) == t.decode(0, 100));  // the previous token is only compared
  }
}
