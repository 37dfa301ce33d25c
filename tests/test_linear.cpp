#include <catch2/catch.hpp>

#include "support/random_data.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "lowbit/quant/linear.hpp"

using lowbit::Granularity;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;
using lowbit::ScalarFormat;
using lowbit::Scheme;

namespace {

std::vector<float> random_matrix(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  return lowbit::test::weights_with_outliers(rows, cols, seed);
}

std::vector<Granularity> granularities() {
  return {Granularity::per_tensor(), Granularity::per_channel(), Granularity::per_group(32),
          Granularity::per_group(50), Granularity::per_group(128)};
}

std::vector<Scheme> schemes(ScalarFormat scale_format) {
  std::vector<Scheme> all;
  for (int bits = 2; bits <= 8; ++bits)
    for (const Granularity& g : granularities()) {
      all.push_back(Scheme::symmetric_int(bits, g, scale_format));
      all.push_back(Scheme::asymmetric_int(bits, g, scale_format));
      all.push_back(Scheme::asymmetric_int(bits, g, scale_format, lowbit::ZeroFormat::bf16));
    }
  return all;
}

// The largest |x - dequant(quant(x))| that rounding to nearest allows: half a step, plus the
// float rounding of x / s (a few ulps of x).
float half_step_bound(float x, float scale) {
  return 0.5f * scale * (1.0f + 1e-6f) + 4.0f * std::numeric_limits<float>::epsilon() * std::abs(x);
}

}  // namespace

TEST_CASE("round-trip error is at most half a step per element", "[quant][linear]") {
  const std::size_t rows = 7, cols = 172;  // 172 = the real model's FFN width: ragged groups
  const auto w = random_matrix(rows, cols, 1);
  for (ScalarFormat scale_format : {ScalarFormat::f32, ScalarFormat::f16, ScalarFormat::bf16}) {
    for (const Scheme& scheme : schemes(scale_format)) {
      INFO(scheme.to_string());
      const QuantizedMatrix q =
          lowbit::quantize_linear(MatrixView<const float>(w.data(), rows, cols), scheme);
      CHECK(q.scheme() == scheme);
      const auto back = q.dequantize();
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) {
          const float x = w[r * cols + c];
          const float s = q.scale(q.scale_index(r, c));
          REQUIRE(std::abs(x - back[r * cols + c]) <= half_step_bound(x, s));
        }
    }
  }
}

TEST_CASE("values already on the grid are reconstructed exactly", "[quant][linear]") {
  std::mt19937 rng(2);
  const std::size_t rows = 5, cols = 100, group = 25;
  for (ScalarFormat scale_format : {ScalarFormat::f32, ScalarFormat::f16, ScalarFormat::bf16}) {
    for (int bits = 2; bits <= 8; ++bits) {
      for (bool symmetric : {true, false}) {
        const Scheme scheme =
            symmetric ? Scheme::symmetric_int(bits, Granularity::per_group(group), scale_format)
                      : Scheme::asymmetric_int(bits, Granularity::per_group(group), scale_format);
        INFO(scheme.to_string());
        const int top = symmetric ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
        const int bottom = symmetric ? -top : 0;
        std::vector<float> w(rows * cols), scales, zeros;
        std::vector<int> levels(rows * cols);
        for (std::size_t r = 0; r < rows; ++r) {
          for (std::size_t g = 0; g < cols / group; ++g) {
            // A scale with few significant bits, so every level * scale is exact in float and
            // the scale is exact in f16 and bf16.
            const float scale =
                std::ldexp(static_cast<float>(1 + rng() % 127), -static_cast<int>(rng() % 8) - 9);
            const int zero =
                symmetric ? 0 : static_cast<int>(rng() % static_cast<unsigned>(top + 1));
            for (std::size_t i = 0; i < group; ++i) {
              const std::size_t c = g * group + i;
              // Both ends of the range appear, so the quantizer finds the same scale.
              int level =
                  i == 0 ? bottom
                  : i == 1
                      ? top
                      : bottom + static_cast<int>(rng() % static_cast<unsigned>(top - bottom + 1));
              levels[r * cols + c] = level;
              w[r * cols + c] = static_cast<float>(level - zero) * scale;
            }
          }
        }
        const QuantizedMatrix q =
            lowbit::quantize_linear(MatrixView<const float>(w.data(), rows, cols), scheme);
        CHECK(q.dequantize() == w);
      }
    }
  }
}

