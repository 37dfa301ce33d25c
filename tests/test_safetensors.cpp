#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/safetensors.hpp"

namespace fs = std::filesystem;
using namespace lowbit::io;

namespace {

using lowbit::test::TempDir;

std::vector<std::byte> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  std::transform(chars.begin(), chars.end(), out.begin(),
                 [](char c) { return static_cast<std::byte>(c); });
  return out;
}

void write_bytes(const fs::path& p, const std::vector<std::byte>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

// A file of an explicit header string and data section, for the malformed-input tests.
void write_raw(const fs::path& p, const std::string& header, std::size_t data_size,
               std::uint64_t length_field = std::numeric_limits<std::uint64_t>::max()) {
  const std::uint64_t n =
      length_field == std::numeric_limits<std::uint64_t>::max() ? header.size() : length_field;
  std::vector<std::byte> bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<std::byte>((n >> (8 * i)) & 0xFF));
  for (char c : header) bytes.push_back(static_cast<std::byte>(c));
  bytes.resize(bytes.size() + data_size, std::byte{0x11});
  write_bytes(p, bytes);
}

template <typename T>
std::span<const std::byte> as_bytes_of(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> out(n);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<std::byte>((i * 37 + seed * 11 + 5) & 0xFF);
  return out;
}

// Checks that opening `p` throws io_error whose message contains every one of `parts`.
void require_io_error(const fs::path& p, std::initializer_list<std::string> parts) {
  try {
    SafetensorsFile f(p);
    FAIL("no io_error for " << p);
  } catch (const lowbit::io_error& e) {
    const std::string what = e.what();
    for (const auto& part : parts) {
      INFO(what);
      CHECK(what.find(part) != std::string::npos);
    }
  }
}

const fs::path reference_file = fs::path(__FILE__).parent_path() / "data" / "reference.safetensors";

}  // namespace

TEST_CASE("safetensors dtype names and sizes", "[safetensors]") {
  CHECK(dtype_name(DType::BF16) == "BF16");
  CHECK(dtype_size(DType::F64) == 8);
  CHECK(dtype_size(DType::F8_E4M3) == 1);
  CHECK(dtype_from_name("F8_E5M2") == DType::F8_E5M2);
  CHECK(!dtype_from_name("F128").has_value());
  CHECK(!dtype_from_name("f32").has_value());
}

TEST_CASE("safetensors round trip is bit-exact for every dtype", "[safetensors]") {
  TempDir dir;
  const fs::path file = dir.path / "model.safetensors";
  const std::vector<DType> all{DType::F64,     DType::F32, DType::F16, DType::BF16, DType::F8_E4M3,
                               DType::F8_E5M2, DType::I64, DType::I32, DType::I16,  DType::I8,
                               DType::U64,     DType::U32, DType::U16, DType::U8,   DType::BOOL};
  std::vector<std::vector<std::byte>> storage;
  std::vector<TensorToWrite> tensors;
  for (std::size_t k = 0; k < all.size(); ++k) {
    storage.push_back(pattern(2 * 3 * dtype_size(all[k]), static_cast<unsigned>(k)));
    // Built with append: GCC 12 gives a false -Wrestrict on chained std::string operator+.
    std::string name = "t";
    name.append(std::to_string(k)).append(".").append(dtype_name(all[k]));
    tensors.push_back({name, all[k], {2, 3}, storage.back()});
  }
  tensors.push_back({"empty", DType::F32, {0, 4}, {}});
  const std::map<std::string, std::string> metadata{{"format", "pt"}, {"quant", "rtn \"4bit\"\n"}};
  write_safetensors(file, tensors, metadata);

  SafetensorsFile f(file);
  CHECK(f.metadata() == metadata);
  REQUIRE(f.size() == tensors.size());
  std::vector<std::string> expected_names;
  for (const auto& t : tensors) expected_names.push_back(t.name);
  CHECK(f.names() == expected_names);  // data order is the order given
  for (const auto& t : tensors) {
    const TensorInfo& info = f.info(t.name);
    CHECK(info.dtype == t.dtype);
    CHECK(info.shape == t.shape);
    REQUIRE(info.data.size() == t.data.size());
    CHECK(std::equal(info.data.begin(), info.data.end(), t.data.begin(), t.data.end()));
  }
  // No temporary is left beside the output.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);

  // Moving keeps the mapping (and the spans into it) valid.
  SafetensorsFile moved(std::move(f));
  CHECK(moved.info("empty").shape == std::vector<std::size_t>{0, 4});
  SafetensorsFile other(file);
  other = std::move(moved);
  CHECK(other.size() == tensors.size());
}

