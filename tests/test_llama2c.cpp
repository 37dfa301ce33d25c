#include "lowbit/io/llama2c.hpp"

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/error.hpp"

#ifndef LOWBIT_DATA_DIR
#define LOWBIT_DATA_DIR "../shared/data"
#endif

namespace fs = std::filesystem;

namespace {

const fs::path data_dir = fs::path(LOWBIT_DATA_DIR) / "stories260K";

std::vector<char> read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

using lowbit::test::TempDir;

// The io_error's message names the file and contains `reason`.
void require_io_error(const fs::path& file, const std::string& reason) {
  try {
    lowbit::io::read_llama2c(file);
    FAIL("no exception for " << file);
  } catch (const lowbit::io_error& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(e.context().file == file.string());
    CHECK(message.find(file.string()) != std::string::npos);
    CHECK(message.find(reason) != std::string::npos);
  }
}

void set_int(std::vector<char>& bytes, std::size_t index, std::int32_t value) {
  std::memcpy(bytes.data() + index * 4, &value, 4);
}

}  // namespace

TEST_CASE("read_llama2c loads stories260K", "[llama2c]") {
  const auto checkpoint = lowbit::io::read_llama2c(data_dir / "stories260K.bin");
  const auto& c = checkpoint.config;
  CHECK(c.dim == 64);
  CHECK(c.hidden_dim == 172);
  CHECK(c.n_layers == 5);
  CHECK(c.n_heads == 8);
  CHECK(c.n_kv_heads == 4);
  CHECK(c.vocab_size == 512);
  CHECK(c.seq_len == 512);
  CHECK(c.shared_classifier);
  // Embedding, final norm, and 9 tensors per layer; no output.weight.
  REQUIRE(checkpoint.tensors.size() == 2 + 9 * 5);
  CHECK(checkpoint.tensors.front().name == "tok_embeddings.weight");
  CHECK(checkpoint.tensors.front().shape == std::vector<std::size_t>{512, 64});
  bool found_w2 = false;
  for (const auto& t : checkpoint.tensors) {
    CHECK(t.name != "output.weight");
    if (t.name == "layers.4.feed_forward.w2.weight") {
      found_w2 = true;
      CHECK(t.shape == std::vector<std::size_t>{64, 172});
      CHECK(t.data.size() == 64 * 172);
    }
  }
  CHECK(found_w2);
}

TEST_CASE("read_llama2c_tokenizer loads tok512", "[llama2c]") {
  const auto tokenizer = lowbit::io::read_llama2c_tokenizer(data_dir / "tok512.bin", 512);
  CHECK(tokenizer.vocab_size() == 512);
  CHECK(tokenizer.piece(3) == "<0x00>");
  CHECK(tokenizer.piece(258) == "<0xFF>");
  CHECK(tokenizer.lookup(" ") >= 0);
  CHECK_THROWS_AS(lowbit::io::read_llama2c_tokenizer(data_dir / "tok512.bin", 600),
                  lowbit::io_error);
  CHECK_THROWS_AS(lowbit::io::read_llama2c_tokenizer(data_dir / "tok512.bin", 500),
                  lowbit::io_error);
}

