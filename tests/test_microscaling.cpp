#include <catch2/catch.hpp>

#include "support/random_data.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "lowbit/quant/microscaling.hpp"
#include "lowbit/quant/nf4.hpp"

using lowbit::ElementFormat;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;

namespace {

// --- A direct reference, written plainly: brute-force nearest representable values. ---

float element_value(ElementFormat format, unsigned code) {
  switch (format) {
    case ElementFormat::fp4_e2m1:
      return lowbit::float4_e2m1::from_bits(static_cast<std::uint8_t>(code)).to_float();
    case ElementFormat::fp8_e4m3:
      return lowbit::float8_e4m3::from_bits(static_cast<std::uint8_t>(code)).to_float();
    default:
      return lowbit::float8_e5m2::from_bits(static_cast<std::uint8_t>(code)).to_float();
  }
}

// The code nearest to y among the finite codes of y's sign, ties to the even code (even
// significand), beyond the largest finite value: the largest (saturation).
std::uint8_t nearest_code(ElementFormat format, float y) {
  const unsigned count = format == ElementFormat::fp4_e2m1 ? 16 : 256;
  const unsigned sign = count / 2;
  const bool negative = std::signbit(y);
  double best_distance = std::numeric_limits<double>::infinity();
  unsigned best = 0;
  for (unsigned code = negative ? sign : 0; code < (negative ? count : sign); ++code) {
    const float v = element_value(format, code);
    if (!std::isfinite(v)) continue;
    const double distance = std::abs(static_cast<double>(v) - static_cast<double>(y));
    if (distance < best_distance || (distance == best_distance && (code & 1u) == 0)) {
      best_distance = distance;
      best = code;
    }
  }
  return static_cast<std::uint8_t>(best);
}

int emax_of(ElementFormat format) {
  return format == ElementFormat::fp4_e2m1 ? 2 : format == ElementFormat::fp8_e4m3 ? 8 : 15;
}

struct Reference {
  std::vector<std::uint8_t> codes;        // [rows, cols]
  std::vector<float> scales;              // per block, as stored
  std::vector<std::uint8_t> scale_codes;  // per block
  float tensor_scale = 1.0f;
  std::vector<float> reconstruction;
};

Reference reference_mx(const std::vector<float>& w, std::size_t rows, std::size_t cols,
                       ElementFormat format) {
  Reference ref;
  ref.codes.resize(rows * cols);
  ref.reconstruction.resize(rows * cols);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t start = 0; start < cols; start += 32) {
      const std::size_t end = std::min(start + 32, cols);
      float amax = 0.0f;
      for (std::size_t c = start; c < end; ++c) amax = std::max(amax, std::abs(w[r * cols + c]));
      int exponent = -127;
      if (amax > 0.0f) {
        int e = 0;
        std::frexp(amax, &e);  // amax = m * 2^e, m in [0.5, 1)
        exponent = std::clamp(e - 1 - emax_of(format), -127, 127);
      }
      const float x_scale = std::ldexp(1.0f, exponent);
      ref.scales.push_back(x_scale);
      ref.scale_codes.push_back(static_cast<std::uint8_t>(exponent + 127));
      for (std::size_t c = start; c < end; ++c) {
        const std::uint8_t code = nearest_code(format, w[r * cols + c] / x_scale);
        ref.codes[r * cols + c] = code;
        ref.reconstruction[r * cols + c] = element_value(format, code) * x_scale;
      }
    }
  return ref;
}