TEST_CASE("safetensors to_float converts each dtype", "[safetensors]") {
  TempDir dir;
  const fs::path file = dir.path / "f.safetensors";
  const std::vector<float> f32{1.5f, -2.0f};
  const std::vector<double> f64{0.25, -8.0};
  const std::vector<std::uint16_t> f16{0x3C00, 0xC000};   // 1, -2
  const std::vector<std::uint16_t> bf16{0x3F80, 0x4040};  // 1, 3
  const std::vector<std::uint8_t> e4m3{0x38, 0x7E};       // 1, 448
  const std::vector<std::uint8_t> e5m2{0x3C, 0xC0};       // 1, -2
  const std::vector<std::int8_t> i8{-128, 127};
  const std::vector<std::uint8_t> u8{0, 255};
  const std::vector<std::int32_t> i32{-70000, 5};
  const std::vector<std::uint8_t> b{0, 1};
  write_safetensors(file, {{"f32", DType::F32, {2}, as_bytes_of(f32)},
                           {"f64", DType::F64, {2}, as_bytes_of(f64)},
                           {"f16", DType::F16, {2}, as_bytes_of(f16)},
                           {"bf16", DType::BF16, {2}, as_bytes_of(bf16)},
                           {"e4m3", DType::F8_E4M3, {2}, as_bytes_of(e4m3)},
                           {"e5m2", DType::F8_E5M2, {2}, as_bytes_of(e5m2)},
                           {"i8", DType::I8, {2}, as_bytes_of(i8)},
                           {"u8", DType::U8, {2}, as_bytes_of(u8)},
                           {"i32", DType::I32, {2}, as_bytes_of(i32)},
                           {"bool", DType::BOOL, {2}, as_bytes_of(b)}});
  SafetensorsFile f(file);
  CHECK(f.to_float("f32") == std::vector<float>{1.5f, -2.0f});
  CHECK(f.to_float("f64") == std::vector<float>{0.25f, -8.0f});
  CHECK(f.to_float("f16") == std::vector<float>{1.0f, -2.0f});
  CHECK(f.to_float("bf16") == std::vector<float>{1.0f, 3.0f});
  CHECK(f.to_float("e4m3") == std::vector<float>{1.0f, 448.0f});
  CHECK(f.to_float("e5m2") == std::vector<float>{1.0f, -2.0f});
  CHECK(f.to_float("i8") == std::vector<float>{-128.0f, 127.0f});
  CHECK(f.to_float("u8") == std::vector<float>{0.0f, 255.0f});
  CHECK(f.to_float("i32") == std::vector<float>{-70000.0f, 5.0f});
  CHECK(f.to_float("bool") == std::vector<float>{0.0f, 1.0f});
  try {
    (void)f.to_float("missing.weight");
    FAIL("no io_error");
  } catch (const lowbit::io_error& e) {
    CHECK(std::string(e.what()).find("missing.weight") != std::string::npos);
    CHECK(std::string(e.what()).find("f.safetensors") != std::string::npos);
  }
}

