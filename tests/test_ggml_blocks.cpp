#include <catch2/catch.hpp>

#include "support/backend_conformance.hpp"
#include "support/random_data.hpp"
#include "support/random_ggml_blocks.hpp"
#include "support/temp_dir.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/format/ggml_blocks.hpp"
#include "lowbit/io/quantized_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/kernels/gemm.hpp"
#include "lowbit/quant/ggml.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

using namespace lowbit;
using ggml::block_q4_0;
using ggml::block_q4_k;
using ggml::block_q8_0;

namespace {

constexpr std::array<GgmlType, 3> all_types{GgmlType::q4_0, GgmlType::q8_0, GgmlType::q4_k};

std::vector<std::uint8_t> bytes_of(const QuantizedMatrix& q) {
  return {q.block_bytes().begin(), q.block_bytes().end()};
}

std::uint32_t bits_of(float x) { return std::bit_cast<std::uint32_t>(x); }

template <class F>
void require_error_mentioning(F&& f, const std::string& part) {
  try {
    f();
    FAIL("no exception");
  } catch (const error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find(part) != std::string::npos);
  }
}

// The 6-bit scales and mins of a Q4_K block packed as ggml's get_scale_min_k4 reads them, written
// out plainly.
std::array<std::uint8_t, 12> pack_scales_mins(const std::array<int, 8>& sc,
                                              const std::array<int, 8>& m) {
  std::array<std::uint8_t, 12> out{};
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<std::uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<std::uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<std::uint8_t>((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
  return out;
}

}  // namespace

TEST_CASE("ggml blocks have ggml's sizes and type numbers", "[ggml]") {
  STATIC_REQUIRE(sizeof(block_q4_0) == 18);
  STATIC_REQUIRE(sizeof(block_q8_0) == 34);
  STATIC_REQUIRE(sizeof(block_q4_k) == 144);
  CHECK(static_cast<int>(GgmlType::q4_0) == 2);
  CHECK(static_cast<int>(GgmlType::q8_0) == 8);
  CHECK(static_cast<int>(GgmlType::q4_k) == 12);
  CHECK(ggml::block_weights(GgmlType::q4_0) == 32);
  CHECK(ggml::block_weights(GgmlType::q8_0) == 32);
  CHECK(ggml::block_weights(GgmlType::q4_k) == 256);
  CHECK(ggml::block_bytes(GgmlType::q4_k) == 144);
  CHECK(std::string(to_string(GgmlType::q4_k)) == "q4_K");
}

TEST_CASE("ggml schemes: fixed fields, names, bits per weight, equality", "[ggml][scheme]") {
  const Scheme q4_0 = Scheme::ggml_blocks(GgmlType::q4_0);
  const Scheme q8_0 = Scheme::ggml_blocks(GgmlType::q8_0);
  const Scheme q4_k = Scheme::ggml_blocks(GgmlType::q4_k);
  CHECK(q4_0.to_string() == "ggml_q4_0");
  CHECK(q8_0.to_string() == "ggml_q8_0");
  CHECK(q4_k.to_string() == "ggml_q4_k");
  CHECK(ggml_scheme(GgmlType::q8_0) == q8_0);
  for (const Scheme& s : {q4_0, q8_0, q4_k}) {
    INFO(s.to_string());
    CHECK_NOTHROW(s.validate());
    CHECK(s.has_block_layout());
    // Nothing is stored outside the blocks: no scale grid, no zero points, not lowbit's integers.
    CHECK_FALSE(s.is_integer());
    CHECK_FALSE(s.has_scales());
    CHECK_FALSE(s.has_zero_point());
    CHECK(s.scale_grid(8, 256).size() == 0);
  }
  CHECK(q4_0.bits_per_weight(4096, 4096) == 4.5);
  CHECK(q8_0.bits_per_weight(4096, 4096) == 8.5);
  CHECK(q4_k.bits_per_weight(4096, 4096) == 4.5);
  CHECK(q4_0.bits_per_weight(3, 32) == 4.5);
  CHECK(QuantizedMatrix(q4_k, 2, 512).bits_per_weight() == 4.5);
  CHECK(QuantizedMatrix(q8_0, 3, 64).storage_bytes() == 3 * 2 * 34);

  CHECK(q4_0 != q8_0);
  CHECK(q4_0 != q4_k);
  CHECK(q4_0 != Scheme::asymmetric_int(4, Granularity::per_group(32)));
  CHECK(q8_0 != Scheme::symmetric_int(8, Granularity::per_group(32)));
  Scheme copy = q4_k;
  CHECK(copy == q4_k);

  // Every other field is fixed by the layout.
  const auto refuses = [](Scheme s) {
    require_error_mentioning([&] { s.validate(); }, "fixes every other field");
    CHECK_THROWS_AS(QuantizedMatrix(s, 1, 256), invalid_argument);
  };
  Scheme s = q4_0;
  s.bits = 8;
  refuses(s);
  s = q8_0;
  s.granularity = Granularity::per_group(32);
  refuses(s);
  s = q4_k;
  s.scale_format = ScalarFormat::bf16;
  refuses(s);
  s = q4_0;
  s.pack_order = PackOrder::awq_interleaved;
  refuses(s);

  // Existing schemes are untouched by the new field.
  CHECK_FALSE(Scheme{}.ggml_type.has_value());
  CHECK_FALSE(Scheme::symmetric_int(4, Granularity::per_group(32)).has_block_layout());
  CHECK(Scheme::symmetric_int(4, Granularity::per_group(32)).is_integer());
  CHECK(Scheme::asymmetric_int(4, Granularity::per_group(128)).has_zero_point());
  CHECK(Scheme::asymmetric_int(4, Granularity::per_group(128)).to_string() ==
        "uint4 asym g128 scale=f16 zero=code");
}

TEST_CASE("ggml scheme JSON round trip", "[ggml][quantized_safetensors]") {
  for (GgmlType type : all_types) {
    const Scheme s = Scheme::ggml_blocks(type);
    const std::string json = io::scheme_to_json(s);
    INFO(json);
    CHECK(json.find(std::string("\"block_layout\":\"").append(ggml_traits(type).layout_name)) !=
          std::string::npos);
    CHECK(io::scheme_from_json(json) == s);
  }
  CHECK(io::scheme_to_json(Scheme::ggml_blocks(GgmlType::q4_0)) ==
        R"({"element":"uint","bits":4,"granularity":"none","scale_format":"f16",)"
        R"("zero_format":"code","pack_order":"low_first","block_layout":"ggml_q4_0"})");
  // Other schemes do not write the field, and "none" reads as it.
  const Scheme plain = Scheme::asymmetric_int(4, Granularity::per_group(128));
  CHECK(io::scheme_to_json(plain).find("block_layout") == std::string::npos);
  std::string with_none = io::scheme_to_json(plain);
  with_none.insert(with_none.size() - 1, R"(,"block_layout":"none")");
  CHECK(io::scheme_from_json(with_none) == plain);
  // A block layout with other fields changed, or an unknown one, is refused.
  require_error_mentioning(
      [] {
        (void)io::scheme_from_json(
            R"({"element":"uint","bits":8,"granularity":"none","scale_format":"f16",)"
            R"("block_layout":"ggml_q4_0"})");
      },
      "fixes every other field");
  require_error_mentioning(
      [] {
        (void)io::scheme_from_json(
            R"({"element":"uint","bits":4,"granularity":"none","scale_format":"f16",)"
            R"("block_layout":"ggml_q9_9"})");
      },
      "block_layout");
}

TEST_CASE("ggml matrices round trip through safetensors", "[ggml][quantized_safetensors]") {
  test::TempDir dir;
  const auto path = dir.path / "ggml.safetensors";
  const std::vector<float> w = test::gaussian(4 * 512, 11);
  const MatrixView<const float> view(w.data(), 4, 512);
  std::vector<QuantizedMatrix> matrices;
  for (GgmlType type : all_types) matrices.push_back(quantize_ggml(view, type));
  const std::vector<std::string> names{"a.weight", "b.weight", "c.weight"};

  std::vector<io::TensorLayout> layout;
  std::map<std::string, std::string> metadata;
  for (std::size_t i = 0; i < matrices.size(); ++i) {
    const auto parts = io::quantized_layout(names[i], matrices[i].scheme(), 4, 512);
    REQUIRE(parts.size() == 1);  // the blocks are the only part
    CHECK(parts[0].dtype == io::DType::U8);
    CHECK(parts[0].shape == std::vector<std::size_t>{4, matrices[i].bytes_per_row()});
    layout.insert(layout.end(), parts.begin(), parts.end());
    io::add_quantization_metadata(metadata, names[i], matrices[i].scheme(), 4, 512);
  }
  {
    io::SafetensorsWriter writer(path, layout, metadata);
    for (std::size_t i = 0; i < matrices.size(); ++i)
      io::write_quantized(writer, names[i], matrices[i]);
    writer.finish();
  }
  const io::SafetensorsFile file(path);
  for (std::size_t i = 0; i < matrices.size(); ++i) {
    const QuantizedMatrix back = io::read_quantized(file, names[i]);
    CHECK(back.scheme() == matrices[i].scheme());
    CHECK(back.rows() == 4);
    CHECK(back.cols() == 512);
    CHECK(bytes_of(back) == bytes_of(matrices[i]));
    CHECK(back.dequantize() == matrices[i].dequantize());
  }
  CHECK_THROWS_AS(io::quantized_layout("x", Scheme::ggml_blocks(GgmlType::q4_k), 2, 300),
                  invalid_argument);
}

TEST_CASE("Q4_0 known answer", "[ggml][q4_0]") {
  // x = -16..15: max is -16 (the first largest |x|), d = 2, id = 0.5, q = trunc(x / 2 + 8.5).
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[static_cast<std::size_t>(i)] = static_cast<float>(i - 16);
  const QuantizedMatrix q = quantize_ggml(MatrixView<const float>(x.data(), 1, 32), GgmlType::q4_0);
  // The bytes gguf-py 0.19.0 gives (gguf.quants.quantize(x, Q4_0)).
  const std::vector<std::uint8_t> expected{0x00, 0x40, 0x80, 0x91, 0x91, 0xa2, 0xa2, 0xb3, 0xb3,
                                           0xc4, 0xc4, 0xd5, 0xd5, 0xe6, 0xe6, 0xf7, 0xf7, 0xf8};
  CHECK(bytes_of(q) == expected);
  const std::vector<float> y = q.dequantize();
  for (std::size_t i = 0; i < 32; ++i) {
    INFO(i);
    // (q - 8) * 2 with q = floor((i + 1) / 2), the top code clamped to 15
    const float want = (static_cast<float>(std::min<std::size_t>((i + 1) / 2, 15)) - 8.0f) * 2.0f;
    CHECK(y[i] == want);
  }
}

TEST_CASE("Q4_0 takes the first value of largest magnitude, with its sign", "[ggml][q4_0]") {
  std::vector<float> x(32, 0.5f);
  x[3] = -2.0f;
  x[7] = 2.0f;
  QuantizedMatrix q = quantize_ggml(MatrixView<const float>(x.data(), 1, 32), GgmlType::q4_0);
  const block_q4_0& first = q.row_blocks<block_q4_0>(0)[0];
  CHECK(ggml::fp16_to_float(first.d) == 0.25f);  // -2 / -8
  CHECK((first.qs[3] & 0xF) == 0);               // -2 * 4 + 8.5 -> 0
  CHECK((first.qs[7] & 0xF) == 15);              // 2 * 4 + 8.5 = 16.5 -> 16, clamped to 15
  std::swap(x[3], x[7]);
  q = quantize_ggml(MatrixView<const float>(x.data(), 1, 32), GgmlType::q4_0);
  const block_q4_0& second = q.row_blocks<block_q4_0>(0)[0];
  CHECK(ggml::fp16_to_float(second.d) == -0.25f);  // 2 / -8: the first one again maps to code 0
  CHECK((second.qs[3] & 0xF) == 0);
  CHECK((second.qs[7] & 0xF) == 15);
}

TEST_CASE("Q8_0 known answer: halves round away from zero", "[ggml][q8_0]") {
  std::vector<float> x(32, 0.0f);
  const std::vector<float> head{127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 1.5f, -126.5f, 3.49f};
  std::copy(head.begin(), head.end(), x.begin());
  const QuantizedMatrix q = quantize_ggml(MatrixView<const float>(x.data(), 1, 32), GgmlType::q8_0);
  // d = 127 / 127 = 1 (fp16 0x3c00); the bytes gguf-py 0.19.0 gives.
  std::vector<std::uint8_t> expected(34, 0);
  const std::vector<std::uint8_t> head_bytes{0x00, 0x3c, 0x7f, 0x03, 0xfd,
                                             0x01, 0xff, 0x02, 0x81, 0x03};
  std::copy(head_bytes.begin(), head_bytes.end(), expected.begin());
  CHECK(bytes_of(q) == expected);
  const std::vector<float> y = q.dequantize();
  CHECK(std::vector<float>(y.begin(), y.begin() + 8) ==
        std::vector<float>{127, 3, -3, 1, -1, 2, -127, 3});
}

TEST_CASE("Q4_K known answer (ggml's quantize_row_q4_K_ref)", "[ggml][q4_k]") {
  // Six sub-blocks of mixed signs, one of zeros, one all positive (its min is clamped to 0).
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i)
    x[static_cast<std::size_t>(i)] = i < 192 ? static_cast<float>((i * 37) % 101 - 50) * 0.01f *
                                                   (1.0f + static_cast<float>(i / 32) * 0.25f)
                                     : i < 224 ? 0.0f
                                               : 1.0f + static_cast<float>(i % 32) * 0.03f;
  const QuantizedMatrix q =
      quantize_ggml(MatrixView<const float>(x.data(), 1, 256), GgmlType::q4_k);
  // What ggml's quantize_row_q4_K_ref (ggml-quants.c, compiled without FMA contraction) writes.
  const std::vector<std::uint8_t> expected{
      0xb0, 0x18, 0x49, 0x24, 0xdd, 0xe5, 0x2c, 0xf1, 0xdd, 0xe3, 0x2b, 0x32, 0x7b, 0xff, 0x00,
      0x07, 0xa0, 0x15, 0x6b, 0xc1, 0x27, 0x8c, 0xd3, 0x48, 0x9e, 0x04, 0x5a, 0xb0, 0x16, 0x7b,
      0xc2, 0x37, 0x8d, 0xe3, 0x49, 0xae, 0x05, 0x6a, 0xb1, 0x26, 0x7c, 0xd2, 0x38, 0x9d, 0xe4,
      0x59, 0xaf, 0x15, 0x26, 0x8c, 0xe2, 0x48, 0xad, 0x04, 0x59, 0xb0, 0x15, 0x7b, 0xd1, 0x37,
      0x9c, 0xe3, 0x48, 0xae, 0x04, 0x6a, 0xc0, 0x26, 0x7b, 0xd2, 0x37, 0x9d, 0xf3, 0x59, 0xbe,
      0x15, 0x6a, 0xc1, 0x26, 0x8c, 0x9d, 0xf3, 0x59, 0xbe, 0x15, 0x7a, 0xc1, 0x26, 0x8c, 0xe2,
      0x48, 0xad, 0x04, 0x59, 0xb0, 0x15, 0x7b, 0xd1, 0x37, 0x9c, 0xe3, 0x48, 0xae, 0x04, 0x6a,
      0xc0, 0x26, 0x7b, 0xd2, 0x37, 0x9d, 0xf3, 0x80, 0x80, 0x80, 0x90, 0x90, 0x90, 0x90, 0xa0,
      0xa0, 0xa0, 0xa0, 0xb0, 0xb0, 0xb0, 0xb0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xd0, 0xd0, 0xd0,
      0xd0, 0xe0, 0xe0, 0xe0, 0xe0, 0xf0, 0xf0, 0xf0, 0xf0};
  CHECK(bytes_of(q) == expected);
  // And what ggml's dequantize_row_q4_K gives for them.
  const std::vector<float> y = q.dequantize();
  CHECK(bits_of(y[0]) == bits_of(-0x1.f114p-2f));
  CHECK(bits_of(y[100]) == bits_of(0x1.2368p-2f));
  CHECK(bits_of(y[200]) == bits_of(0.0f));
  CHECK(bits_of(y[255]) == bits_of(0x1.e366p+0f));
}

