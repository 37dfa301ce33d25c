#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "lowbit/algo/higgs.hpp"
#include "lowbit/error.hpp"
#include "lowbit/io/quantized_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quantized_matrix.hpp"

namespace fs = std::filesystem;
using namespace lowbit;
using namespace lowbit::io;

namespace {

using lowbit::test::TempDir;

Scheme make(ElementFormat e, int bits, Granularity g, ScalarFormat s,
            ZeroFormat z = ZeroFormat::code, PackOrder p = PackOrder::low_first) {
  Scheme scheme{e, bits, g, s, z, p};
  scheme.validate();
  return scheme;
}

std::vector<Scheme> many_schemes() {
  std::vector<Scheme> out;
  for (int bits = 2; bits <= 8; ++bits) {
    out.push_back(Scheme::symmetric_int(bits, Granularity::per_group(128)));
    out.push_back(Scheme::asymmetric_int(bits, Granularity::per_channel(), ScalarFormat::f32));
  }
  out.push_back(Scheme::symmetric_int(4, Granularity::per_tensor(), ScalarFormat::bf16));
  out.push_back(
      Scheme::asymmetric_int(3, Granularity::per_group(7), ScalarFormat::f16, ZeroFormat::f16));
  out.push_back(
      Scheme::asymmetric_int(4, Granularity::per_group(64), ScalarFormat::f16, ZeroFormat::bf16));
  out.push_back(
      Scheme::asymmetric_int(8, Granularity::per_tensor(), ScalarFormat::f32, ZeroFormat::f32));
  out.push_back(make(ElementFormat::int_unsigned, 4, Granularity::per_group(32), ScalarFormat::f16,
                     ZeroFormat::code, PackOrder::awq_interleaved));
  out.push_back(make(ElementFormat::fp4_e2m1, 4, Granularity::per_group(32), ScalarFormat::e8m0));
  out.push_back(make(ElementFormat::fp4_e2m1, 4, Granularity::per_group(16), ScalarFormat::e4m3));
  out.push_back(make(ElementFormat::fp8_e4m3, 8, Granularity::per_channel(), ScalarFormat::f32));
  out.push_back(make(ElementFormat::fp8_e5m2, 8, Granularity::per_tensor(), ScalarFormat::bf16));
  out.push_back(make(ElementFormat::nf4, 4, Granularity::per_group(64), ScalarFormat::f16));
  // Codebooks, a tensor scale and double-quantized scales.
  out.push_back(Scheme{.element = ElementFormat::codebook,
                       .bits = 3,
                       .granularity = Granularity::none(),
                       .codebook_granularity = Granularity::per_group(16),
                       .codebook_format = ScalarFormat::f32});
  out.push_back(Scheme{.element = ElementFormat::codebook,
                       .bits = 8,
                       .granularity = Granularity::per_group(8),
                       .scale_format = ScalarFormat::f16,
                       .vector_dim = 2,
                       .codebook_granularity = Granularity::per_tensor(),
                       .codebook_format = ScalarFormat::f16});
  out.push_back(Scheme{.element = ElementFormat::codebook,
                       .bits = 4,
                       .granularity = Granularity::per_channel(),
                       .scale_format = ScalarFormat::bf16,
                       .codebook_granularity = Granularity::per_channel(),
                       .codebook_format = ScalarFormat::bf16});
  out.push_back(Scheme{.element = ElementFormat::fp4_e2m1,
                       .bits = 4,
                       .granularity = Granularity::per_group(16),
                       .scale_format = ScalarFormat::e4m3,
                       .tensor_scale = true});
  out.push_back(Scheme{.element = ElementFormat::nf4,
                       .bits = 4,
                       .granularity = Granularity::per_group(8),
                       .scale_format = ScalarFormat::f32,
                       .double_quant_block = 4});
  for (const Scheme& scheme : out) scheme.validate();
  return out;
}

// A matrix of the given scheme with random codes, scales and zero points (no quantizer needed, so
// every element format is covered).
QuantizedMatrix random_matrix(const Scheme& scheme, std::size_t rows, std::size_t cols,
                              unsigned seed) {
  std::mt19937 rng(seed);
  QuantizedMatrix q(scheme, rows, cols);
  std::uniform_int_distribution<int> code(0, (1 << scheme.bits) - 1);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < scheme.codes_per_row(cols); ++c)
      q.set_code(r, c, static_cast<std::uint8_t>(code(rng)));
  std::uniform_real_distribution<float> unit(0.01f, 2.0f);
  std::uniform_int_distribution<int> exponent(-10, 5);
  for (std::size_t b = 0; b < q.codebook_grid().size(); ++b) {
    std::vector<float> book(q.codebook_values());
    for (float& v : book) v = unit(rng) - 1.0f;
    q.set_codebook(b, book);
  }
  if (scheme.tensor_scale) q.set_tensor_scale(unit(rng));
  if (scheme.double_quant_block > 0) {
    for (std::size_t i = 0; i < q.scale_grid().size(); ++i)
      q.set_double_quantized_scale(i, static_cast<std::uint8_t>(rng() % 256));
    for (float& a : q.scale_block_absmax()) a = unit(rng);
    q.set_scale_offset(unit(rng));
  }
  for (std::size_t i = 0; i < q.scale_grid().size() && scheme.double_quant_block == 0; ++i) {
    if (scheme.scale_format == ScalarFormat::e8m0)
      q.set_scale(i, std::ldexp(1.0f, exponent(rng)));
    else
      q.set_scale(i, unit(rng));
    if (scheme.has_zero_point()) {
      if (scheme.zero_format == ZeroFormat::code)
        q.set_zero(i, static_cast<float>(code(rng)));
      else
        q.set_zero(i, unit(rng) * 3.0f);
    }
  }
  return q;
}