TEST_CASE("safetensors reads the Python package's file and writes the same bytes",
          "[safetensors]") {
  SafetensorsFile f(reference_file);
  CHECK(f.metadata() == std::map<std::string, std::string>{{"format", "pt"}});
  CHECK(f.names() == std::vector<std::string>{"u64", "i64", "f64", "empty", "f32", "u32", "i32",
                                              "bf16", "f16", "u16", "i16", "f8_e4m3", "f8_e5m2",
                                              "i8", "scalar", "u8", "bool"});
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(f.to_float("f64") == std::vector<float>{1.5f, -0.25f});
  CHECK(f.to_float("i64") == std::vector<float>{-3.0f});
  CHECK(f.to_float("u64") == std::vector<float>{7.0f});
  CHECK(f.to_float("f32") == std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f});
  CHECK(f.info("f32").shape == std::vector<std::size_t>{2, 3});
  CHECK(f.to_float("i32") == std::vector<float>{-7.0f, 100000.0f});
  CHECK(f.to_float("u32") == std::vector<float>{4000000000.0f});
  CHECK(f.to_float("f16") == std::vector<float>{1.0f, -2.0f, 0.5f});
  CHECK(f.to_float("bf16") == std::vector<float>{1.0f, -2.0f, inf});
  CHECK(f.to_float("i16") == std::vector<float>{-300.0f, 300.0f});
  CHECK(f.to_float("u16") == std::vector<float>{65535.0f});
  CHECK(f.to_float("f8_e4m3") == std::vector<float>{1.0f, -2.0f, 448.0f});
  CHECK(f.to_float("f8_e5m2") == std::vector<float>{1.0f, -2.0f, inf});
  CHECK(f.to_float("i8") == std::vector<float>{-128.0f, -1.0f, 0.0f, 127.0f});
  CHECK(f.info("i8").shape == std::vector<std::size_t>{2, 2});
  CHECK(f.to_float("u8") == std::vector<float>{0.0f, 255.0f});
  CHECK(f.to_float("bool") == std::vector<float>{1.0f, 0.0f, 1.0f});
  CHECK(f.to_float("empty").empty());
  CHECK(f.info("empty").shape == std::vector<std::size_t>{0, 3});
  CHECK(f.to_float("scalar") == std::vector<float>{42.0f});
  CHECK(f.info("scalar").shape.empty());

  // Rewrite every tensor (in a scrambled order, then sorted as the reference does): same bytes.
  std::vector<TensorToWrite> tensors;
  for (const auto& name : f.names()) {
    const TensorInfo& info = f.info(name);
    tensors.push_back({info.name, info.dtype, info.shape, info.data});
  }
  std::reverse(tensors.begin(), tensors.end());
  order_like_reference(tensors);
  TempDir dir;
  write_safetensors(dir.path / "copy.safetensors", tensors, f.metadata());
  CHECK(read_bytes(dir.path / "copy.safetensors") == read_bytes(reference_file));
}

TEST_CASE("safetensors every truncation of a valid file throws io_error", "[safetensors]") {
  TempDir dir;
  const std::vector<float> a{1, 2, 3};
  const std::vector<std::uint16_t> c{7};
  write_safetensors(
      dir.path / "ok.safetensors",
      {{"a", DType::F32, {3}, as_bytes_of(a)}, {"c", DType::BF16, {1}, as_bytes_of(c)}},
      {{"k", "v"}});
  const auto bytes = read_bytes(dir.path / "ok.safetensors");
  const fs::path cut = dir.path / "cut.safetensors";
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    write_bytes(
        cut, std::vector<std::byte>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
    INFO("prefix of " << n << " bytes");
    CHECK_THROWS_AS(SafetensorsFile(cut), lowbit::io_error);
  }
}