TEST_CASE("Q4_K scales and mins: get_scale_min_k4's packing and the dequantization",
          "[ggml][q4_k]") {
  const std::array<int, 8> sc{1, 2, 3, 63, 17, 33, 48, 63}, m{0, 5, 63, 1, 16, 40, 63, 7};
  QuantizedMatrix q(Scheme::ggml_blocks(GgmlType::q4_k), 1, 256);
  block_q4_k& b = q.row_blocks<block_q4_k>(0)[0];
  b.d = 0x3c00;     // 1.0
  b.dmin = 0x3800;  // 0.5
  const auto packed = pack_scales_mins(sc, m);
  std::copy(packed.begin(), packed.end(), b.scales);
  for (std::size_t i = 0; i < 128; ++i) b.qs[i] = static_cast<std::uint8_t>(i * 7 + 3);
  for (int j = 0; j < 8; ++j) {
    const ggml::ScaleMin got = ggml::scale_min_k4(j, b.scales);
    CHECK(got.scale == sc[static_cast<std::size_t>(j)]);
    CHECK(got.min == m[static_cast<std::size_t>(j)]);
  }
  const std::vector<float> y = q.dequantize();
  for (std::size_t i = 0; i < 256; ++i) {
    // Weight i: sub-block i / 32; its nibble is byte 32 * (i / 64) + i % 32, low for the first
    // 32 weights of each 64, high for the next.
    const std::size_t sub = i / 32;
    const std::uint8_t byte = b.qs[32 * (i / 64) + i % 32];
    const int nibble = (i % 64) < 32 ? (byte & 0xF) : (byte >> 4);
    const float want = (1.0f * static_cast<float>(sc[sub])) * static_cast<float>(nibble) -
                       0.5f * static_cast<float>(m[sub]);
    INFO(i);
    CHECK(bits_of(y[i]) == bits_of(want));
  }
}

