#include <catch2/catch.hpp>

#include "support/random_data.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "lowbit/algo/llm_int8.hpp"
#include "lowbit/algo/smoothquant.hpp"
#include "lowbit/kernels/int8_reference.hpp"
#include "lowbit/quant/linear.hpp"

using lowbit::Granularity;
using lowbit::LlmInt8Options;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;
using lowbit::Scheme;

namespace {

using lowbit::test::gaussian;

MatrixView<const float> view(const std::vector<float>& m, std::size_t rows, std::size_t cols) {
  return MatrixView<const float>(m.data(), rows, cols);
}
MatrixView<float> view(std::vector<float>& m, std::size_t rows, std::size_t cols) {
  return MatrixView<float>(m.data(), rows, cols);
}

// N(0, 1) activations with every |x| kept at most `cap` (so below the threshold).
std::vector<float> bounded_activations(std::size_t batch, std::size_t in, std::uint32_t seed,
                                       float cap = 5.0f) {
  std::vector<float> x = gaussian(batch * in, seed, 1.0f);
  for (float& v : x) v = std::clamp(v, -cap, cap);
  return x;
}

std::vector<double> matmul_double(const std::vector<float>& x, const std::vector<float>& w,
                                  std::size_t batch, std::size_t in, std::size_t out) {
  std::vector<double> y(batch * out, 0.0);
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t o = 0; o < out; ++o) {
      double sum = 0.0;
      for (std::size_t k = 0; k < in; ++k)
        sum += static_cast<double>(x[b * in + k]) * static_cast<double>(w[o * in + k]);
      y[b * out + o] = sum;
    }
  return y;
}

double rms_error(const std::vector<float>& y, const std::vector<double>& exact) {
  double total = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) total += std::pow(y[i] - exact[i], 2);
  return std::sqrt(total / static_cast<double>(y.size()));
}

}  // namespace

TEST_CASE("LLM.int8() chooses its outlier columns per batch", "[llm_int8]") {
  const std::size_t batch = 4, in = 24, out = 6;
  const std::vector<float> w = gaussian(out * in, 1, 0.05f);
  const QuantizedMatrix q = lowbit::quantize_llm_int8_weights(view(w, out, in));
  REQUIRE(q.scheme() == lowbit::w8a8_weight_scheme());
  std::vector<float> y(batch * out);

  std::vector<float> a = bounded_activations(batch, in, 2);
  a[1 * in + 3] = 7.0f;
  a[2 * in + 17] = -9.0f;
  a[3 * in + 17] = 12.0f;
  a[0 * in + 20] = 6.0f;   // exactly the threshold: not an outlier (|x| > threshold)
  a[2 * in + 21] = -6.0f;  // likewise
  const lowbit::LlmInt8Stats sa = lowbit::llm_int8_gemm(q, view(a, batch, in), view(y, batch, out));
  CHECK(sa.outlier_columns == std::vector<std::size_t>{3, 17});
  CHECK(sa.outlier_count() == 2);
  CHECK(lowbit::llm_int8_outlier_columns(view(a, batch, in)) == sa.outlier_columns);

  // Another batch through the same weights has its own outlier columns.
  std::vector<float> b = bounded_activations(batch, in, 3);
  b[0 * in + 5] = 6.5f;
  const lowbit::LlmInt8Stats sb = lowbit::llm_int8_gemm(q, view(b, batch, in), view(y, batch, out));
  CHECK(sb.outlier_columns == std::vector<std::size_t>{5});

  // The threshold moves the selection; a single row is a batch too.
  CHECK(lowbit::llm_int8_outlier_columns(view(a, batch, in), LlmInt8Options{5.5f}) ==
        std::vector<std::size_t>{3, 17, 20, 21});
  CHECK(lowbit::llm_int8_outlier_columns(view(a, batch, in), LlmInt8Options{10.0f}) ==
        std::vector<std::size_t>{17});
  std::vector<float> y1(out);
  CHECK(lowbit::llm_int8_gemm(q, MatrixView<const float>(a.data() + in, 1, in), view(y1, 1, out))
            .outlier_columns == std::vector<std::size_t>{3});
}