TEST_CASE("all-zero and constant groups quantize and dequantize exactly", "[quant][linear]") {
  const std::size_t rows = 4, cols = 70;
  for (float c : {0.0f, 0.3f, -0.3f, 1e-30f, -7.5e20f, 1e-40f /* subnormal */}) {
    for (ScalarFormat scale_format : {ScalarFormat::f32, ScalarFormat::f16, ScalarFormat::bf16}) {
      // Exactness needs the constant itself to be a value of the scale format.
      if (lowbit::round_scalar(scale_format, std::abs(c)) != std::abs(c)) continue;
      for (int bits = 2; bits <= 8; ++bits)
        for (const Granularity& g : granularities())
          for (bool symmetric : {true, false}) {
            const Scheme scheme = symmetric ? Scheme::symmetric_int(bits, g, scale_format)
                                            : Scheme::asymmetric_int(bits, g, scale_format);
            INFO(scheme.to_string() << " constant " << c);
            const std::vector<float> w(rows * cols, c);
            const QuantizedMatrix q =
                lowbit::quantize_linear(MatrixView<const float>(w.data(), rows, cols), scheme);
            REQUIRE(q.dequantize() == w);
          }
    }
  }
  // A matrix whose groups are each constant but differ from one another.
  std::vector<float> w(2 * 64);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i / 32) * 0.25f - 0.5f;
  const Scheme scheme = Scheme::asymmetric_int(4, Granularity::per_group(32), ScalarFormat::f32);
  CHECK(lowbit::quantize_linear(MatrixView<const float>(w.data(), 2, 64), scheme).dequantize() ==
        w);
}

TEST_CASE("subnormal inputs stay within half a step", "[quant][linear]") {
  std::vector<float> w(3 * 40);
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> mantissa(1, (1 << 23) - 1);
  for (float& x : w)
    x = std::ldexp(static_cast<float>(mantissa(rng)), -149) * (rng() % 2 ? 1.0f : -1.0f);
  for (ScalarFormat scale_format : {ScalarFormat::f32, ScalarFormat::f16}) {
    for (bool symmetric : {true, false}) {
      const Scheme scheme =
          symmetric ? Scheme::symmetric_int(4, Granularity::per_group(16), scale_format)
                    : Scheme::asymmetric_int(4, Granularity::per_group(16), scale_format);
      const QuantizedMatrix q =
          lowbit::quantize_linear(MatrixView<const float>(w.data(), 3, 40), scheme);
      const auto back = q.dequantize();
      for (std::size_t i = 0; i < w.size(); ++i) {
        const float s = q.scale(q.scale_index(i / 40, i % 40));
        REQUIRE(std::abs(w[i] - back[i]) <= half_step_bound(w[i], s) + 0x1p-149f);
      }
    }
  }
}

TEST_CASE("NaN or Inf in the input is an error naming the position", "[quant][linear]") {
  std::vector<float> w(4 * 8, 0.5f);
  w[2 * 8 + 5] = std::numeric_limits<float>::quiet_NaN();
  lowbit::LinearQuantizeOptions options;
  options.tensor_name = "layers.0.attention.wq";
  const Scheme scheme = Scheme::symmetric_int(4, Granularity::per_group(4));
  CHECK_THROWS_AS(lowbit::quantize_linear(MatrixView<const float>(w.data(), 4, 8), scheme, options),
                  lowbit::invalid_value);
  CHECK_THROWS_WITH(
      lowbit::quantize_linear(MatrixView<const float>(w.data(), 4, 8), scheme, options),
      Catch::Contains("NaN at row 2, column 5") && Catch::Contains("layers.0.attention.wq") &&
          Catch::Contains("[4, 8]"));
  w[2 * 8 + 5] = 0.0f;
  w[3 * 8 + 0] = -std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(lowbit::quantize_linear(MatrixView<const float>(w.data(), 4, 8), scheme),
                    Catch::Contains("Inf at row 3, column 0"));
}

