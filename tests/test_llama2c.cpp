#include "lowbit/io/llama2c.hpp"

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <cstdint>
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