TEST_CASE("LLM.int8() without outliers is W8A8 with per-row scales over all columns",
          "[llm_int8]") {
  for (const std::size_t batch : {1u, 3u, 7u})
    for (const std::size_t in : {1u, 13u, 70u}) {
      const std::size_t out = 9;
      INFO("batch " << batch << ", in " << in);
      const std::uint32_t seed = static_cast<std::uint32_t>(batch * 100 + in);
      const std::vector<float> x = bounded_activations(batch, in, seed);
      const std::vector<float> w = lowbit::test::weights_with_outliers(out, in, seed + 1);
      const QuantizedMatrix q = lowbit::quantize_llm_int8_weights(view(w, out, in));
      std::vector<float> y(batch * out), expected(batch * out);
      const lowbit::LlmInt8Stats stats =
          lowbit::llm_int8_gemm(q, view(x, batch, in), view(y, batch, out));
      CHECK(stats.outlier_count() == 0);
      lowbit::w8a8_gemm(q, view(x, batch, in), view(expected, batch, out));
      CHECK(y == expected);

      // With outliers present but threshold = +inf: still pure vector-wise int8.
      std::vector<float> xo = x;
      xo[0] = 250.0f;
      LlmInt8Options none;
      none.threshold = std::numeric_limits<float>::infinity();
      CHECK(lowbit::llm_int8_gemm(q, view(xo, batch, in), view(y, batch, out), none)
                .outlier_count() == 0);
      lowbit::w8a8_gemm(q, view(xo, batch, in), view(expected, batch, out));
      CHECK(y == expected);
    }
}

TEST_CASE("LLM.int8() multiplies outlier columns in float against the dequantized int8 weights",
          "[llm_int8]") {
  const std::size_t batch = 5, in = 45, out = 11;
  std::vector<float> x = bounded_activations(batch, in, 21, 3.0f);
  for (std::size_t b = 0; b < batch; ++b) {
    x[b * in + 7] *= 40.0f;  // outlier columns with values both above and below the threshold
    x[b * in + 30] = 100.0f + static_cast<float>(b) * 0.3331f;
  }
  x[2 * in + 7] = 0.25f;
  const std::vector<float> w = lowbit::test::heavy_tailed(out * in, 22);
  const QuantizedMatrix q = lowbit::quantize_llm_int8_weights(view(w, out, in));
  const std::vector<float> wdq = q.dequantize();
  std::vector<float> y(batch * out);
  const lowbit::LlmInt8Stats stats =
      lowbit::llm_int8_gemm(q, view(x, batch, in), view(y, batch, out));
  REQUIRE(stats.outlier_columns == std::vector<std::size_t>{7, 30});

  // Independently: the int8 part from x with the outlier columns zeroed (whose row absmax is over
  // the other columns only), the float part in double against the dequantized weights.
  std::vector<float> inliers = x;
  for (std::size_t b = 0; b < batch; ++b) inliers[b * in + 7] = inliers[b * in + 30] = 0.0f;
  const lowbit::Int8Rows xq = lowbit::quantize_per_token_int8(view(inliers, batch, in));
  for (std::size_t b = 0; b < batch; ++b) {
    float absmax = 0.0f;
    for (std::size_t k = 0; k < in; ++k) absmax = std::max(absmax, std::abs(inliers[b * in + k]));
    REQUIRE(absmax <= 3.0f);
    REQUIRE(xq.scales[b] == absmax / 127.0f);
  }
  double worst_float_error = 0.0;
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t o = 0; o < out; ++o) {
      std::int64_t acc = 0;
      for (std::size_t k = 0; k < in; ++k)
        acc += std::int64_t{xq.row(b)[k]} * lowbit::from_code(q.code(o, k), 8, true);
      const double int8_part = static_cast<double>(acc) * xq.scales[b] * q.scale(o);
      double float_part = 0.0, magnitude = 0.0;
      for (const std::size_t k : stats.outlier_columns) {
        float_part += static_cast<double>(x[b * in + k]) * wdq[o * in + k];
        magnitude += std::abs(static_cast<double>(x[b * in + k]) * wdq[o * in + k]);
      }
      const double expected = int8_part + float_part;
      // One float rounding of the result: the outlier inputs themselves were not quantized (an
      // int8 step of x[b, 30] alone, 100 / 127 / 2, would be orders of magnitude more).
      CHECK(std::abs(y[b * out + o] - expected) <= 0x1p-23 * (std::abs(expected) + magnitude));
      worst_float_error = std::max(worst_float_error, std::abs(y[b * out + o] - expected));
    }
  CHECK(worst_float_error < 1e-5);
}