TEST_CASE("safetensors rejects malformed files with a clear message", "[safetensors]") {
  TempDir dir;
  const fs::path p = dir.path / "bad.safetensors";
  const std::string good_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

  SECTION("missing file") {
    require_io_error(dir.path / "nope.safetensors", {"nope.safetensors", "cannot open"});
  }
  SECTION("header length huge") {
    write_raw(p, "{" + good_entry + "}", 8, std::uint64_t{1} << 62);
    require_io_error(p, {"bad.safetensors", "100 MB"});
  }
  SECTION("header length past the end") {
    write_raw(p, "{}", 0, 1000);
    require_io_error(p, {"bad.safetensors", "past the end"});
  }
  SECTION("header length too small") {
    write_raw(p, "{}", 8, 1);
    require_io_error(p, {"too small"});
  }
  SECTION("bad JSON") {
    write_raw(p, "{\"w\":", 0);
    require_io_error(p, {"bad.safetensors", "not valid JSON"});
  }
  SECTION("not an object") {
    write_raw(p, "[1,2]   ", 0);
    require_io_error(p, {"not a JSON object"});
  }
  SECTION("unknown dtype") {
    write_raw(p, R"({"w":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}})", 8);
    require_io_error(p, {"bad.safetensors", "'w'", "unknown dtype 'F128'"});
  }
  SECTION("negative shape") {
    write_raw(p, R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8);
    require_io_error(p, {"'w'", "non-negative"});
  }
  SECTION("shape/offset mismatch") {
    write_raw(p, R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 12);
    require_io_error(p, {"'w'", "need 12 bytes", "span 8"});
  }
  SECTION("reversed offsets") {
    write_raw(p, R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8);
    require_io_error(p, {"'w'", "reversed"});
  }
  SECTION("offsets past the end") {
    write_raw(p, "{" + good_entry + "}", 4);
    require_io_error(p, {"'w'", "past the 4-byte data section"});
  }
  SECTION("overlapping tensors") {
    write_raw(p,
              R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
              12);
    require_io_error(p, {"'b'", "overlaps tensor 'a'"});
  }
  SECTION("element-count overflow") {
    write_raw(p, R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
              8);
    require_io_error(p, {"'w'", "overflows"});
  }
  SECTION("bad metadata") {
    write_raw(p, R"({"__metadata__":{"n":1}})", 0);
    require_io_error(p, {"__metadata__", "not a string"});
  }
  SECTION("missing data_offsets") {
    write_raw(p, R"({"w":{"dtype":"F32","shape":[2]}})", 8);
    require_io_error(p, {"'w'", "data_offsets"});
  }
}

TEST_CASE("safetensors writer validates and leaves nothing behind on failure", "[safetensors]") {
  TempDir dir;
  const fs::path p = dir.path / "out.safetensors";
  const std::vector<float> a{1, 2, 3};
  CHECK_THROWS_AS(write_safetensors(p, {{"a", DType::F32, {2}, as_bytes_of(a)}}), lowbit::io_error);
  CHECK_THROWS_AS(write_safetensors(p, {{"a", DType::F32, {3}, as_bytes_of(a)},
                                        {"a", DType::F32, {3}, as_bytes_of(a)}}),
                  lowbit::io_error);
  CHECK_THROWS_AS(write_safetensors(p, {{"__metadata__", DType::F32, {3}, as_bytes_of(a)}}),
                  lowbit::io_error);
  CHECK_THROWS_AS(
      write_safetensors(p, {{"big", DType::F64, {std::size_t{1} << 32, std::size_t{1} << 32}, {}}}),
      lowbit::io_error);
  CHECK_THROWS_AS(write_safetensors(dir.path / "no_such_dir" / "x.safetensors", {}),
                  lowbit::io_error);
  CHECK(fs::is_empty(dir.path));
}