TEST_CASE("non-integer schemes are refused by the linear quantizer", "[quant][linear]") {
  const std::vector<float> w(4, 1.0f);
  const Scheme nf4{
      .element = lowbit::ElementFormat::nf4, .bits = 4, .granularity = Granularity::per_group(64)};
  CHECK_THROWS_AS(lowbit::quantize_linear(MatrixView<const float>(w.data(), 1, 4), nf4),
                  lowbit::unsupported);
}

TEST_CASE("codes follow the documented formulas", "[quant][linear]") {
  // Symmetric int4 over one group: absmax 7 gives scale 1; codes are two's complement.
  const std::vector<float> w = {7.0f, -7.0f, 0.5f, 1.5f, -2.5f, 0.0f};
  const QuantizedMatrix sym = lowbit::quantize_linear(
      MatrixView<const float>(w.data(), 1, 6),
      Scheme::symmetric_int(4, Granularity::per_channel(), ScalarFormat::f32));
  CHECK(sym.scale(0) == 1.0f);
  CHECK(sym.code(0, 0) == 0x7);
  CHECK(sym.code(0, 1) == 0x9);  // -7
  CHECK(sym.code(0, 2) == 0x0);  // 0.5 rounds to even: 0
  CHECK(sym.code(0, 3) == 0x2);  // 1.5 rounds to even: 2
  CHECK(sym.code(0, 4) == 0xE);  // -2.5 rounds to even: -2
  // Asymmetric uint2 over [-1, 2]: scale 1, zero 1.
  const std::vector<float> v = {-1.0f, 0.0f, 1.0f, 2.0f};
  const QuantizedMatrix asym = lowbit::quantize_linear(
      MatrixView<const float>(v.data(), 1, 4),
      Scheme::asymmetric_int(2, Granularity::per_tensor(), ScalarFormat::f32));
  CHECK(asym.scale(0) == 1.0f);
  CHECK(asym.zero(0) == 1.0f);
  CHECK(asym.dequantize() == v);
  // The asymmetric range always includes 0, so an all-positive group keeps 0 exact.
  const std::vector<float> positive = {3.0f, 4.0f, 5.0f, 6.0f};
  const QuantizedMatrix pos = lowbit::quantize_linear(
      MatrixView<const float>(positive.data(), 1, 4),
      Scheme::asymmetric_int(3, Granularity::per_tensor(), ScalarFormat::f32));
  CHECK(pos.zero(0) == 0.0f);
}

TEST_CASE("scales are rounded up to their format so the range stays covered", "[quant][linear]") {
  // absmax / 7 = 0.1 / 7 is not an f16 value; the stored scale is the next f16 above it, so the
  // largest element needs no clipping.
  const std::vector<float> w = {0.1f, -0.05f, 0.02f};
  const QuantizedMatrix q = lowbit::quantize_linear(
      MatrixView<const float>(w.data(), 1, 3),
      Scheme::symmetric_int(4, Granularity::per_channel(), ScalarFormat::f16));
  CHECK(q.scale(0) >= 0.1f / 7.0f);
  CHECK(q.scale(0) == lowbit::round_scalar_up(ScalarFormat::f16, 0.1f / 7.0f));
  CHECK(q.code(0, 0) == 0x7);
}

TEST_CASE("strided views and both pack orders give the same values", "[quant][linear]") {
  const std::size_t rows = 6, cols = 45, stride = 64;
  const auto w = random_matrix(rows, stride, 4);
  Scheme scheme = Scheme::asymmetric_int(4, Granularity::per_group(16));
  const QuantizedMatrix low =
      lowbit::quantize_linear(MatrixView<const float>(w.data(), rows, cols, stride), scheme);
  scheme.pack_order = lowbit::PackOrder::awq_interleaved;
  const QuantizedMatrix awq =
      lowbit::quantize_linear(MatrixView<const float>(w.data(), rows, cols, stride), scheme);
  CHECK(low.dequantize() == awq.dequantize());
  CHECK(std::vector<std::uint32_t>(low.packed_codes().begin(), low.packed_codes().end()) !=
        std::vector<std::uint32_t>(awq.packed_codes().begin(), awq.packed_codes().end()));
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) CHECK(low.code(r, c) == awq.code(r, c));
}