Reference reference_nvfp4(const std::vector<float>& w, std::size_t rows, std::size_t cols) {
  Reference ref;
  ref.codes.resize(rows * cols);
  ref.reconstruction.resize(rows * cols);
  float amax = 0.0f;
  for (float x : w) amax = std::max(amax, std::abs(x));
  ref.tensor_scale = amax == 0.0f ? 1.0f : std::max(amax / 2688.0f, 0x1p-149f);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t start = 0; start < cols; start += 16) {
      const std::size_t end = std::min(start + 16, cols);
      float block_amax = 0.0f;
      for (std::size_t c = start; c < end; ++c)
        block_amax = std::max(block_amax, std::abs(w[r * cols + c]));
      const float wanted = std::clamp(block_amax / 6.0f / ref.tensor_scale, 0.015625f, 448.0f);
      const std::uint8_t scale_code = nearest_code(ElementFormat::fp8_e4m3, wanted);
      const float scale = element_value(ElementFormat::fp8_e4m3, scale_code);
      ref.scales.push_back(scale);
      ref.scale_codes.push_back(scale_code);
      const float total = scale * ref.tensor_scale;
      for (std::size_t c = start; c < end; ++c) {
        const std::uint8_t code =
            total > 0.0f ? nearest_code(ElementFormat::fp4_e2m1, w[r * cols + c] / total) : 0;
        ref.codes[r * cols + c] = code;
        ref.reconstruction[r * cols + c] = element_value(ElementFormat::fp4_e2m1, code) * total;
      }
    }
  return ref;
}

void check_against(const QuantizedMatrix& q, const Reference& ref) {
  const std::size_t rows = q.rows(), cols = q.cols();
  REQUIRE(q.scale_bytes().size() == ref.scale_codes.size());
  for (std::size_t i = 0; i < ref.scale_codes.size(); ++i) {
    INFO("scale " << i);
    REQUIRE(q.scale_bytes()[i] == ref.scale_codes[i]);
    REQUIRE(std::bit_cast<std::uint32_t>(q.scale(i)) ==
            std::bit_cast<std::uint32_t>(ref.scales[i]));
  }
  REQUIRE(std::bit_cast<std::uint32_t>(q.tensor_scale()) ==
          std::bit_cast<std::uint32_t>(ref.tensor_scale));
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      INFO("row " << r << ", column " << c);
      REQUIRE(q.code(r, c) == ref.codes[r * cols + c]);
    }
  const std::vector<float> back = q.dequantize();
  for (std::size_t i = 0; i < back.size(); ++i) {
    INFO("element " << i);
    REQUIRE(std::bit_cast<std::uint32_t>(back[i]) ==
            std::bit_cast<std::uint32_t>(ref.reconstruction[i]));
  }
}

// Gaussian, heavy-tailed (Student t, 3 degrees of freedom), and a mix of special blocks.
using lowbit::test::gaussian;

using lowbit::test::heavy_tailed;

// Rows of 100 (ragged last blocks for both 16 and 32) with: an all-zero block, a block with one
// huge outlier, a block of float32 subnormals, values exactly on midpoints, and -0.
std::vector<float> special(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  std::vector<float> w = gaussian(rows * cols, seed);
  for (std::size_t r = 0; r < rows; ++r) {
    float* row = w.data() + r * cols;
    for (std::size_t c = 0; c < 32; ++c) row[c] = 0.0f;  // all-zero block (both block sizes)
    row[40] = 1e4f;                                      // a huge outlier
    for (std::size_t c = 64; c < 80; ++c)                // float32 subnormals
      row[c] = static_cast<float>(static_cast<int>(c) - 72) * 1e-40f;
    row[81] = -0.0f;
    row[85] = 0.25f;  // midpoints of e2m1 steps relative to the block scale
    row[86] = -0.75f;
    row[87] = 1.25f;
  }
  return w;
}

}  // namespace