TEST_CASE("sharded safetensors checkpoints", "[safetensors]") {
  TempDir dir;
  const std::vector<float> a{1, 2};
  const std::vector<float> b{3, 4, 5};
  write_safetensors(dir.path / "model-00001-of-00002.safetensors",
                    {{"layers.0.w", DType::F32, {2}, as_bytes_of(a)}});
  write_safetensors(dir.path / "model-00002-of-00002.safetensors",
                    {{"layers.1.w", DType::F32, {3}, as_bytes_of(b)}});
  const fs::path index = dir.path / "model.safetensors.index.json";
  {
    std::ofstream out(index);
    out << R"({"metadata":{"total_size":20},"weight_map":{)"
        << R"("layers.0.w":"model-00001-of-00002.safetensors",)"
        << R"("layers.1.w":"model-00002-of-00002.safetensors"}})";
  }
  SECTION("round trip") {
    ShardedSafetensors s(index);
    CHECK(s.shards().size() == 2);
    CHECK(s.names() == std::vector<std::string>{"layers.0.w", "layers.1.w"});
    CHECK(s.to_float("layers.0.w") == a);
    CHECK(s.to_float("layers.1.w") == b);
    CHECK(s.info("layers.1.w").shape == std::vector<std::size_t>{3});
    CHECK_THROWS_AS(s.info("layers.2.w"), lowbit::io_error);
  }
  SECTION("missing shard names the index") {
    fs::remove(dir.path / "model-00002-of-00002.safetensors");
    try {
      ShardedSafetensors s(index);
      FAIL("no io_error");
    } catch (const lowbit::io_error& e) {
      const std::string what = e.what();
      CHECK(what.find("model.safetensors.index.json") != std::string::npos);
      CHECK(what.find("model-00002-of-00002.safetensors") != std::string::npos);
      CHECK(what.find("layers.1.w") != std::string::npos);
    }
  }
  SECTION("tensor not in its shard") {
    std::ofstream(index) << R"({"weight_map":{"layers.9.w":"model-00001-of-00002.safetensors"}})";
    CHECK_THROWS_WITH(ShardedSafetensors(index), Catch::Contains("model.safetensors.index.json") &&
                                                     Catch::Contains("layers.9.w"));
  }
  SECTION("escaping shard path and bad index") {
    std::ofstream(index) << R"({"weight_map":{"w":"../x.safetensors"}})";
    CHECK_THROWS_WITH(ShardedSafetensors(index), Catch::Contains("plain relative path"));
    std::ofstream(index) << R"({"weight_map":)";
    CHECK_THROWS_WITH(ShardedSafetensors(index), Catch::Contains("model.safetensors.index.json"));
  }
}

TEST_CASE("safetensors rejects holes in the data section", "[safetensors]") {
  TempDir dir;
  const fs::path p = dir.path / "holes.safetensors";
  SECTION("gap between tensors") {
    write_raw(p,
              R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
              R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
              12);
    require_io_error(p, {"holes.safetensors", "'b'", "hole in the data section", "[4, 8)"});
  }
  SECTION("gap before the first tensor") {
    write_raw(p, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8);
    require_io_error(p, {"'a'", "hole", "[0, 4)"});
  }
  SECTION("bytes after the last tensor") {
    write_raw(p, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8);
    require_io_error(p, {"holes.safetensors", "hole", "[4, 8)", "after the last tensor"});
  }
  SECTION("data but no tensors") {
    write_raw(p, "{}", 4);
    require_io_error(p, {"hole", "[0, 4)"});
  }
  SECTION("an empty tensor inside another one") {
    write_raw(p,
              R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
              R"("e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
              8);
    require_io_error(p, {"'e'", "inside tensor 'a'"});
  }
  SECTION("contiguous files with empty tensors are fine") {
    write_raw(p,
              R"({"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
              R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
              R"("z":{"dtype":"U8","shape":[0],"data_offsets":[4,4]}})",
              4);
    SafetensorsFile f(p);
    CHECK(f.names() == std::vector<std::string>{"e", "a", "z"});
  }
}