TEST_CASE("all-zero blocks", "[ggml]") {
  const std::vector<float> zeros(2 * 256, 0.0f);
  const MatrixView<const float> view(zeros.data(), 2, 256);
  // Q4_0: ggml's max starts at +0, so d = +0 / -8 = -0 (0x8000) and every nibble is 8.
  const QuantizedMatrix q4_0 = quantize_ggml(view, GgmlType::q4_0);
  for (const block_q4_0& b : q4_0.row_blocks<block_q4_0>(1)) {
    CHECK(b.d == 0x8000);
    for (std::uint8_t byte : b.qs) CHECK(byte == 0x88);
  }
  // Q8_0 and Q4_K: every byte 0.
  for (GgmlType type : {GgmlType::q8_0, GgmlType::q4_k}) {
    const QuantizedMatrix q = quantize_ggml(view, type);
    CHECK(bytes_of(q) == std::vector<std::uint8_t>(q.block_bytes().size(), 0));
  }
  for (GgmlType type : all_types)
    for (float y : quantize_ggml(view, type).dequantize()) CHECK(y == 0.0f);
  // -0.0 inputs give the same bytes (gguf-py differs here for Q4_0: see quant/ggml.hpp).
  const std::vector<float> negative(256, -0.0f);
  CHECK(bytes_of(quantize_ggml(MatrixView<const float>(negative.data(), 1, 256), GgmlType::q4_0)) ==
        std::vector<std::uint8_t>(q4_0.row_bytes(0).begin(), q4_0.row_bytes(0).end()));
}

TEST_CASE("blocks so small that 1/d overflows store code 0", "[ggml]") {
  std::vector<float> x(32, 0.0f);
  x[3] = 1e-39f;  // d = 1e-39 / -8 (Q4_0) or / 127 (Q8_0): 1 / d is beyond float's range
  x[5] = -5e-40f;
  x[6] = 3e-40f;
  const MatrixView<const float> view(x.data(), 1, 32);
  const QuantizedMatrix q4_0 = quantize_ggml(view, GgmlType::q4_0);
  std::vector<std::uint8_t> expected(18, 0);
  expected[1] = 0x80;  // d = -0 in fp16
  CHECK(bytes_of(q4_0) == expected);
  CHECK(bytes_of(quantize_ggml(view, GgmlType::q8_0)) == std::vector<std::uint8_t>(34, 0));
}

TEST_CASE("round trips: within a step, and Q4_0/Q8_0 requantize to the same bytes", "[ggml]") {
  const std::size_t rows = 16, cols = 1024;
  const std::vector<float> w = test::weights_with_outliers(rows, cols, 5);
  const MatrixView<const float> view(w.data(), rows, cols);
  double norm = 0;
  for (float v : w) norm += static_cast<double>(v) * v;
  for (GgmlType type : all_types) {
    INFO(to_string(type));
    const QuantizedMatrix q = quantize_ggml(view, type);
    CHECK(q.rows() == rows);
    CHECK(q.cols() == cols);
    CHECK(q.bytes_per_row() == cols / ggml::block_weights(type) * ggml::block_bytes(type));
    const std::vector<float> y = q.dequantize();
    double err = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      const double e = static_cast<double>(y[i]) - static_cast<double>(w[i]);
      err += e * e;
    }
    const double relative = std::sqrt(err / norm);
    CHECK(relative < (type == GgmlType::q8_0 ? 0.01 : 0.15));
    if (type == GgmlType::q4_k) continue;
    // The largest magnitude lands on the end code (-8 or +-127) exactly, so requantizing the
    // dequantized matrix finds the same d and the same codes.
    const QuantizedMatrix again =
        quantize_ggml(MatrixView<const float>(y.data(), rows, cols), type);
    CHECK(bytes_of(again) == bytes_of(q));
    // Every weight within half a step of its value, plus the fp16 rounding of d (half an ulp,
    // 2^-11 relative, times the code); Q4_0's top code 15 (for x * id in [7.5, 8]) is clamped
    // and may be a whole step off.
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < cols; ++c) {
        const std::size_t block = c / 32, i = c % 32;
        float d = 0, slack = 0;
        if (type == GgmlType::q4_0) {
          const block_q4_0& b = q.row_blocks<block_q4_0>(r)[block];
          const int code = i < 16 ? (b.qs[i] & 0xF) : (b.qs[i - 16] >> 4);
          d = ggml::fp16_to_float(b.d);
          slack = (code == 15 ? 1.0f : 0.5f) + 8 * 0x1p-11f;
        } else {
          d = ggml::fp16_to_float(q.row_blocks<block_q8_0>(r)[block].d);
          slack = 0.5f + 127 * 0x1p-11f;
        }
        REQUIRE(std::abs(y[r * cols + c] - w[r * cols + c]) <= slack * std::abs(d) * 1.001f);
      }
  }
}