std::vector<float> random_weights(std::size_t rows, std::size_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 0.05f);
  std::vector<float> w(rows * cols);
  for (auto& x : w) x = n(rng);
  return w;
}

void require_identical(const QuantizedMatrix& a, const QuantizedMatrix& b) {
  REQUIRE(a.scheme() == b.scheme());
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  const auto ca = a.packed_codes(), cb = b.packed_codes();
  CHECK(std::vector<std::uint32_t>(ca.begin(), ca.end()) ==
        std::vector<std::uint32_t>(cb.begin(), cb.end()));
  const auto sa = a.scale_bytes(), sb = b.scale_bytes();
  CHECK(std::vector<std::uint8_t>(sa.begin(), sa.end()) ==
        std::vector<std::uint8_t>(sb.begin(), sb.end()));
  const auto za = a.zero_bytes(), zb = b.zero_bytes();
  CHECK(std::vector<std::uint8_t>(za.begin(), za.end()) ==
        std::vector<std::uint8_t>(zb.begin(), zb.end()));
  const auto qa = a.zero_codes(), qb = b.zero_codes();
  CHECK(std::vector<std::uint32_t>(qa.begin(), qa.end()) ==
        std::vector<std::uint32_t>(qb.begin(), qb.end()));
  const auto ba = a.codebook_bytes(), bb = b.codebook_bytes();
  CHECK(std::vector<std::uint8_t>(ba.begin(), ba.end()) ==
        std::vector<std::uint8_t>(bb.begin(), bb.end()));
  const auto aa = a.scale_block_absmax(), ab = b.scale_block_absmax();
  CHECK(std::vector<float>(aa.begin(), aa.end()) == std::vector<float>(ab.begin(), ab.end()));
  CHECK(a.scale_offset() == b.scale_offset());
  CHECK(a.tensor_scale() == b.tensor_scale());
  const auto da = a.dequantize(), db = b.dequantize();
  REQUIRE(da.size() == db.size());
  CHECK((da.empty() || std::memcmp(da.data(), db.data(), da.size() * sizeof(float)) == 0));
}