TEST_CASE("safetensors streaming writer", "[safetensors]") {
  TempDir dir;
  const fs::path p = dir.path / "stream.safetensors";
  const std::vector<float> a{1, 2, 3};
  const std::vector<std::uint16_t> b{7, 8};
  const std::vector<TensorLayout> layout{
      {"a", DType::F32, {3}}, {"b", DType::BF16, {1, 2}}, {"e", DType::U8, {0}}};

  SECTION("writes the same bytes as write_safetensors") {
    {
      SafetensorsWriter w(p, layout, {{"k", "v"}});
      CHECK(w.written() == 0);
      w.write("a", as_bytes_of(a));
      w.write("b", as_bytes_of(b));
      CHECK_FALSE(fs::exists(p));  // nothing appears under the name before finish()
      w.write("e", {});
      w.finish();
      CHECK_THROWS_AS(w.write("a", as_bytes_of(a)), lowbit::io_error);
      CHECK_THROWS_AS(w.finish(), lowbit::io_error);
    }
    const fs::path q = dir.path / "batch.safetensors";
    write_safetensors(q,
                      {{"a", DType::F32, {3}, as_bytes_of(a)},
                       {"b", DType::BF16, {1, 2}, as_bytes_of(b)},
                       {"e", DType::U8, {0}, {}}},
                      {{"k", "v"}});
    CHECK(read_bytes(p) == read_bytes(q));
    SafetensorsFile f(p);
    CHECK(f.to_float("a") == a);
  }
  SECTION("an unfinished writer leaves no file") {
    {
      SafetensorsWriter w(p, layout, {});
      w.write("a", as_bytes_of(a));
    }
    CHECK(fs::is_empty(dir.path));
    { SafetensorsWriter w(p, layout, {}); }
    CHECK(fs::is_empty(dir.path));
  }
  SECTION("an unfinished writer leaves an existing file alone") {
    write_safetensors(p, {{"old", DType::F32, {3}, as_bytes_of(a)}});
    const auto before = read_bytes(p);
    {
      SafetensorsWriter w(p, layout, {});
      w.write("a", as_bytes_of(a));
    }
    CHECK(read_bytes(p) == before);
  }
  SECTION("out-of-order, wrong-size and missing writes are io_errors") {
    {
      SafetensorsWriter w(p, layout, {});
      try {
        w.write("b", as_bytes_of(b));
        FAIL("no io_error");
      } catch (const lowbit::io_error& e) {
        const std::string what = e.what();
        CHECK(what.find("stream.safetensors") != std::string::npos);
        CHECK(what.find("out of order") != std::string::npos);
        CHECK(what.find("'a'") != std::string::npos);
      }
      CHECK_THROWS_AS(w.write("zzz", as_bytes_of(a)), lowbit::io_error);
      try {
        w.write("a", as_bytes_of(b));
        FAIL("no io_error");
      } catch (const lowbit::io_error& e) {
        CHECK(std::string(e.what()).find("need 12 bytes but 4 were given") != std::string::npos);
      }
      w.write("a", as_bytes_of(a));  // a failed check writes nothing: the right call still works
      try {
        w.finish();
        FAIL("no io_error");
      } catch (const lowbit::io_error& e) {
        CHECK(std::string(e.what()).find("2 declared tensor(s) not written, the next is 'b'") !=
              std::string::npos);
      }
      w.write("b", as_bytes_of(b));
      w.write("e", {});
      CHECK_THROWS_AS(w.write("e", {}), lowbit::io_error);  // everything has been written
      w.finish();
    }
    CHECK(SafetensorsFile(p).size() == 3);
  }
  SECTION("bad layouts are refused before anything is created") {
    CHECK_THROWS_AS(SafetensorsWriter(p, {{"a", DType::F32, {1}}, {"a", DType::F32, {1}}}, {}),
                    lowbit::io_error);
    CHECK_THROWS_AS(SafetensorsWriter(p, {{"", DType::F32, {1}}}, {}), lowbit::io_error);
    CHECK_THROWS_AS(SafetensorsWriter(p, {{"__metadata__", DType::F32, {1}}}, {}),
                    lowbit::io_error);
    CHECK_THROWS_AS(
        SafetensorsWriter(p, {{"x", DType::F64, {std::size_t{1} << 40, std::size_t{1} << 40}}}, {}),
        lowbit::io_error);
    CHECK_THROWS_AS(SafetensorsWriter(dir.path / "no_dir" / "x.safetensors", layout, {}),
                    lowbit::io_error);
    CHECK(fs::is_empty(dir.path));
  }
  SECTION("a moved-from writer is inert") {
    {
      SafetensorsWriter w(p, layout, {});
      SafetensorsWriter moved(std::move(w));
      moved.write("a", as_bytes_of(a));
    }
    CHECK(fs::is_empty(dir.path));
  }
}