TEST_CASE("ggml rows: bytes, block structs and threads", "[ggml]") {
  // Large enough for the OpenMP paths; each row must equal its blocks quantized one by one.
  const std::size_t rows = 40, cols = 2048;
  const std::vector<float> w = test::gaussian(rows * cols, 21);
  const MatrixView<const float> view(w.data(), rows, cols);
  const QuantizedMatrix q4_0 = quantize_ggml(view, GgmlType::q4_0);
  const QuantizedMatrix q4_k = quantize_ggml(view, GgmlType::q4_k);
  const std::vector<float> y = q4_k.dequantize();
  for (std::size_t r = 0; r < rows; ++r) {
    CHECK(q4_0.row_bytes(r).data() == q4_0.block_bytes().data() + r * q4_0.bytes_per_row());
    const auto blocks = q4_0.row_blocks<block_q4_0>(r);
    REQUIRE(blocks.size() == cols / 32);
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      block_q4_0 one{};
      CHECK(ggml::quantize_block(w.data() + r * cols + b * 32, one));
      CHECK(std::memcmp(&one, &blocks[b], sizeof one) == 0);
    }
    const auto k_blocks = q4_k.row_blocks<block_q4_k>(r);
    for (std::size_t b = 0; b < k_blocks.size(); ++b) {
      block_q4_k one{};
      CHECK(ggml::quantize_block(w.data() + r * cols + b * 256, one));
      CHECK(std::memcmp(&one, &k_blocks[b], sizeof one) == 0);
      float values[256];
      ggml::dequantize_block(k_blocks[b], values);
      CHECK(std::memcmp(values, y.data() + r * cols + b * 256, sizeof values) == 0);
    }
  }
  CHECK_THROWS_AS(q4_0.row_blocks<block_q8_0>(0), invalid_argument);
  CHECK_THROWS_AS(QuantizedMatrix(Scheme::symmetric_int(4, Granularity::per_group(32)), 1, 32)
                      .row_blocks<block_q4_0>(0),
                  invalid_argument);
  CHECK(QuantizedMatrix(Scheme::symmetric_int(4, Granularity::per_group(32)), 1, 32)
            .bytes_per_row() == 0);
}

TEST_CASE("ggml shapes: rows of whole blocks", "[ggml]") {
  const std::vector<float> w(2 * 300, 0.25f);
  require_error_mentioning(
      [&] { (void)quantize_ggml(MatrixView<const float>(w.data(), 2, 48), GgmlType::q4_0); },
      "not a multiple of 32");
  require_error_mentioning(
      [&] { (void)quantize_ggml(MatrixView<const float>(w.data(), 2, 128), GgmlType::q4_k); },
      "not a multiple of 256");
  CHECK_THROWS_AS(QuantizedMatrix(Scheme::ggml_blocks(GgmlType::q8_0), 3, 33), invalid_argument);
  CHECK_THROWS_AS(quantize_ggml(MatrixView<const float>(w.data(), 2, 300), GgmlType::q4_k),
                  invalid_argument);
  // Empty matrices are fine.
  CHECK(quantize_ggml(MatrixView<const float>(w.data(), 0, 256), GgmlType::q4_k)
            .dequantize()
            .empty());
  CHECK(
      quantize_ggml(MatrixView<const float>(w.data(), 3, 0), GgmlType::q8_0).dequantize().empty());
}

TEST_CASE("ggml quantizers reject NaN, Inf and scales beyond fp16", "[ggml]") {
  for (GgmlType type : all_types) {
    INFO(to_string(type));
    std::vector<float> w(2 * 256, 0.1f);
    w[256 + 7] = std::numeric_limits<float>::quiet_NaN();
    require_error_mentioning(
        [&] { (void)quantize_ggml(MatrixView<const float>(w.data(), 2, 256), type); },
        "NaN at row 1, column 7");
    CHECK_THROWS_AS(quantize_ggml(MatrixView<const float>(w.data(), 2, 256), type), invalid_value);
    w[256 + 7] = -std::numeric_limits<float>::infinity();
    require_error_mentioning(
        [&] { (void)quantize_ggml(MatrixView<const float>(w.data(), 2, 256), type); },
        "Inf at row 1, column 7");
    // A block whose fp16 scale overflows: d = 1.25e8 (Q4_0), 7.9e6 (Q8_0), about 1e6 (Q4_K).
    w[256 + 7] = 1e9f;
    CHECK_THROWS_AS(quantize_ggml(MatrixView<const float>(w.data(), 2, 256), type), invalid_value);
    require_error_mentioning(
        [&] { (void)quantize_ggml(MatrixView<const float>(w.data(), 2, 256), type); }, "overflows");
  }
  // Just below: Q4_0's d = 65504 is still finite.
  std::vector<float> w(32, 1.0f);
  w[0] = -65504.0f * 8.0f;
  const QuantizedMatrix q = quantize_ggml(MatrixView<const float>(w.data(), 1, 32), GgmlType::q4_0);
  CHECK(ggml::fp16_to_float(q.row_blocks<block_q4_0>(0)[0].d) == 65504.0f);
}

TEST_CASE("ggml matrices with the rest of lowbit", "[ggml]") {
  const std::vector<float> w = test::gaussian(8 * 256, 3);
  const MatrixView<const float> view(w.data(), 8, 256);
  // The linear quantizer and the integer kernels take lowbit's own integer layout only.
  CHECK_THROWS_AS(LinearGrid(Scheme::ggml_blocks(GgmlType::q8_0)), unsupported);
  // The CPU kernels run them natively (tests/test_backend_conformance.cpp holds them to the
  // reference); the product is the one of the dequantized weights.
  const QuantizedMatrix q = quantize_ggml(view, GgmlType::q4_k);
  CHECK(kernels::cpu_backend().supports(q.scheme(), {}));
  const std::vector<float> x = test::gaussian(2 * 256, 4, 1.0f);
  std::vector<float> y(2 * 8);
  kernels::gemm(q, MatrixView<const float>(x.data(), 2, 256), MatrixView<float>(y.data(), 2, 8));
  const std::vector<float> dq = q.dequantize();
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t o = 0; o < 8; ++o) {
      double sum = 0;
      for (std::size_t k = 0; k < 256; ++k)
        sum += static_cast<double>(x[b * 256 + k]) * static_cast<double>(dq[o * 256 + k]);
      CHECK(y[b * 8 + o] == Approx(sum).margin(1e-5));
    }
}

