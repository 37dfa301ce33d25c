// The GGUF reader: metadata of every type, tensor infos and data, the real SmolLM2 file, and every
// malformed field refused with an io_error that names the file and says why. (Agreement with
// gguf-py, llama.cpp's Python library, is tests/python/check_gguf.py.)
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/io/gguf.hpp"
#include "support/gguf_builder.hpp"
#include "support/temp_dir.hpp"

#ifndef LOWBIT_DATA_DIR
#define LOWBIT_DATA_DIR "../shared/data"
#endif

namespace fs = std::filesystem;
using lowbit::io::GgufFile;
using lowbit::io::GgufValueType;
using lowbit::test::ByteWriter;
using lowbit::test::GgufBuilder;

namespace {

fs::path write_file(const lowbit::test::TempDir& dir, const std::string& bytes,
                    const std::string& name = "model.gguf") {
  return dir.write(name, std::vector<char>(bytes.begin(), bytes.end()));
}

std::string floats(std::initializer_list<float> values) {
  std::string out(values.size() * 4, '\0');
  std::memcpy(out.data(), values.begin(), out.size());
  return out;
}

// The error GgufFile gives for `bytes`, or "" when it opens them.
std::string open_error(const std::string& bytes) {
  lowbit::test::TempDir dir;
  const fs::path path = write_file(dir, bytes);
  try {
    GgufFile file(path);
  } catch (const lowbit::io_error& e) {
    const std::string message = e.what();
    CHECK(message.find(path.string()) != std::string::npos);  // every error names the file
    return message;
  }
  return "";
}

// A valid file: two metadata keys and one [2, 3] F32 tensor.
GgufBuilder small_model() {
  GgufBuilder gguf;
  gguf.key_string("general.architecture", "llama").key_u32("llama.block_count", 2);
  gguf.tensor("weight", {3, 2}, 0, 0).data(floats({1, 2, 3, 4, 5, 6}));
  return gguf;
}

}  // namespace