TEST_CASE("read_llama2c rejects corrupt checkpoints", "[llama2c]") {
  const std::vector<char> good = read_all(data_dir / "stories260K.bin");
  REQUIRE(good.size() > 1000);
  const TempDir dir;
  const auto truncated = [&](std::size_t size) {
    return std::vector<char>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(size));
  };

  SECTION("missing file") { require_io_error(dir.path / "absent.bin", "cannot"); }
  SECTION("empty file") { require_io_error(dir.write("empty.bin", {}), "inside the header"); }
  SECTION("truncated inside or after every header field") {
    for (std::size_t size = 1; size < 28; ++size) {
      INFO("header truncated to " << size << " bytes");
      require_io_error(dir.write("header.bin", truncated(size)), "inside the header");
    }
    require_io_error(dir.write("header_only.bin", truncated(28)),
                     "file ends inside tensor tok_embeddings.weight");
  }
  SECTION("truncated inside the embedding") {
    require_io_error(dir.write("emb.bin", truncated(28 + 100)),
                     "file ends inside tensor tok_embeddings.weight (needs 131072 bytes, has 100)");
  }
  SECTION("truncated inside a per-layer tensor") {
    // Header, embedding, 5 attention norms, 5 wq, 3 wk and 10 bytes of layers.3's wk.
    const std::size_t offset = 28 + 4 * (512 * 64 + 5 * 64 + 5 * 64 * 64 + 3 * 32 * 64);
    require_io_error(dir.write("wk.bin", truncated(offset + 10)),
                     "file ends inside tensor layers.3.attention.wk.weight (needs 8192 bytes, "
                     "has 10)");
  }
  SECTION("truncated inside the RoPE tables") {
    require_io_error(dir.write("rope.bin", truncated(good.size() - 4)),
                     "file ends inside the RoPE tables");
  }
  SECTION("trailing garbage") {
    std::vector<char> longer = good;
    longer.insert(longer.end(), {'j', 'u', 'n', 'k'});
    require_io_error(dir.write("trailing.bin", longer), "4 bytes after the last tensor");
  }
  SECTION("negative vocab_size wants an output.weight the file does not have") {
    std::vector<char> bytes = good;
    set_int(bytes, 5, -512);
    require_io_error(dir.write("unshared.bin", bytes), "file ends inside tensor output.weight");
  }
  SECTION("absurd header values") {
    const std::vector<std::pair<std::size_t, std::int32_t>> cases = {
        {0, 0}, {0, -64}, {0, 1 << 30}, {1, 0},         {2, 100000}, {3, 7},
        {4, 3}, {4, 16},  {5, 0},       {5, INT32_MIN}, {6, -1},     {6, 1 << 30}};
    for (const auto& [index, value] : cases) {
      std::vector<char> bytes = good;
      set_int(bytes, index, value);
      INFO("header field " << index << " = " << value);
      require_io_error(dir.write("absurd.bin", bytes), "implausible llama2.c header");
    }
  }
  SECTION("a plausible header that does not match the file's size") {
    std::vector<char> bytes = good;
    set_int(bytes, 1, 173);  // hidden_dim one wider: the FFN weights no longer fit exactly
    require_io_error(dir.write("hidden.bin", bytes), "file ends inside");
  }
  SECTION("non-finite weight") {
    std::vector<char> bytes = good;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(bytes.data() + 28 + 4 * 10, &nan, 4);
    require_io_error(dir.write("nan.bin", bytes), "NaN");
  }
}

TEST_CASE("read_llama2c_tokenizer rejects corrupt tokenizer files", "[llama2c]") {
  const std::vector<char> good = read_all(data_dir / "tok512.bin");
  const TempDir dir;
  const auto require_error = [&](const std::vector<char>& bytes, const std::string& name) {
    const fs::path file = dir.write(name, bytes);
    try {
      lowbit::io::read_llama2c_tokenizer(file, 512);
      FAIL("no exception for " << file);
    } catch (const lowbit::io_error& e) {
      CHECK(std::string(e.what()).find(file.string()) != std::string::npos);
    }
  };
  // Every prefix through the first few tokens (max_token_length, then score, length and bytes of
  // each token), and a spread of prefixes after that.
  for (std::size_t size = 0; size < 64; ++size) {
    INFO("truncated to " << size << " bytes");
    require_error(std::vector<char>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(size)),
                  "short.bin");
  }
  for (std::size_t size = 64; size < good.size(); size += 997) {
    INFO("truncated to " << size << " bytes");
    require_error(std::vector<char>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(size)),
                  "short.bin");
  }
  // A token length far beyond the file (the first token's length field is at byte 8).
  std::vector<char> huge = good;
  set_int(huge, 2, 1 << 30);
  require_error(huge, "huge.bin");
  std::vector<char> negative = good;
  set_int(negative, 2, -5);
  require_error(negative, "negative.bin");
}

namespace {

// A llama2.c tokenizer file: int32 max_token_length, then per token float32 score, int32 length,
// the bytes.
std::vector<char> tokenizer_file(const std::vector<std::string>& vocab,
                                 const std::vector<float>& scores, std::int32_t max_length = 16) {
  std::vector<char> bytes(4);
  std::memcpy(bytes.data(), &max_length, 4);
  for (std::size_t i = 0; i < vocab.size(); ++i) {
    const auto length = static_cast<std::int32_t>(vocab[i].size());
    char field[8];
    std::memcpy(field, &scores[i], 4);
    std::memcpy(field + 4, &length, 4);
    bytes.insert(bytes.end(), field, field + 8);
    bytes.insert(bytes.end(), vocab[i].begin(), vocab[i].end());
  }
  return bytes;
}

// <unk>, <s>, </s>, the 256 byte tokens, " " and a few letters: the smallest sound vocabulary.
std::vector<std::string> smallest_vocab() {
  std::vector<std::string> vocab = {"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int b = 0; b < 256; ++b) {
    char piece[8];
    std::snprintf(piece, sizeof piece, "<0x%02X>", static_cast<unsigned>(b));
    vocab.emplace_back(piece);
  }
  for (const char* piece : {" ", "a", "b", " a"}) vocab.emplace_back(piece);
  return vocab;
}

}  // namespace