TEST_CASE("LLM.int8() error is far below plain int8 on inputs with huge outlier columns",
          "[llm_int8]") {
  const std::size_t batch = 16, in = 256, out = 64;
  std::vector<float> x = gaussian(batch * in, 31, 1.0f);
  for (const std::size_t channel : {9u, 77u, 140u, 201u})
    for (std::size_t b = 0; b < batch; ++b) x[b * in + channel] *= 60.0f;
  const std::vector<float> w = gaussian(out * in, 32, 0.02f);
  const QuantizedMatrix q = lowbit::quantize_llm_int8_weights(view(w, out, in));
  const std::vector<double> exact = matmul_double(x, w, batch, in, out);
  // Against the dequantized weights: the activation side of the error alone, which is what the
  // decomposition removes (the weights' own int8 error is common to both).
  const std::vector<double> exact_dq = matmul_double(x, q.dequantize(), batch, in, out);

  std::vector<float> y_int8(batch * out), y_mixed(batch * out);
  lowbit::w8a8_gemm(q, view(x, batch, in), view(y_int8, batch, out));
  const lowbit::LlmInt8Stats stats =
      lowbit::llm_int8_gemm(q, view(x, batch, in), view(y_mixed, batch, out));
  CHECK(stats.outlier_columns == std::vector<std::size_t>{9, 77, 140, 201});
  const double plain = rms_error(y_int8, exact), mixed = rms_error(y_mixed, exact);
  const double plain_dq = rms_error(y_int8, exact_dq), mixed_dq = rms_error(y_mixed, exact_dq);
  INFO("rms error against x w^T: vector-wise int8 " << plain << ", LLM.int8() " << mixed);
  INFO("against x dequantized(w)^T: vector-wise int8 " << plain_dq << ", LLM.int8() " << mixed_dq);
  CHECK(mixed < 0.3 * plain);
  CHECK(mixed_dq < 0.05 * plain_dq);
}

TEST_CASE("LLM.int8() validates the threshold, the input, the scheme and the shapes",
          "[llm_int8]") {
  const std::size_t batch = 3, in = 16, out = 4;
  std::vector<float> x = bounded_activations(batch, in, 41);
  const std::vector<float> w = gaussian(out * in, 42, 0.05f);
  const QuantizedMatrix q = lowbit::quantize_llm_int8_weights(view(w, out, in));
  std::vector<float> y(batch * out);
  const float nan = std::numeric_limits<float>::quiet_NaN();

  for (const float threshold : {0.0f, -1.0f, -std::numeric_limits<float>::infinity(), nan}) {
    INFO("threshold " << threshold);
    CHECK_THROWS_AS(lowbit::llm_int8_gemm(q, view(x, batch, in), view(y, batch, out),
                                          LlmInt8Options{threshold}),
                    lowbit::invalid_argument);
    CHECK_THROWS_AS(lowbit::llm_int8_outlier_columns(view(x, batch, in), LlmInt8Options{threshold}),
                    lowbit::invalid_argument);
  }
  CHECK_THROWS_WITH(
      lowbit::llm_int8_gemm(q, view(x, batch, in), view(y, batch, out), LlmInt8Options{0.0f}),
      Catch::Contains("threshold"));

  std::vector<float> bad = x;
  bad[2 * in + 9] = nan;
  CHECK_THROWS_WITH(lowbit::llm_int8_gemm(q, view(bad, batch, in), view(y, batch, out)),
                    Catch::Contains("NaN") && Catch::Contains("row 2, column 9"));
  bad[2 * in + 9] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(lowbit::llm_int8_gemm(q, view(bad, batch, in), view(y, batch, out)),
                  lowbit::invalid_value);
  CHECK_THROWS_AS(lowbit::llm_int8_outlier_columns(view(bad, batch, in)), lowbit::invalid_value);

  CHECK_THROWS_AS(lowbit::llm_int8_gemm(
                      lowbit::quantize_linear(
                          view(w, out, in), Scheme::asymmetric_int(8, Granularity::per_channel())),
                      view(x, batch, in), view(y, batch, out)),
                  lowbit::unsupported);
  CHECK_THROWS_AS(lowbit::llm_int8_gemm(
                      lowbit::quantize_linear(view(w, out, in),
                                              Scheme::symmetric_int(8, Granularity::per_group(4))),
                      view(x, batch, in), view(y, batch, out)),
                  lowbit::unsupported);
  CHECK_THROWS_AS(lowbit::llm_int8_gemm(q, view(x, batch, in / 2), view(y, batch, out)),
                  lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::llm_int8_gemm(q, view(x, batch, in), view(y, batch, out - 1)),
                  lowbit::invalid_argument);
}