TEST_CASE("gguf: metadata of every value type, arrays of arrays included", "[gguf]") {
  GgufBuilder gguf;
  gguf.key("u8", GgufBuilder::uint8, ByteWriter().u8(200))
      .key("i8", GgufBuilder::int8, ByteWriter().u8(0x80))  // -128
      .key("u16", 2, ByteWriter().raw("\xff\xff", 2))
      .key("i16", 3, ByteWriter().raw("\x00\x80", 2))  // -32768
      .key_u32("u32", 4000000000u)
      .key("i32", GgufBuilder::int32, ByteWriter().u32(0xffffffffu))  // -1
      .key_f32("f32", 0.25f)
      .key("bool", GgufBuilder::boolean, ByteWriter().u8(1))
      .key_string("str", std::string("a\0b", 3))
      .key("u64", GgufBuilder::uint64, ByteWriter().u64(~0ull))
      .key("i64", GgufBuilder::int64, ByteWriter().u64(1ull << 63))
      .key("f64", GgufBuilder::float64, ByteWriter().raw("\x00\x00\x00\x00\x00\x00\xf0\x3f", 8))
      .key_strings("strings", {"x", "", "yz"})
      .key("ints", GgufBuilder::array,
           ByteWriter().u32(GgufBuilder::int32).u64(3).u32(7).u32(0xfffffff9u).u32(0))
      .key("nested", GgufBuilder::array,
           ByteWriter()
               .u32(GgufBuilder::array)
               .u64(2)
               .u32(GgufBuilder::uint8)
               .u64(2)
               .u8(1)
               .u8(2)
               .u32(GgufBuilder::string)
               .u64(1)
               .str("deep"))
      .key("empty", GgufBuilder::array, ByteWriter().u32(GgufBuilder::float32).u64(0));
  lowbit::test::TempDir dir;
  const GgufFile file(write_file(dir, gguf.build()));

  CHECK(file.version() == 3);
  CHECK(file.keys().size() == 16);
  CHECK(file.keys().front() == "u8");  // file order
  CHECK(file.get_int("u8") == 200);
  CHECK(file.get_int("i8") == -128);
  CHECK(file.get_int("u16") == 65535);
  CHECK(file.get_int("i16") == -32768);
  CHECK(file.get_uint("u32") == 4000000000u);
  CHECK(file.get_int("i32") == -1);
  CHECK(file.get_double("f32") == 0.25);
  CHECK(file.get_bool("bool"));
  CHECK(file.get_string("str") == std::string("a\0b", 3));
  CHECK(file.get_uint("u64") == ~0ull);
  CHECK(file.get_int("i64") == std::numeric_limits<std::int64_t>::min());
  CHECK(file.get_double("f64") == 1.0);
  CHECK(file.get_double("u32") == 4e9);  // a number accepts any integer
  CHECK(file.get_strings("strings") == std::vector<std::string>{"x", "", "yz"});
  CHECK(file.get_ints("ints") == std::vector<std::int64_t>{7, -7, 0});
  CHECK(file.get_doubles("ints") == std::vector<double>{7, -7, 0});
  CHECK(file.get_doubles("empty").empty());

  const auto& nested = file.value("nested");
  REQUIRE(nested.type() == GgufValueType::array);
  CHECK(nested.element_type() == GgufValueType::array);
  REQUIRE(nested.size() == 2);
  CHECK(nested.at(0).element_type() == GgufValueType::uint8);
  CHECK(nested.at(0).at(1).to_int() == 2);
  REQUIRE(nested.at(1).strings() != nullptr);
  CHECK(nested.at(1).strings()->front() == "deep");
  CHECK(nested.describe() == "[array x 2: [uint8 x 2: 1, 2], [string x 1: \"deep\"]]");
  CHECK_THROWS_AS(nested.at(2), lowbit::invalid_argument);

  SECTION("typed reads name the key and what it holds") {
    CHECK_THROWS_WITH(file.get_int("str"), Catch::Contains("metadata 'str'") &&
                                               Catch::Contains("(string), not an integer"));
    CHECK_THROWS_WITH(file.get_int("u64"), Catch::Contains("not an integer"));  // above INT64_MAX
    CHECK_THROWS_WITH(file.get_uint("i32"), Catch::Contains("not a non-negative integer"));
    CHECK_THROWS_WITH(file.get_string("strings"), Catch::Contains("array of string"));
    CHECK_THROWS_WITH(file.get_ints("strings"), Catch::Contains("not an array of integers"));
    CHECK_THROWS_WITH(file.get_bool("absent"), Catch::Contains("metadata 'absent' is missing"));
    CHECK(file.get_int("absent", 7) == 7);
    CHECK(file.get_string("absent", "dflt") == "dflt");
    CHECK_THROWS_AS(file.get_int("str", 7), lowbit::io_error);  // present, wrong type
  }
}