TEST_CASE("MXFP4 and MXFP8 match the direct reference bit for bit", "[quant][microscaling]") {
  struct Case {
    std::size_t rows, cols;
    std::vector<float> w;
  };
  std::vector<Case> cases;
  cases.push_back({6, 256, gaussian(6 * 256, 1)});
  cases.push_back({5, 172, heavy_tailed(5 * 172, 2)});
  cases.push_back({4, 100, special(4, 100, 3)});
  cases.push_back({3, 7, gaussian(21, 4, 1e-39f)});  // a single short block of subnormals
  cases.push_back({2, 64, std::vector<float>(128, 0.0f)});
  for (const Case& c : cases) {
    const MatrixView<const float> view(c.w.data(), c.rows, c.cols);
    for (ElementFormat format :
         {ElementFormat::fp4_e2m1, ElementFormat::fp8_e4m3, ElementFormat::fp8_e5m2}) {
      INFO(lowbit::to_string(format) << " " << c.rows << "x" << c.cols);
      const QuantizedMatrix q = format == ElementFormat::fp4_e2m1
                                    ? lowbit::quantize_mxfp4(view)
                                    : lowbit::quantize_mxfp8(view, format);
      CHECK(q.scheme() == lowbit::mx_scheme(format));
      CHECK(q.scheme().scale_format == lowbit::ScalarFormat::e8m0);
      check_against(q, reference_mx(c.w, c.rows, c.cols, format));
    }
  }
}

TEST_CASE("MX scales follow the spec's shared exponent", "[quant][microscaling]") {
  // amax 6 -> floor(log2 6) = 2, minus emax 2: X = 1, the block is already on the e2m1 grid.
  std::vector<float> w = {6.0f, -4.0f, 3.0f, 0.5f, -0.0f, 1.5f};
  QuantizedMatrix q = lowbit::quantize_mxfp4(MatrixView<const float>(w.data(), 1, w.size()));
  CHECK(q.scale(0) == 1.0f);
  CHECK(q.dequantize() == w);
  // amax 7.9: still X = 1, and 7.9 saturates to 6 (no overflow into a larger scale).
  w = {7.9f, 1.0f};
  q = lowbit::quantize_mxfp4(MatrixView<const float>(w.data(), 1, 2));
  CHECK(q.scale(0) == 1.0f);
  CHECK(q.dequantize()[0] == 6.0f);
  // E4M3: amax 500 -> 2^(8 - 8) = 1; 500 saturates to 448.
  w = {500.0f, -1.0f};
  q = lowbit::quantize_mxfp8(MatrixView<const float>(w.data(), 1, 2));
  CHECK(q.scale(0) == 1.0f);
  CHECK(q.dequantize()[0] == 448.0f);
  // The all-zero block: E8M0 code 0 (2^-127), zeros back exactly.
  w.assign(40, 0.0f);
  q = lowbit::quantize_mxfp4(MatrixView<const float>(w.data(), 1, 40));
  CHECK(q.scale_bytes()[0] == 0);
  CHECK(q.scale_bytes()[1] == 0);
  CHECK(q.dequantize() == w);
  // The largest float: 2^(127 - 2).
  w = {std::numeric_limits<float>::max()};
  q = lowbit::quantize_mxfp4(MatrixView<const float>(w.data(), 1, 1));
  CHECK(q.scale(0) == std::ldexp(1.0f, 125));
  CHECK(q.dequantize()[0] == std::ldexp(6.0f, 125));
}

TEST_CASE("NVFP4 matches the direct reference bit for bit", "[quant][microscaling][nvfp4]") {
  struct Case {
    std::size_t rows, cols;
    std::vector<float> w;
  };
  std::vector<Case> cases;
  cases.push_back({6, 256, gaussian(6 * 256, 11)});
  cases.push_back({5, 172, heavy_tailed(5 * 172, 12)});
  cases.push_back({4, 100, special(4, 100, 13)});
  cases.push_back({3, 7, gaussian(21, 14, 1e-39f)});  // subnormals: a subnormal tensor scale
  cases.push_back({2, 64, std::vector<float>(128, 0.0f)});
  cases.push_back({1, 3, {1e-44f, -3e-45f, 0.0f}});  // tensor scale underflows to 2^-149
  for (const Case& c : cases) {
    INFO(c.rows << "x" << c.cols);
    const QuantizedMatrix q =
        lowbit::quantize_nvfp4(MatrixView<const float>(c.w.data(), c.rows, c.cols));
    CHECK(q.scheme() == lowbit::nvfp4_scheme());
    CHECK(q.scheme().tensor_scale);
    check_against(q, reference_nvfp4(c.w, c.rows, c.cols));
  }
}