TEST_CASE("read_llama2c_tokenizer checks the vocabulary and every size", "[llama2c]") {
  const TempDir dir;
  // The file is refused with an io_error that names it and says why.
  const auto require_refused = [&](const std::vector<char>& bytes, int vocab_size,
                                   const std::string& reason) {
    const fs::path file = dir.write("tok.bin", bytes);
    try {
      lowbit::io::read_llama2c_tokenizer(file, vocab_size);
      FAIL("no exception for vocab_size " << vocab_size << ", expected " << reason);
    } catch (const lowbit::io_error& e) {
      INFO(e.what());
      CHECK(e.context().file == file.string());
      CHECK(std::string(e.what()).find(reason) != std::string::npos);
    }
  };
  const std::vector<std::string> vocab = smallest_vocab();
  const int n = static_cast<int>(vocab.size());
  const std::vector<float> scores(vocab.size(), -1.0f);

  SECTION("the smallest sound vocabulary is read, and encodes any bytes") {
    const auto tokenizer =
        lowbit::io::read_llama2c_tokenizer(dir.write("tok.bin", tokenizer_file(vocab, scores)), n);
    CHECK(tokenizer.byte_fallback());
    CHECK(tokenizer.encode("ab\xFF", true, false) == std::vector<int>{1, n - 1, n - 2, 3 + 0xFF});
  }
  SECTION("fewer than 259 tokens: byte fallback would index past them (the issue's overflow)") {
    const std::vector<std::string> small = {"<unk>", "<s>", "</s>", " ", "a", "b"};
    require_refused(tokenizer_file(small, std::vector<float>(small.size(), 0.0f)), 6,
                    "the vocabulary has 6 tokens; llama2.c's byte fallback needs at least 259");
  }
  SECTION("another piece where a byte token belongs") {
    std::vector<std::string> wrong = vocab;
    wrong[3 + 0x41] = "A";
    require_refused(tokenizer_file(wrong, scores), n,
                    "token 68 is \"A\", not the byte-fallback token <0x41>");
  }
  SECTION("no \" \" token for the dummy prefix") {
    std::vector<std::string> no_space = vocab;
    no_space[259] = "c";
    require_refused(tokenizer_file(no_space, scores), n, "no \" \" token");
  }
  SECTION("a score that is not finite") {
    for (const float bad :
         {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
      std::vector<float> bad_scores = scores;
      bad_scores[200] = bad;
      require_refused(tokenizer_file(vocab, bad_scores), n,
                      "token 200 has a NaN or infinite score");
    }
  }
  SECTION("a vocab_size the file cannot hold is refused before anything is allocated") {
    const std::vector<char> bytes = tokenizer_file(vocab, scores);
    for (const int huge : {n + 1000, 1 << 30, INT_MAX})
      require_refused(bytes, huge, "cannot hold " + std::to_string(huge) + " tokens");
    require_refused(bytes, n + 1, "file ends inside token 263");
    require_refused(bytes, n - 1, "10 bytes after token 261");  // the last token, " a"
    require_refused({'\x10', 0}, 1, "file ends inside the header");
    CHECK_THROWS_AS(lowbit::io::read_llama2c_tokenizer(dir.write("tok.bin", bytes), 0),
                    lowbit::invalid_argument);
    CHECK_THROWS_AS(lowbit::io::read_llama2c_tokenizer(dir.write("tok.bin", bytes), -5),
                    lowbit::invalid_argument);
  }
  SECTION("token lengths: negative, past max_token_length, past the end of the file") {
    std::vector<char> bytes = tokenizer_file(vocab, scores, 8);
    // Token 0's length field is at byte 8.
    for (const std::int32_t length : {-1, INT32_MIN, 9, INT32_MAX}) {
      set_int(bytes, 2, length);
      require_refused(bytes, n,
                      "token 0 has length " + std::to_string(length) + ", outside [0, 8]");
    }
    std::vector<char> short_file = tokenizer_file({"<unk>"}, {0.0f}, 1 << 16);
    set_int(short_file, 2, 1 << 16);
    require_refused(short_file, 1, "file ends inside token 0 (needs 65536 bytes, has 5)");
  }
  SECTION("max_token_length") {
    for (const std::int32_t bad : {0, -1, (1 << 16) + 1, INT32_MAX}) {
      std::vector<char> bytes = tokenizer_file(vocab, scores);
      set_int(bytes, 0, bad);
      require_refused(bytes, n, "implausible max_token_length " + std::to_string(bad));
    }
  }
  SECTION("a directory") {
    try {
      lowbit::io::read_llama2c_tokenizer(dir.path, n);
      FAIL("no exception");
    } catch (const lowbit::io_error& e) {
      CHECK(e.context().file == dir.path.string());
    }
  }
}