TEST_CASE("gguf: tensor infos, alignment and data", "[gguf]") {
  GgufBuilder gguf;
  gguf.alignment = 64;
  gguf.key_u32("general.alignment", 64);
  const std::uint16_t half_bits[4] = {lowbit::float16::from_float(1.5f).code,
                                      lowbit::float16::from_float(-2.0f).code, 0, 0x3c00};
  std::string f16(reinterpret_cast<const char*>(half_bits), 8);
  gguf.tensor("a", {2}, 0, 0).tensor("b", {2, 2}, 1, 64).tensor("c", {1, 1, 2}, 0, 128);
  std::string data = floats({1.5f, -3.0f});
  data.resize(64, '\0');
  data += f16;
  data.resize(128, '\0');
  data += floats({7.0f, 8.0f});
  gguf.data(data);
  lowbit::test::TempDir dir;
  GgufFile file(write_file(dir, gguf.build()));

  CHECK(file.alignment() == 64);
  CHECK(file.data_offset() % 64 == 0);
  REQUIRE(file.tensors().size() == 3);
  const auto& b = file.tensor("b");
  CHECK(b.dims == std::vector<std::uint64_t>{2, 2});
  CHECK(b.shape() == std::vector<std::size_t>{2, 2});
  CHECK(b.rows() == 2);
  CHECK(b.cols() == 2);
  CHECK(std::string(b.type_info().name) == "f16");
  CHECK(b.data.size() == 8);
  CHECK(file.to_float("a") == std::vector<float>{1.5f, -3.0f});
  CHECK(file.to_float("b") == std::vector<float>{1.5f, -2.0f, 0.0f, 1.0f});
  CHECK(file.tensor("c").shape() == std::vector<std::size_t>{2, 1, 1});
  CHECK(file.tensor("c").rows() == 2);
  const auto quantized = file.to_quantized("b");
  CHECK(quantized.rows() == 2);
  CHECK(quantized.cols() == 2);
  CHECK(quantized.dequantize() == file.to_float("b"));
  CHECK_THROWS_WITH(file.to_quantized("a"),
                    Catch::Contains("tensor 'a'") && Catch::Contains("not a block layout"));
  CHECK_THROWS_WITH(file.tensor("zzz"), Catch::Contains("tensor 'zzz'"));

  // The mapping moves with the object: the tensors' spans stay valid.
  GgufFile moved = std::move(file);
  CHECK(moved.to_float("c") == std::vector<float>{7.0f, 8.0f});
}