void require_io_error(const std::function<void()>& f, std::initializer_list<std::string> parts) {
  try {
    f();
    FAIL("no io_error");
  } catch (const io_error& e) {
    const std::string what = e.what();
    INFO(what);
    for (const auto& part : parts) CHECK(what.find(part) != std::string::npos);
  }
}

// Writes the named matrices (plus one float tensor) into one file.
void write_file(const fs::path& p,
                const std::vector<std::pair<std::string, const QuantizedMatrix*>>& matrices) {
  std::vector<TensorLayout> layout{{"norm.weight", DType::F32, {3}}};
  std::map<std::string, std::string> metadata{{"note", "test"}};
  for (const auto& [name, q] : matrices) {
    for (auto& part : quantized_layout(name, q->scheme(), q->rows(), q->cols()))
      layout.push_back(part);
    add_quantization_metadata(metadata, name, q->scheme(), q->rows(), q->cols(),
                              q->input_rotation());
  }
  SafetensorsWriter writer(p, layout, metadata);
  const std::vector<float> norm{1.0f, 2.0f, 3.0f};
  writer.write("norm.weight", std::as_bytes(std::span<const float>(norm)));
  for (const auto& [name, q] : matrices) write_quantized(writer, name, *q);
  writer.finish();
}

}  // namespace

TEST_CASE("scheme JSON round trip", "[quantized_safetensors]") {
  CHECK(scheme_to_json(Scheme::asymmetric_int(4, Granularity::per_group(128))) ==
        R"({"element":"uint","bits":4,"granularity":"group","group_size":128,"scale_format":"f16",)"
        R"("zero_format":"code","pack_order":"low_first"})");
  CHECK(
      scheme_to_json(Scheme::symmetric_int(8, Granularity::per_channel(), ScalarFormat::f32)) ==
      R"({"element":"int","bits":8,"granularity":"channel","scale_format":"f32","zero_format":"code",)"
      R"("pack_order":"low_first"})");
  for (const Scheme& s : many_schemes()) {
    INFO(s.to_string() << " " << scheme_to_json(s));
    CHECK(scheme_from_json(scheme_to_json(s)) == s);
  }
  // Optional fields take their defaults; field order does not matter.
  CHECK(
      scheme_from_json(
          R"({"bits":4,"element":"int","granularity":"group","group_size":32,"scale_format":"f16"})") ==
      Scheme::symmetric_int(4, Granularity::per_group(32)));
}

TEST_CASE("scheme JSON errors name the bad field", "[quantized_safetensors]") {
  const auto check = [](const std::string& text, const std::string& field) {
    try {
      (void)scheme_from_json(text);
      FAIL("no invalid_argument for " << text);
    } catch (const lowbit::invalid_argument& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(field) != std::string::npos);
    }
  };
  check("not json", "not valid JSON");
  check("[1]", "not a JSON object");
  check(R"({"bits":4,"granularity":"tensor","scale_format":"f16"})", "\"element\"");
  check(R"({"element":"int5","bits":4,"granularity":"tensor","scale_format":"f16"})",
        "\"element\"");
  check(R"({"element":"int","bits":"4","granularity":"tensor","scale_format":"f16"})", "\"bits\"");
  check(R"({"element":"int","granularity":"tensor","scale_format":"f16"})", "\"bits\"");
  check(R"({"element":"int","bits":4,"granularity":"rows","scale_format":"f16"})",
        "\"granularity\"");
  check(R"({"element":"int","bits":4,"granularity":"group","scale_format":"f16"})",
        "\"group_size\"");
  check(R"({"element":"int","bits":4,"granularity":"group","group_size":0,"scale_format":"f16"})",
        "\"group_size\"");
  check(R"({"element":"int","bits":4,"granularity":"tensor","scale_format":"f64"})",
        "\"scale_format\"");
  check(
      R"({"element":"uint","bits":4,"granularity":"tensor","scale_format":"f16","zero_format":"int"})",
      "\"zero_format\"");
  check(
      R"({"element":"int","bits":4,"granularity":"tensor","scale_format":"f16","pack_order":"high_first"})",
      "\"pack_order\"");
  check(R"({"element":"int","bits":4,"granularity":"tensor","scale_format":"f16","colour":"red"})",
        "\"colour\"");
  // Well-formed JSON, but not a scheme that can exist.
  check(R"({"element":"int","bits":9,"granularity":"tensor","scale_format":"f16"})", "2 to 8 bits");
  check(
      R"({"element":"int","bits":3,"granularity":"tensor","scale_format":"f16","pack_order":"awq_interleaved"})",
      "AWQ");
}