TEST_CASE("NVFP4 scales: tensor scale amax / 2688, block scales clamped to [2^-6, 448]",
          "[quant][microscaling][nvfp4]") {
  std::vector<float> w(32, 0.0f);
  w[0] = 2688.0f;  // tensor scale 1; block 0 scale 448; block 1 all zero: 2^-6
  const QuantizedMatrix q = lowbit::quantize_nvfp4(MatrixView<const float>(w.data(), 1, 32));
  CHECK(q.tensor_scale() == 1.0f);
  CHECK(q.scale(0) == 448.0f);
  CHECK(q.scale(1) == 0.015625f);
  CHECK(q.dequantize() == w);
  CHECK(q.bits_per_weight() == Approx(4.0 + 8.0 / 16 + 32.0 / 32));
}

TEST_CASE("microscaling quantizers reject NaN and Inf", "[quant][microscaling]") {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    std::vector<float> w(64, 0.5f);
    w[37] = bad;
    const MatrixView<const float> view(w.data(), 2, 32);
    CHECK_THROWS_AS(lowbit::quantize_mxfp4(view), lowbit::invalid_value);
    CHECK_THROWS_AS(lowbit::quantize_mxfp8(view), lowbit::invalid_value);
    CHECK_THROWS_AS(lowbit::quantize_nvfp4(view), lowbit::invalid_value);
    CHECK_THROWS_AS(lowbit::quantize_nf4(view), lowbit::invalid_value);
    CHECK_THROWS_WITH(lowbit::quantize_nvfp4(view), Catch::Contains("row 1, column 5"));
  }
  std::vector<float> w(4, 1.0f);
  CHECK_THROWS_AS(
      lowbit::quantize_mxfp8(MatrixView<const float>(w.data(), 1, 4), ElementFormat::fp4_e2m1),
      lowbit::invalid_argument);
}

TEST_CASE("quantization error on Gaussian weights: MXFP4 vs NVFP4 vs NF4",
          "[quant][microscaling][nf4]") {
  const std::size_t rows = 256, cols = 4096;
  const std::vector<float> w = gaussian(rows * cols, 21);
  const MatrixView<const float> view(w.data(), rows, cols);
  double variance = 0.0;
  for (float x : w) variance += static_cast<double>(x) * x;
  variance /= static_cast<double>(w.size());
  const auto relative_mse = [&](const QuantizedMatrix& q) {
    const std::vector<float> back = q.dequantize();
    double total = 0.0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      const double d = static_cast<double>(w[i]) - back[i];
      total += d * d;
    }
    return total / static_cast<double>(w.size()) / variance;
  };
  struct Row {
    const char* name;
    QuantizedMatrix q;
  };
  lowbit::Nf4Options dq;
  dq.double_quant = true;
  const Row results[] = {
      {"MXFP4 (e2m1 g32 e8m0)", lowbit::quantize_mxfp4(view)},
      {"NVFP4 (e2m1 g16 e4m3 + fp32)", lowbit::quantize_nvfp4(view)},
      {"NF4 g64 f32", lowbit::quantize_nf4(view)},
      {"NF4 g64 double-quant", lowbit::quantize_nf4(view, dq)},
      {"MXFP8 e4m3", lowbit::quantize_mxfp8(view)},
      {"MXFP8 e5m2", lowbit::quantize_mxfp8(view, ElementFormat::fp8_e5m2)},
  };
  double mse[6];
  for (std::size_t i = 0; i < 6; ++i) {
    mse[i] = relative_mse(results[i].q);
    std::printf("%-30s %.4f bits/weight  MSE/variance %.5f\n", results[i].name,
                results[i].q.bits_per_weight(), mse[i]);
  }
  CHECK(mse[1] < mse[0]);  // NVFP4's finer scales beat MXFP4's powers of two
  CHECK(mse[4] < mse[1]);
  CHECK(mse[4] < mse[5]);         // e4m3 has the finer mantissa
  CHECK(mse[3] < 1.05 * mse[2]);  // double quantization costs little
}