TEST_CASE("ggml F16 and BF16: one weight per block, ggml's conversions", "[ggml][f16]") {
  STATIC_REQUIRE(sizeof(ggml::block_f16) == 2);
  STATIC_REQUIRE(sizeof(ggml::block_bf16) == 2);
  CHECK(static_cast<int>(GgmlType::f16) == 1);
  CHECK(static_cast<int>(GgmlType::bf16) == 30);
  for (const GgmlType type : {GgmlType::f16, GgmlType::bf16}) {
    const Scheme s = Scheme::ggml_blocks(type);
    INFO(s.to_string());
    CHECK_NOTHROW(s.validate());
    CHECK(ggml::block_weights(type) == 1);
    CHECK(s.bits_per_weight(3, 100) == 16.0);
    CHECK(io::scheme_from_json(io::scheme_to_json(s)) == s);
  }
  CHECK(Scheme::ggml_blocks(GgmlType::bf16).to_string() == "ggml_bf16");

  // Ties to even, subnormals kept, the largest finite values (as ggml's conversions).
  const std::vector<float> x = {1.0f,
                                1.0f + 0x1p-11f,  // F16 tie: to 1.0
                                1.0f + 0x1p-8f,   // BF16 tie: to 1.0
                                1.0f + 3 * 0x1p-8f,
                                -0x1p-24f,  // F16's smallest subnormal
                                0x1p-130f,  // a BF16 subnormal
                                65504.0f,
                                -0.0f};
  const QuantizedMatrix f16 = quantize_ggml(MatrixView<const float>(x.data(), 1, 8), GgmlType::f16);
  const QuantizedMatrix bf16 =
      quantize_ggml(MatrixView<const float>(x.data(), 1, 8), GgmlType::bf16);
  const auto f16_bits = f16.row_blocks<ggml::block_f16>(0);
  const auto bf16_bits = bf16.row_blocks<ggml::block_bf16>(0);
  const std::vector<std::uint16_t> f16_want = {0x3C00, 0x3C00, 0x3C04, 0x3C0C,
                                               0x8001, 0x0000, 0x7BFF, 0x8000};
  const std::vector<std::uint16_t> bf16_want = {0x3F80, 0x3F80, 0x3F80, 0x3F82,
                                                0xB380, 0x0008, 0x4780, 0x8000};
  for (std::size_t i = 0; i < x.size(); ++i) {
    INFO(i);
    CHECK(f16_bits[i].bits == f16_want[i]);
    CHECK(bf16_bits[i].bits == bf16_want[i]);
  }
  CHECK(bf16.dequantize()[5] == 0x1p-130f);

  // Beyond F16's range is an error naming the weight; BF16 takes every finite float but the top.
  std::vector<float> big(2 * 8, 1.0f);
  big[8 + 3] = 70000.0f;
  require_error_mentioning(
      [&] { (void)quantize_ggml(MatrixView<const float>(big.data(), 2, 8), GgmlType::f16); },
      "row 1, columns 3..3");
  CHECK_NOTHROW(quantize_ggml(MatrixView<const float>(big.data(), 2, 8), GgmlType::bf16));

  // Any number of columns; safetensors keeps the raw bits.
  test::TempDir dir;
  const auto path = dir.path / "f16.safetensors";
  const std::vector<float> w = test::gaussian(3 * 37, 12);
  const QuantizedMatrix q = quantize_ggml(MatrixView<const float>(w.data(), 3, 37), GgmlType::bf16);
  {
    std::map<std::string, std::string> metadata;
    io::add_quantization_metadata(metadata, "w", q.scheme(), 3, 37);
    io::SafetensorsWriter writer(path, io::quantized_layout("w", q.scheme(), 3, 37), metadata);
    io::write_quantized(writer, "w", q);
    writer.finish();
  }
  const io::SafetensorsFile file(path);
  const QuantizedMatrix back = io::read_quantized(file, "w");
  CHECK(bytes_of(back) == bytes_of(q));
  CHECK(back.dequantize() == q.dequantize());
}

// --- The types lowbit reads but does not quantize: Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, Q6_K,
// IQ4_NL, IQ4_XS. tests/python/check_ggml.py compares their dequantization with gguf-py's bit for
// bit; the cases below are computed by hand from ggml-common.h's layouts. ---

namespace {

constexpr std::array<GgmlType, 9> read_only_types{
    GgmlType::q4_1, GgmlType::q5_0, GgmlType::q5_1,   GgmlType::q2_k,  GgmlType::q3_k,
    GgmlType::q5_k, GgmlType::q6_k, GgmlType::iq4_nl, GgmlType::iq4_xs};

/// A one-row matrix of one block of Block's type, all bytes zero.
template <class Block>
QuantizedMatrix one_block() {
  return QuantizedMatrix(Scheme::ggml_blocks(ggml::type_of<Block>::value), 1,
                         ggml::block_weights(ggml::type_of<Block>::value));
}

/// The 16 6-bit scales of a Q3_K block packed as ggml's quantize_row_q3_K_ref packs them.
std::array<std::uint8_t, 12> pack_q3k_scales(const std::array<int, 16>& ls) {
  std::array<std::uint8_t, 12> out{};
  for (std::size_t j = 0; j < 16; ++j) {
    const int l = ls[j];
    if (j < 8)
      out[j] = static_cast<std::uint8_t>(l & 0xF);
    else
      out[j - 8] = static_cast<std::uint8_t>(out[j - 8] | ((l & 0xF) << 4));
    out[j % 4 + 8] = static_cast<std::uint8_t>(out[j % 4 + 8] | ((l >> 4) << (2 * (j / 4))));
  }
  return out;
}

}  // namespace

TEST_CASE("ggml's other block types: sizes, numbers, names, table", "[ggml]") {
  STATIC_REQUIRE(sizeof(ggml::block_q4_1) == 20);
  STATIC_REQUIRE(sizeof(ggml::block_q5_0) == 22);
  STATIC_REQUIRE(sizeof(ggml::block_q5_1) == 24);
  STATIC_REQUIRE(sizeof(ggml::block_q2_k) == 84);
  STATIC_REQUIRE(sizeof(ggml::block_q3_k) == 110);
  STATIC_REQUIRE(sizeof(ggml::block_q5_k) == 176);
  STATIC_REQUIRE(sizeof(ggml::block_q6_k) == 210);
  STATIC_REQUIRE(sizeof(ggml::block_iq4_nl) == 18);
  STATIC_REQUIRE(sizeof(ggml::block_iq4_xs) == 136);
  // ggml's field offsets (ggml-common.h).
  STATIC_REQUIRE(offsetof(ggml::block_q5_0, qs) == 6);
  STATIC_REQUIRE(offsetof(ggml::block_q5_1, qh) == 4);
  STATIC_REQUIRE(offsetof(ggml::block_q2_k, d) == 80);
  STATIC_REQUIRE(offsetof(ggml::block_q3_k, scales) == 96);
  STATIC_REQUIRE(offsetof(ggml::block_q3_k, d) == 108);
  STATIC_REQUIRE(offsetof(ggml::block_q5_k, qh) == 16);
  STATIC_REQUIRE(offsetof(ggml::block_q5_k, qs) == 48);
  STATIC_REQUIRE(offsetof(ggml::block_q6_k, scales) == 192);
  STATIC_REQUIRE(offsetof(ggml::block_q6_k, d) == 208);
  STATIC_REQUIRE(offsetof(ggml::block_iq4_xs, scales_l) == 4);
  STATIC_REQUIRE(offsetof(ggml::block_iq4_xs, qs) == 8);
  const std::map<GgmlType, std::pair<int, std::string>> numbers{
      {GgmlType::f16, {1, "f16"}},        {GgmlType::q4_0, {2, "q4_0"}},
      {GgmlType::q4_1, {3, "q4_1"}},      {GgmlType::q5_0, {6, "q5_0"}},
      {GgmlType::q5_1, {7, "q5_1"}},      {GgmlType::q8_0, {8, "q8_0"}},
      {GgmlType::q2_k, {10, "q2_K"}},     {GgmlType::q3_k, {11, "q3_K"}},
      {GgmlType::q4_k, {12, "q4_K"}},     {GgmlType::q5_k, {13, "q5_K"}},
      {GgmlType::q6_k, {14, "q6_K"}},     {GgmlType::iq4_nl, {20, "iq4_nl"}},
      {GgmlType::iq4_xs, {23, "iq4_xs"}}, {GgmlType::bf16, {30, "bf16"}}};
  CHECK(std::size(ggml_type_table) == numbers.size());
  for (const GgmlTypeTraits& row : ggml_type_table) {
    INFO(row.name);
    REQUIRE(numbers.count(row.value) == 1);
    CHECK(static_cast<int>(row.value) == numbers.at(row.value).first);
    CHECK(row.name == numbers.at(row.value).second);
    CHECK(parse_ggml_type(row.name) == row.value);
    CHECK(find_ggml_traits(row.value) == &row);
    CHECK(ggml::visit_block_type(row.value, []<class Block>(std::type_identity<Block>) {
            return sizeof(Block);
          }) == row.block_bytes);
    // Every quantized type's groups divide its block.
    if (row.code_bits < 16) CHECK(row.block_weights % row.group_weights == 0);
  }
  CHECK_FALSE(find_ggml_traits(static_cast<GgmlType>(0)));   // F32: floats, not blocks
  CHECK_FALSE(find_ggml_traits(static_cast<GgmlType>(16)));  // IQ2_XXS: not stored
  CHECK_THROWS_AS(ggml::visit_block_type(static_cast<GgmlType>(16), [](auto) { return 0; }),
                  invalid_argument);
  CHECK_FALSE(parse_ggml_type("q4_k"));  // ggml's own case only
  CHECK(ggml::iq4nl_value(0) == -127);
  CHECK(ggml::iq4nl_value(8) == 1);
  CHECK(ggml::iq4nl_value(15) == 113);
}