TEST_CASE("quantized layout names and shapes", "[quantized_safetensors]") {
  const auto layout =
      quantized_layout("layers.0.attention.wq.weight",
                       Scheme::asymmetric_int(4, Granularity::per_group(32)), 10, 100);
  REQUIRE(layout.size() == 3);
  CHECK(layout[0].name == "layers.0.attention.wq.qweight");
  CHECK(layout[0].dtype == DType::U32);
  CHECK(layout[0].shape == std::vector<std::size_t>{10, 13});  // 100 * 4 bits = 12.5 words
  CHECK(layout[1].name == "layers.0.attention.wq.scales");
  CHECK(layout[1].dtype == DType::F16);
  CHECK(layout[1].shape == std::vector<std::size_t>{10, 4});  // 100 / 32, ragged
  CHECK(layout[2].name == "layers.0.attention.wq.qzeros");
  CHECK(layout[2].shape == std::vector<std::size_t>{10, 1});

  const auto sym = quantized_layout(
      "w", Scheme::symmetric_int(8, Granularity::per_tensor(), ScalarFormat::bf16), 3, 5);
  REQUIRE(sym.size() == 2);
  CHECK(sym[0].name == "w.qweight");
  CHECK(sym[1].dtype == DType::BF16);
  CHECK(sym[1].shape == std::vector<std::size_t>{1, 1});

  const auto mx = quantized_layout(
      "x.weight", make(ElementFormat::fp4_e2m1, 4, Granularity::per_group(32), ScalarFormat::e8m0),
      2, 64);
  CHECK(mx[1].dtype == DType::U8);
  const auto hqq = quantized_layout(
      "h.weight",
      Scheme::asymmetric_int(4, Granularity::per_group(64), ScalarFormat::f16, ZeroFormat::bf16), 2,
      64);
  REQUIRE(hqq.size() == 3);
  CHECK(hqq[2].name == "h.zeros");
  CHECK(hqq[2].dtype == DType::BF16);
}

TEST_CASE("quantized round trip is bit-exact for every scheme", "[quantized_safetensors]") {
  TempDir dir;
  const fs::path p = dir.path / "q.safetensors";
  std::vector<QuantizedMatrix> matrices;
  std::vector<std::pair<std::string, const QuantizedMatrix*>> named;
  unsigned seed = 1;
  for (const Scheme& s : many_schemes())
    matrices.push_back(random_matrix(s, 5, 77, seed++));  // 77: ragged groups
  // Quantizer output too: int sym/asym, code and f16 zeros, tensor/channel/group, AWQ order.
  const auto w = random_weights(9, 100, 99);
  const MatrixView<const float> view(w.data(), 9, 100);
  for (const Scheme& s :
       {Scheme::symmetric_int(4, Granularity::per_group(32)),
        Scheme::asymmetric_int(4, Granularity::per_group(32)),
        Scheme::asymmetric_int(3, Granularity::per_group(48), ScalarFormat::f16, ZeroFormat::f16),
        Scheme::symmetric_int(8, Granularity::per_channel(), ScalarFormat::bf16),
        Scheme::asymmetric_int(2, Granularity::per_tensor(), ScalarFormat::f32),
        make(ElementFormat::int_unsigned, 4, Granularity::per_group(32), ScalarFormat::f16,
             ZeroFormat::code, PackOrder::awq_interleaved)})
    matrices.push_back(quantize_linear(view, s));
  for (std::size_t i = 0; i < matrices.size(); ++i)
    named.emplace_back("layers." + std::to_string(i) + ".w.weight", &matrices[i]);
  write_file(p, named);

  const SafetensorsFile file(p);
  std::vector<std::string> expected;
  for (const auto& [name, q] : named) expected.push_back(name);
  std::sort(expected.begin(), expected.end());
  CHECK(quantized_names(file) == expected);
  CHECK(file.metadata().at("note") == "test");
  CHECK(file.to_float("norm.weight") == std::vector<float>{1.0f, 2.0f, 3.0f});
  for (const auto& [name, q] : named) {
    INFO(name << " " << q->scheme().to_string());
    require_identical(read_quantized(file, name), *q);
  }
}