TEST_CASE("gguf: a malformed file is refused, naming the file and the reason", "[gguf]") {
  CHECK(open_error(small_model().build()).empty());

  CHECK_THAT(open_error("GGU"), Catch::Contains("not a GGUF file"));
  CHECK_THAT(open_error(std::string("\x7f"
                                    "ELF",
                                    4) +
                        std::string(40, '\0')),
             Catch::Contains("not a GGUF file"));
  CHECK_THAT(open_error("GGUF\x03"), Catch::Contains("too short for GGUF's 24-byte header"));
  auto versioned = [](std::uint32_t version) {
    GgufBuilder gguf = small_model();
    gguf.version = version;
    return open_error(gguf.build());
  };
  CHECK_THAT(versioned(1), Catch::Contains("version 1 (32-bit counts) is not supported"));
  CHECK_THAT(versioned(0x03000000), Catch::Contains("big-endian"));
  CHECK_THAT(versioned(4), Catch::Contains("GGUF version 4 is not supported"));
  CHECK(versioned(2).empty());

  SECTION("counts and lengths beyond the file") {
    GgufBuilder many_keys = small_model();
    many_keys.key_count_override = std::int64_t{1} << 60;
    CHECK_THAT(open_error(many_keys.build()),
               Catch::Contains("metadata count") && Catch::Contains("bytes left in the file"));
    GgufBuilder many_tensors = small_model();
    many_tensors.tensor_count_override = 1000;
    CHECK_THAT(open_error(many_tensors.build()), Catch::Contains("tensor count 1000"));
    GgufBuilder long_string;
    long_string.key("s", GgufBuilder::string, ByteWriter().u64(~0ull >> 1).raw("abc", 3));
    CHECK_THAT(open_error(long_string.build()), Catch::Contains("metadata 's' claims"));
    GgufBuilder long_array;
    long_array.key("a", GgufBuilder::array,
                   ByteWriter().u32(GgufBuilder::uint64).u64(1ull << 61).u64(1));
    CHECK_THAT(open_error(long_array.build()), Catch::Contains("the length of metadata 'a'"));
    GgufBuilder strings;  // each string needs at least its 8-byte length
    strings.key("a", GgufBuilder::array, ByteWriter().u32(GgufBuilder::string).u64(100).u64(0));
    CHECK_THAT(open_error(strings.build()), Catch::Contains("the length of metadata 'a'"));
  }

  SECTION("values") {
    GgufBuilder bad_type;
    bad_type.key("k", 13, ByteWriter().u32(0));
    CHECK_THAT(open_error(bad_type.build()), Catch::Contains("value type 13"));
    GgufBuilder bad_element;
    bad_element.key("k", GgufBuilder::array, ByteWriter().u32(99).u64(0));
    CHECK_THAT(open_error(bad_element.build()), Catch::Contains("value type 99"));
    GgufBuilder bad_bool;
    bad_bool.key("k", GgufBuilder::boolean, ByteWriter().u8(2));
    CHECK_THAT(open_error(bad_bool.build()), Catch::Contains("GGUF bools are 0 or 1"));
    GgufBuilder duplicate = small_model();
    duplicate.key_u32("llama.block_count", 3);
    CHECK_THAT(open_error(duplicate.build()), Catch::Contains("'llama.block_count' appears twice"));
    // Arrays nested deeper than max_array_depth: the parser's recursion stays bounded.
    ByteWriter deep;
    for (std::size_t i = 0; i < GgufFile::max_array_depth + 1; ++i)
      deep.u32(GgufBuilder::array).u64(1);
    deep.u32(GgufBuilder::uint8).u64(0);
    GgufBuilder nested;
    nested.key("k", GgufBuilder::array, deep);
    CHECK_THAT(open_error(nested.build()), Catch::Contains("nests arrays more than 8 deep"));
  }

  SECTION("alignment") {
    for (const std::uint32_t alignment : {0u, 3u, 48u}) {
      GgufBuilder gguf = small_model();
      gguf.key_u32("general.alignment", alignment);
      CHECK_THAT(open_error(gguf.build()), Catch::Contains("not a power of two"));
    }
    GgufBuilder wrong_type = small_model();
    wrong_type.key_string("general.alignment", "32");
    CHECK_THAT(open_error(wrong_type.build()), Catch::Contains("not a uint32"));
  }

  SECTION("tensor infos") {
    auto with_tensor = [](std::vector<std::uint64_t> dims, std::uint32_t type, std::uint64_t offset,
                          std::size_t data_bytes = 64) {
      GgufBuilder gguf;
      gguf.tensor("t", dims, type, offset).data(std::string(data_bytes, '\0'));
      return open_error(gguf.build());
    };
    CHECK(with_tensor({16}, 0, 0).empty());
    CHECK_THAT(with_tensor({}, 0, 0), Catch::Contains("0 dimensions"));
    CHECK_THAT(with_tensor({1, 1, 1, 1, 1}, 0, 0), Catch::Contains("5 dimensions"));
    CHECK_THAT(with_tensor({16, 0}, 0, 0), Catch::Contains("dimension 1 is 0"));
    CHECK_THAT(with_tensor({16}, 4, 0), Catch::Contains("ggml type 4 is not a type ggml defines"));
    CHECK_THAT(with_tensor({16}, 1000, 0), Catch::Contains("ggml type 1000"));
    CHECK_THAT(with_tensor({48}, 2, 0), Catch::Contains("not a whole number of q4_0 blocks of 32"));
    CHECK_THAT(with_tensor({16}, 0, 4), Catch::Contains("not a multiple of the alignment 32"));
    CHECK_THAT(with_tensor({17}, 0, 0), Catch::Contains("68 bytes of data at offset 0 run past"));
    CHECK_THAT(with_tensor({16}, 0, 64), Catch::Contains("run past the end of the data section"));
    CHECK_THAT(with_tensor({16}, 0, ~0ull << 5), Catch::Contains("run past the end"));
    // Dimensions whose product overflows: ggml's element count, and lowbit's byte size.
    CHECK_THAT(with_tensor({1ull << 32, 1ull << 32}, 0, 0), Catch::Contains("overflows"));
    CHECK_THAT(with_tensor({1ull << 62}, 0, 0), Catch::Contains("overflows"));
    CHECK_THAT(with_tensor({1ull << 40, 1ull << 20, 1ull << 4}, 0, 0),
               Catch::Contains("overflows"));

    GgufBuilder overlap;
    overlap.tensor("first", {16}, 0, 0).tensor("second", {8}, 0, 32).data(std::string(64, '\0'));
    CHECK_THAT(open_error(overlap.build()),
               Catch::Contains("tensor 'second'") && Catch::Contains("overlaps tensor 'first'"));
    GgufBuilder duplicate;
    duplicate.tensor("t", {8}, 0, 0).tensor("t", {8}, 0, 32).data(std::string(64, '\0'));
    CHECK_THAT(open_error(duplicate.build()), Catch::Contains("tensor name appears twice"));
    GgufBuilder unnamed;
    unnamed.tensor("", {8}, 0, 0).data(std::string(32, '\0'));
    CHECK_THAT(open_error(unnamed.build()), Catch::Contains("empty name"));
  }

  SECTION("every truncation of a valid file") {
    const std::string bytes = small_model().build();
    for (std::size_t length = 0; length < bytes.size(); ++length)
      CHECK_FALSE(open_error(bytes.substr(0, length)).empty());
  }
}

