#include <catch2/catch.hpp>

#include "support/random_data.hpp"
#include "support/temp_dir.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
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
            R"("block_layout":"ggml_q5_0"})");
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