TEST_CASE("quantized round trip of empty and one-element matrices", "[quantized_safetensors]") {
  TempDir dir;
  const fs::path p = dir.path / "q.safetensors";
  const QuantizedMatrix one =
      random_matrix(Scheme::asymmetric_int(4, Granularity::per_group(128)), 1, 1, 3);
  const QuantizedMatrix empty(Scheme::symmetric_int(4, Granularity::per_channel()), 0, 16);
  write_file(p, {{"one", &one}, {"empty.weight", &empty}});
  const SafetensorsFile file(p);
  require_identical(read_quantized(file, "one"), one);
  require_identical(read_quantized(file, "empty.weight"), empty);
}

TEST_CASE("read_quantized reports mismatches naming file and tensor", "[quantized_safetensors]") {
  TempDir dir;
  const fs::path p = dir.path / "bad.safetensors";
  const Scheme scheme = Scheme::asymmetric_int(4, Granularity::per_group(32));
  const QuantizedMatrix q = random_matrix(scheme, 4, 64, 7);
  std::map<std::string, std::string> metadata;
  add_quantization_metadata(metadata, "a.weight", scheme, 4, 64);
  const auto layout = quantized_layout("a.weight", scheme, 4, 64);
  const auto codes = std::as_bytes(q.packed_codes());
  const auto scales = std::as_bytes(q.scale_bytes());
  const auto zeros = std::as_bytes(q.zero_codes());

  SECTION("no metadata entry") {
    write_safetensors(p, {{"x", DType::F32, {0}, {}}}, metadata);
    require_io_error(
        [&] { (void)read_quantized(SafetensorsFile(p), "b.weight"); },
        {"bad.safetensors", "'b.weight'", "no \"lowbit.quantization\" metadata entry"});
  }
  SECTION("missing part") {
    write_safetensors(p,
                      {{layout[0].name, DType::U32, layout[0].shape, codes},
                       {layout[1].name, DType::F16, layout[1].shape, scales}},
                      metadata);
    require_io_error([&] { (void)read_quantized(SafetensorsFile(p), "a.weight"); },
                     {"bad.safetensors", "'a.weight'", "missing part 'a.qzeros'"});
  }
  SECTION("wrong dtype") {
    write_safetensors(p,
                      {{layout[0].name, DType::I32, layout[0].shape, codes},
                       {layout[1].name, DType::F16, layout[1].shape, scales},
                       {layout[2].name, DType::U32, layout[2].shape, zeros}},
                      metadata);
    require_io_error([&] { (void)read_quantized(SafetensorsFile(p), "a.weight"); },
                     {"bad.safetensors", "'a.qweight'", "dtype I32, expected U32"});
  }
  SECTION("wrong shape") {
    write_safetensors(p,
                      {{layout[0].name, DType::U32, {8, 4}, codes},
                       {layout[1].name, DType::F16, layout[1].shape, scales},
                       {layout[2].name, DType::U32, layout[2].shape, zeros}},
                      metadata);
    require_io_error([&] { (void)read_quantized(SafetensorsFile(p), "a.weight"); },
                     {"bad.safetensors", "'a.qweight'", "shape [8, 4], expected [4, 8]"});
  }
  SECTION("scale format disagrees with the dtype") {
    std::map<std::string, std::string> other;
    add_quantization_metadata(
        other, "a.weight",
        Scheme::asymmetric_int(4, Granularity::per_group(32), ScalarFormat::bf16), 4, 64);
    write_safetensors(p,
                      {{layout[0].name, DType::U32, layout[0].shape, codes},
                       {layout[1].name, DType::F16, layout[1].shape, scales},
                       {layout[2].name, DType::U32, layout[2].shape, zeros}},
                      other);
    require_io_error([&] { (void)read_quantized(SafetensorsFile(p), "a.weight"); },
                     {"'a.scales'", "expected BF16"});
  }
  SECTION("bad metadata JSON") {
    write_safetensors(p, {}, {{"lowbit.quantization", "{not json"}});
    const SafetensorsFile file(p);
    require_io_error([&] { (void)read_quantized(file, "a.weight"); },
                     {"bad.safetensors", "not a JSON object"});
    require_io_error([&] { (void)quantized_names(file); },
                     {"bad.safetensors", "not a JSON object"});
  }
  SECTION("bad scheme in the metadata") {
    write_safetensors(
        p, {},
        {{"lowbit.quantization", R"({"a.weight":{"scheme":{"element":"int"},"shape":[4,64]}})"}});
    require_io_error([&] { (void)read_quantized(SafetensorsFile(p), "a.weight"); },
                     {"bad.safetensors", "'a.weight'", "\"bits\""});
  }
  SECTION("bad shape in the metadata") {
    write_safetensors(p, {},
                      {{"lowbit.quantization", R"({"a.weight":{"scheme":{},"shape":[4]}})"}});
    require_io_error([&] { (void)read_quantized(SafetensorsFile(p), "a.weight"); },
                     {"'a.weight'", "[rows, cols]"});
  }
  SECTION("no quantization metadata at all") {
    write_safetensors(p, {}, {});
    CHECK(quantized_names(SafetensorsFile(p)).empty());
  }
}