TEST_CASE("shapes: one row, one column, empty", "[quant][linear]") {
  const auto w = random_matrix(1, 33, 5);
  for (const Granularity& g : granularities()) {
    const Scheme scheme = Scheme::asymmetric_int(3, g);
    const auto row =
        lowbit::quantize_linear(MatrixView<const float>(w.data(), 1, 33), scheme).dequantize();
    const auto col =
        lowbit::quantize_linear(MatrixView<const float>(w.data(), 33, 1), scheme).dequantize();
    CHECK(row.size() == 33);
    CHECK(col.size() == 33);
    const auto empty = lowbit::quantize_linear(MatrixView<const float>(nullptr, 0, 0), scheme);
    CHECK(empty.dequantize().empty());
  }
}

TEST_CASE("more bits never give a larger error on the same data", "[quant][linear]") {
  const auto w = random_matrix(16, 256, 6);
  double previous = std::numeric_limits<double>::infinity();
  for (int bits = 2; bits <= 8; ++bits) {
    const auto back =
        lowbit::quantize_linear(MatrixView<const float>(w.data(), 16, 256),
                                Scheme::asymmetric_int(bits, Granularity::per_group(64)))
            .dequantize();
    double squared = 0.0;
    for (std::size_t i = 0; i < w.size(); ++i) squared += (w[i] - back[i]) * (w[i] - back[i]);
    CHECK(squared < previous);
    previous = squared;
  }
}

TEST_CASE("codes and parameters match a direct implementation of the formulas", "[quant][linear]") {
  // An independent, deliberately plain transcription of the formulas in linear.hpp's header
  // comment (std::nearbyint under the default rounding mode is round-half-even).
  const std::size_t rows = 9, cols = 75;
  const auto w = random_matrix(rows, cols, 8);
  for (const Scheme& scheme : schemes(ScalarFormat::f16)) {
    INFO(scheme.to_string());
    const QuantizedMatrix q =
        lowbit::quantize_linear(MatrixView<const float>(w.data(), rows, cols), scheme);
    const bool symmetric = !scheme.has_zero_point();
    const int top = symmetric ? (1 << (scheme.bits - 1)) - 1 : (1 << scheme.bits) - 1;
    const int bottom = symmetric ? -(1 << (scheme.bits - 1)) : 0;
    for (std::size_t index = 0; index < q.scale_grid().size(); ++index) {
      // The elements this scale serves.
      std::vector<std::pair<std::size_t, std::size_t>> members;
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c)
          if (q.scale_index(r, c) == index) members.emplace_back(r, c);
      float lo = 0.0f, hi = 0.0f, absmax = 0.0f;
      for (auto [r, c] : members) {
        const float x = w[r * cols + c];
        lo = std::min(lo, x);
        hi = std::max(hi, x);
        absmax = std::max(absmax, std::abs(x));
      }
      const float raw_scale = symmetric ? absmax / static_cast<float>(top)
                                        : static_cast<float>((double(hi) - double(lo)) / top);
      const float scale = lowbit::round_scalar_up(ScalarFormat::f16, raw_scale);
      const float zero = symmetric ? 0.0f : std::nearbyint(-lo / scale);
      REQUIRE(q.scale(index) == scale);
      REQUIRE(q.zero(index) == zero);
      for (auto [r, c] : members) {
        const float level = std::clamp(std::nearbyint(w[r * cols + c] / scale + zero),
                                       static_cast<float>(bottom), static_cast<float>(top));
        const int expected = static_cast<int>(level) & ((1 << scheme.bits) - 1);
        REQUIRE(q.code(r, c) == expected);
      }
    }
  }
}