TEST_CASE("ggml's other block types: schemes, bits per weight, files", "[ggml][scheme]") {
  const std::map<GgmlType, double> bits{
      {GgmlType::q4_1, 5.0},    {GgmlType::q5_0, 5.5},    {GgmlType::q5_1, 6.0},
      {GgmlType::q2_k, 2.625},  {GgmlType::q3_k, 3.4375}, {GgmlType::q5_k, 5.5},
      {GgmlType::q6_k, 6.5625}, {GgmlType::iq4_nl, 4.5},  {GgmlType::iq4_xs, 4.25}};
  test::TempDir dir;
  const auto path = dir.path / "ggml_read_only.safetensors";
  std::vector<io::TensorLayout> layout;
  std::map<std::string, std::string> metadata;
  std::vector<QuantizedMatrix> matrices;
  for (GgmlType type : read_only_types) {
    const Scheme s = Scheme::ggml_blocks(type);
    INFO(s.to_string());
    CHECK_NOTHROW(s.validate());
    CHECK(s.to_string() == std::string("ggml_") + [&] {
      std::string name = to_string(type);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return name;
    }());
    CHECK(s.bits_per_weight(4096, 4096) == bits.at(type));
    CHECK(io::scheme_from_json(io::scheme_to_json(s)) == s);
    // No quantizer: an error that says so, not blocks of something else.
    CHECK_FALSE(has_ggml_quantizer(type));
    const std::vector<float> w(256, 0.5f);
    require_error_mentioning(
        [&] { (void)quantize_ggml(MatrixView<const float>(w.data(), 1, 256), type); },
        std::string("no quantizer for ggml ") + to_string(type));
    CHECK_THROWS_AS(quantize_ggml(MatrixView<const float>(w.data(), 1, 256), type), unsupported);
    // Rows of whole blocks only.
    CHECK_THROWS_AS(QuantizedMatrix(s, 2, ggml::block_weights(type) + 16), invalid_argument);
    const std::string name = std::string(to_string(type)) + ".weight";
    matrices.push_back(test::random_ggml_blocks(type, 3, 512, 17));
    const auto parts = io::quantized_layout(name, s, 3, 512);
    layout.insert(layout.end(), parts.begin(), parts.end());
    io::add_quantization_metadata(metadata, name, s, 3, 512);
  }
  {
    io::SafetensorsWriter writer(path, layout, metadata);
    for (std::size_t i = 0; i < matrices.size(); ++i)
      io::write_quantized(writer, std::string(to_string(read_only_types[i])) + ".weight",
                          matrices[i]);
    writer.finish();
  }
  const io::SafetensorsFile file(path);
  for (std::size_t i = 0; i < matrices.size(); ++i) {
    INFO(to_string(read_only_types[i]));
    const QuantizedMatrix back =
        io::read_quantized(file, std::string(to_string(read_only_types[i])) + ".weight");
    CHECK(back.scheme() == matrices[i].scheme());
    CHECK(bytes_of(back) == bytes_of(matrices[i]));
    const std::vector<float> a = back.dequantize(), b = matrices[i].dequantize();
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("Q4_1 and Q5_1 known answers: q * d + m", "[ggml][q4_1][q5_1]") {
  QuantizedMatrix q4 = one_block<ggml::block_q4_1>();
  ggml::block_q4_1* b4 = &q4.row_blocks<ggml::block_q4_1>(0)[0];
  b4->d = 0x3800;  // 0.5
  b4->m = 0xBC00;  // -1
  for (std::size_t j = 0; j < 16; ++j) b4->qs[j] = static_cast<std::uint8_t>(j | (15 - j) << 4);
  std::vector<float> y = q4.dequantize();
  CHECK(y[0] == -1.0f);
  CHECK(y[15] == 6.5f);
  CHECK(y[16] == 6.5f);  // weight 16: the high nibble of byte 0, 15
  CHECK(y[31] == -1.0f);
  for (std::size_t j = 0; j < 16; ++j) {
    CHECK(y[j] == static_cast<float>(j) * 0.5f - 1.0f);
    CHECK(y[j + 16] == static_cast<float>(15 - j) * 0.5f - 1.0f);
  }
  QuantizedMatrix q5 = one_block<ggml::block_q5_1>();
  ggml::block_q5_1* b5 = &q5.row_blocks<ggml::block_q5_1>(0)[0];
  b5->d = 0x3C00;                                       // 1
  b5->m = 0x3800;                                       // 0.5
  const std::uint8_t qh[4] = {0x55, 0x55, 0xFF, 0x00};  // fifth bit: even weights 0..15, 16..23
  std::copy(qh, qh + 4, b5->qh);
  for (std::size_t j = 0; j < 16; ++j) b5->qs[j] = static_cast<std::uint8_t>(j);
  y = q5.dequantize();
  CHECK(y[0] == 16.5f);
  CHECK(y[1] == 1.5f);
  CHECK(y[14] == 30.5f);
  CHECK(y[16] == 16.5f);
  CHECK(y[24] == 0.5f);
  for (std::size_t j = 0; j < 16; ++j) {
    CHECK(y[j] == static_cast<float>(j + (j % 2 == 0 ? 16 : 0)) + 0.5f);
    CHECK(y[j + 16] == (j < 8 ? 16.5f : 0.5f));
  }
}

TEST_CASE("Q5_0 known answer: (q - 16) * d", "[ggml][q5_0]") {
  QuantizedMatrix q = one_block<ggml::block_q5_0>();
  ggml::block_q5_0* b = &q.row_blocks<ggml::block_q5_0>(0)[0];
  b->d = 0xB400;  // -0.25: a negative scale
  const std::uint8_t qh[4] = {0x55, 0x55, 0xFF, 0x00};
  std::copy(qh, qh + 4, b->qh);
  for (std::size_t j = 0; j < 16; ++j) b->qs[j] = static_cast<std::uint8_t>(j | 0xF0);
  const std::vector<float> y = q.dequantize();
  CHECK(y[0] == -0.0f);       // code 16
  CHECK(y[1] == 3.75f);       // code 1: (1 - 16) * -0.25
  CHECK(y[14] == -3.5f);      // code 30
  CHECK(y[16] == -3.75f);     // code 31
  CHECK(y[24] == 0.25f);      // code 15
  CHECK(std::signbit(y[0]));  // 0 * -0.25 is -0, as in ggml
}

TEST_CASE("Q2_K known answer: d sc q - dmin m per 16", "[ggml][q2_k]") {
  QuantizedMatrix q = one_block<ggml::block_q2_k>();
  ggml::block_q2_k* b = &q.row_blocks<ggml::block_q2_k>(0)[0];
  b->d = 0x3C00;     // 1
  b->dmin = 0x3800;  // 0.5
  for (std::size_t j = 0; j < 16; ++j)
    b->scales[j] = static_cast<std::uint8_t>((j % 4) | 2 << 4);       // sc = j % 4, m = 2
  std::fill(std::begin(b->qs), std::end(b->qs), std::uint8_t{0xE4});  // quarter i: code i
  const std::vector<float> y = q.dequantize();
  for (std::size_t i = 0; i < 256; ++i) {
    INFO(i);
    const float code = static_cast<float>(i % 128 / 32), sc = static_cast<float>(i / 16 % 4);
    CHECK(y[i] == sc * code - 1.0f);
  }
  CHECK(y[0] == -1.0f);
  CHECK(y[127] == 3.0f * 3.0f - 1.0f);  // sub-block 7 (sc 3), the fourth quarter (code 3)
}

TEST_CASE("Q3_K known answer: 6-bit scales, the high bit from hmask", "[ggml][q3_k]") {
  std::array<int, 16> ls{};
  for (std::size_t j = 0; j < 16; ++j) ls[j] = static_cast<int>((j * 37 + 5) % 64);
  ls[3] = 0;
  ls[9] = 63;
  const auto packed = pack_q3k_scales(ls);
  for (int j = 0; j < 16; ++j)
    CHECK(ggml::scale_q3k(j, packed.data()) == ls[static_cast<std::size_t>(j)]);

  QuantizedMatrix q = one_block<ggml::block_q3_k>();
  ggml::block_q3_k* b = &q.row_blocks<ggml::block_q3_k>(0)[0];
  b->d = 0x3800;  // 0.5
  std::copy(packed.begin(), packed.end(), b->scales);
  std::fill(std::begin(b->qs), std::end(b->qs), std::uint8_t{0xE4});  // quarter i: low bits i
  // hmask bit 4 h + i is the high bit of half h's quarter i: set for the first half only.
  std::fill(std::begin(b->hmask), std::end(b->hmask), std::uint8_t{0x0F});
  const std::vector<float> y = q.dequantize();
  for (std::size_t i = 0; i < 256; ++i) {
    INFO(i);
    const float dl = 0.5f * static_cast<float>(ls[i / 16] - 32);
    const int code = static_cast<int>(i % 128 / 32) - (i < 128 ? 0 : 4);
    CHECK(y[i] == dl * static_cast<float>(code));
  }
  CHECK(y[3 * 16 + 0] == -16.0f);  // sub-block 3: 0.5 (0 - 32), weight 48: code 1
  CHECK(y[200] == 0.5f * static_cast<float>(ls[12] - 32) * -2.0f);
}

TEST_CASE("Q5_K known answer: Q4_K's scales, the fifth bit from qh", "[ggml][q5_k]") {
  const std::array<int, 8> sc{1, 2, 3, 63, 17, 33, 48, 0}, m{0, 5, 63, 1, 16, 40, 63, 7};
  QuantizedMatrix q = one_block<ggml::block_q5_k>();
  ggml::block_q5_k* b = &q.row_blocks<ggml::block_q5_k>(0)[0];
  b->d = 0x3C00;     // 1
  b->dmin = 0x3400;  // 0.25
  const auto packed = pack_scales_mins(sc, m);
  std::copy(packed.begin(), packed.end(), b->scales);
  std::fill(std::begin(b->qs), std::end(b->qs), std::uint8_t{0x53});  // low nibble 3, high 5
  for (std::size_t l = 0; l < 32; ++l)
    b->qh[l] = static_cast<std::uint8_t>(l % 2 == 0 ? 0x55 : 0xAA);  // even l: low halves
  const std::vector<float> y = q.dequantize();
  for (std::size_t i = 0; i < 256; ++i) {
    INFO(i);
    const bool high_half = i % 64 >= 32, even = i % 2 == 0;
    const int code = (high_half ? 5 : 3) + (high_half != even ? 16 : 0);
    const std::size_t sub = i / 32;
    CHECK(y[i] == static_cast<float>(sc[sub]) * static_cast<float>(code) -
                      0.25f * static_cast<float>(m[sub]));
  }
  CHECK(y[0] == 19.0f * 1.0f);  // code 19, sc 1, m 0
  CHECK(y[33] == 2.0f * 21.0f - 1.25f);
}

TEST_CASE("Q6_K known answer: (d sc) (q - 32) per 16", "[ggml][q6_k]") {
  QuantizedMatrix q = one_block<ggml::block_q6_k>();
  ggml::block_q6_k* b = &q.row_blocks<ggml::block_q6_k>(0)[0];
  b->d = 0x3400;  // 0.25
  for (std::size_t j = 0; j < 16; ++j) b->scales[j] = static_cast<std::int8_t>(j * 17 % 256 - 128);
  std::fill(std::begin(b->ql), std::end(b->ql), std::uint8_t{0x21});  // low nibble 1, high 2
  std::fill(std::begin(b->qh), std::end(b->qh), std::uint8_t{0xE4});  // quarter i: high bits i
  const std::vector<float> y = q.dequantize();
  const int codes[4] = {1 | 0 << 4, 1 | 1 << 4, 2 | 2 << 4, 2 | 3 << 4};  // 1, 17, 34, 50
  for (std::size_t i = 0; i < 256; ++i) {
    INFO(i);
    const float dl = 0.25f * static_cast<float>(b->scales[i / 16]);
    CHECK(y[i] == dl * static_cast<float>(codes[i % 128 / 32] - 32));
  }
  CHECK(y[0] == 0.25f * -128.0f * -31.0f);
  CHECK(y[255] == 0.25f * static_cast<float>(15 * 17 % 256 - 128) * 18.0f);
}

TEST_CASE("IQ4_NL and IQ4_XS known answers: kvalues_iq4nl", "[ggml][iq4_nl][iq4_xs]") {
  QuantizedMatrix q_nl = one_block<ggml::block_iq4_nl>();
  ggml::block_iq4_nl* nl = &q_nl.row_blocks<ggml::block_iq4_nl>(0)[0];
  nl->d = 0x4000;  // 2
  for (std::size_t j = 0; j < 16; ++j) nl->qs[j] = static_cast<std::uint8_t>(j | (15 - j) << 4);
  std::vector<float> y = q_nl.dequantize();
  CHECK(y[0] == -254.0f);
  CHECK(y[8] == 2.0f);
  CHECK(y[16] == 226.0f);
  CHECK(y[31] == -254.0f);
  const int kvalues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                           1,    13,   25,  38,  53,  69,  89,  113};
  for (std::size_t j = 0; j < 16; ++j) {
    CHECK(y[j] == 2.0f * static_cast<float>(kvalues[j]));
    CHECK(y[j + 16] == 2.0f * static_cast<float>(kvalues[15 - j]));
  }

  QuantizedMatrix q_xs = one_block<ggml::block_iq4_xs>();
  ggml::block_iq4_xs* xs = &q_xs.row_blocks<ggml::block_iq4_xs>(0)[0];
  xs->d = 0x3C00;         // 1
  xs->scales_h = 0xAAAA;  // top bits 2 for every sub-block: ls = 32 + low
  for (std::size_t k = 0; k < 4; ++k)
    xs->scales_l[k] = static_cast<std::uint8_t>(2 * k | (2 * k + 1) << 4);
  std::fill(std::begin(xs->qs), std::end(xs->qs), std::uint8_t{0x80});  // -127 low, 1 high
  y = q_xs.dequantize();
  for (std::size_t i = 0; i < 256; ++i) {
    INFO(i);
    const float dl = static_cast<float>(i / 32);  // ls - 32 = sub-block index
    CHECK(y[i] == dl * (i % 32 < 16 ? -127.0f : 1.0f));
  }
  xs->scales_h = 0;  // ls = low only: dl = low - 32
  y = q_xs.dequantize();
  CHECK(y[32 * 7] == (7.0f - 32.0f) * -127.0f);
}

TEST_CASE("every ggml block's level form is its dequantized value", "[ggml][levels]") {
  // s u + b (s table[u] for IQ4) in double equals ggml's float dequantization up to the rounding
  // of its (one or two) operations; levels fit their width.
  for (const GgmlTypeTraits& row : ggml_type_table) {
    if (row.group_weights == 0) continue;  // F16, BF16: no level form
    INFO(row.name);
    const QuantizedMatrix q = test::random_ggml_blocks(row.value, 4, 512, 99, 0, 30);
    const std::vector<float> y = q.dequantize();
    std::size_t checked = 0;
    ggml::visit_block_type(row.value, [&]<class Block>(std::type_identity<Block>) {
      if constexpr (requires(const Block& b, std::uint8_t* u, ggml::LevelGroup* g) {
                      ggml::to_levels(b, u, g);
                    }) {
        std::vector<std::uint8_t> levels(row.block_weights);
        std::vector<ggml::LevelGroup> groups(row.block_weights / row.group_weights);
        for (std::size_t r = 0; r < q.rows(); ++r) {
          const auto blocks = q.row_blocks<Block>(r);
          for (std::size_t k = 0; k < blocks.size(); ++k) {
            ggml::to_levels(blocks[k], levels.data(), groups.data());
            for (std::size_t i = 0; i < row.block_weights; ++i) {
              REQUIRE(levels[i] < (1u << row.code_bits));
              const ggml::LevelGroup g = groups[i / row.group_weights];
              const double value = row.iq4nl_levels ? ggml::iq4nl_value(levels[i]) : levels[i];
              const double want = static_cast<double>(g.scale) * value + g.bias;
              const double got = y[r * q.cols() + k * row.block_weights + i];
              INFO("row " << r << ", block " << k << ", weight " << i);
              REQUIRE(std::abs(got - want) <=
                      0x1p-22 * (std::abs(static_cast<double>(g.scale) * value) +
                                 std::abs(static_cast<double>(g.bias))));
              ++checked;
            }
          }
        }
      }
    });
    CHECK(checked == 4 * 512);
  }
}

TEST_CASE("ggml's other block types run on the CPU kernels", "[ggml][kernels]") {
  // Natively (supports() says so; tests/test_backend_conformance.cpp holds every shape and batch to
  // the reference); here one product against the dequantized weights.
  for (GgmlType type : read_only_types) {
    INFO(to_string(type));
    const QuantizedMatrix q = test::random_ggml_blocks(type, 8, 512, 5);
    CHECK(kernels::cpu_backend().supports(q.scheme(), {}));
    const std::vector<float> x = test::gaussian(3 * 512, 4, 1.0f);
    std::vector<float> y(3 * 8);
    kernels::gemm(q, MatrixView<const float>(x.data(), 3, 512), MatrixView<float>(y.data(), 3, 8));
    const std::vector<float> dq = q.dequantize();
    const std::vector<double> biases = test::ggml_biases(q);
    for (std::size_t b = 0; b < 3; ++b)
      for (std::size_t o = 0; o < 8; ++o) {
        double sum = 0, magnitude = 0;  // of the terms the kernel sums: s u x and b x
        for (std::size_t k = 0; k < 512; ++k) {
          const double xk = x[b * 512 + k];
          sum += xk * static_cast<double>(dq[o * 512 + k]);
          magnitude +=
              std::abs(xk) * (std::abs(dq[o * 512 + k]) + 2 * std::abs(biases[o * 512 + k]));
        }
        CHECK(std::abs(y[b * 8 + o] - sum) <= 1e-4 * magnitude + 1e-30);
      }
  }
}

TEST_CASE("activations rounded as llama.cpp multiplies them", "[ggml][activations]") {
  std::vector<float> row(256);
  for (std::size_t i = 0; i < row.size(); ++i)
    row[i] = std::sin(0.37f * static_cast<float>(i)) * (1.0f + static_cast<float>(i % 7));
  SECTION("Q8_1 for Q4_1: blocks of 32, fp16 scale amax / 127, codes to the nearest, ties even") {
    std::vector<float> rounded = row;
    lowbit::round_activations_as_ggml(lowbit::GgmlType::q4_1, rounded);
    for (std::size_t b = 0; b < row.size(); b += 32) {
      float amax = 0;
      for (std::size_t j = 0; j < 32; ++j) amax = std::max(amax, std::abs(row[b + j]));
      const float d = lowbit::float16::from_float(amax / 127.0f).to_float();
      for (std::size_t j = 0; j < 32; ++j) {
        const float q = rounded[b + j] / d;
        CHECK(q == std::nearbyint(q));  // on the grid
        CHECK(std::abs(q) <= 127.0f);
        CHECK(q == std::nearbyint(row[b + j] * (127.0f / amax)));
      }
    }
  }
  SECTION("Q8_K for the K-quants: blocks of 256, float scale from the signed maximum") {
    std::vector<float> rounded = row;
    lowbit::round_activations_as_ggml(lowbit::GgmlType::q4_k, rounded);
    float max = 0;
    for (const float x : row)
      if (std::abs(x) > std::abs(max)) max = x;
    const float iscale = -127.0f / max;
    for (std::size_t j = 0; j < row.size(); ++j)
      CHECK(rounded[j] ==
            (1 / iscale) * static_cast<float>(
                               std::min(127, lowbit::ggml::detail::nearest_int(iscale * row[j]))));
  }
  SECTION("F16 and an all-zero block") {
    std::vector<float> rounded = {0.1f, 1e-8f, 70000.0f};
    lowbit::round_activations_as_ggml(lowbit::GgmlType::f16, rounded);
    CHECK(rounded[0] == lowbit::float16::from_float(0.1f).to_float());
    CHECK(std::isinf(rounded[2]));  // as ggml's conversion
    std::vector<float> zeros(32, 0.0f);
    lowbit::round_activations_as_ggml(lowbit::GgmlType::q8_0, zeros);
    CHECK(zeros == std::vector<float>(32, 0.0f));
  }
}