TEST_CASE("write_quantized checks the declared layout", "[quantized_safetensors]") {
  TempDir dir;
  const fs::path p = dir.path / "q.safetensors";
  const QuantizedMatrix q =
      random_matrix(Scheme::symmetric_int(4, Granularity::per_group(32)), 2, 64, 1);
  const QuantizedMatrix other =
      random_matrix(Scheme::symmetric_int(4, Granularity::per_group(16)), 2, 64, 2);
  {
    SafetensorsWriter writer(p, quantized_layout("w", q.scheme(), 2, 64), {});
    CHECK_THROWS_AS(write_quantized(writer, "v", q), io_error);      // not the declared name
    CHECK_THROWS_AS(write_quantized(writer, "w", other), io_error);  // scales of another size
  }
  CHECK(fs::is_empty(dir.path));
}

TEST_CASE("HIGGS matrices and their input rotation round-trip through a file",
          "[quantized_safetensors]") {
  const TempDir dir;
  const auto w = random_weights(6, 128, 9);
  lowbit::HiggsOptions options;
  options.block = 64;
  options.seed = 11;
  const QuantizedMatrix q =
      lowbit::quantize_higgs(lowbit::MatrixView<const float>(w.data(), 6, 128), options);
  const fs::path file = dir.path / "higgs.safetensors";
  write_file(file, {{"layers.0.w.weight", &q}});
  const SafetensorsFile st(file);
  const QuantizedMatrix back = read_quantized(st, "layers.0.w.weight");
  require_identical(q, back);
  REQUIRE(back.input_rotation().has_value());
  CHECK(back.input_rotation()->size == 64);
  CHECK(back.input_rotation()->seed == 11);
  CHECK(back.input_rotation()->randomized);
  CHECK(back.dequantize_unrotated() == q.dequantize_unrotated());
}