TEST_CASE("gguf: what is not a regular file is refused", "[gguf]") {
  lowbit::test::TempDir dir;
  CHECK_THROWS_WITH(GgufFile(dir.path), Catch::Contains("not a regular file (a directory)"));
  const fs::path fifo = dir.path / "fifo.gguf";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(GgufFile(fifo), Catch::Contains("not a regular file (a FIFO)"));
  CHECK_FALSE(lowbit::io::has_gguf_magic(fifo));
  CHECK_THROWS_WITH(GgufFile(dir.path / "absent.gguf"), Catch::Contains("cannot open"));
  CHECK(lowbit::io::has_gguf_magic(write_file(dir, small_model().build())));
  CHECK_FALSE(lowbit::io::has_gguf_magic(write_file(dir, "GGU", "short.gguf")));
}

TEST_CASE("gguf: the real SmolLM2-135M file", "[gguf][data]") {
  const fs::path path =
      fs::path(LOWBIT_DATA_DIR) / "smollm2-135m" / "SmolLM2-135M-Instruct.Q4_1.gguf";
  const GgufFile file(path);
  CHECK(file.version() == 3);
  CHECK(file.alignment() == 32);
  CHECK(file.keys().size() == 33);
  CHECK(file.tensors().size() == 272);
  CHECK(file.get_string("general.architecture") == "llama");
  CHECK(file.get_int("llama.block_count") == 30);
  CHECK(file.get_int("llama.embedding_length") == 576);
  CHECK(file.get_int("llama.feed_forward_length") == 1536);
  CHECK(file.get_int("llama.attention.head_count") == 9);
  CHECK(file.get_int("llama.attention.head_count_kv") == 3);
  CHECK(file.get_double("llama.rope.freq_base") == 100000.0);
  CHECK(file.get_string("tokenizer.ggml.model") == "gpt2");
  CHECK(file.get_string("tokenizer.ggml.pre") == "smollm");
  CHECK(file.get_strings("tokenizer.ggml.tokens").size() == 49152);
  CHECK(file.get_strings("tokenizer.ggml.merges").size() == 48900);
  CHECK_FALSE(file.get_bool("tokenizer.ggml.add_bos_token"));

  const auto& embedding = file.tensor("token_embd.weight");
  CHECK(std::string(embedding.type_info().name) == "q8_0");
  CHECK(embedding.shape() == std::vector<std::size_t>{49152, 576});
  CHECK(std::string(file.tensor("blk.0.attn_q.weight").type_info().name) == "q4_1");
  CHECK_FALSE(file.contains("output.weight"));  // tied embeddings
  const std::vector<float> norm = file.to_float("blk.0.attn_norm.weight");
  REQUIRE(norm.size() == 576);
  for (const float v : norm) CHECK(std::isfinite(v));
  const auto embedding_q8 = file.to_quantized("token_embd.weight");
  CHECK(embedding_q8.rows() == 49152);
  CHECK(embedding_q8.block_bytes().size() == embedding.data.size());
}
