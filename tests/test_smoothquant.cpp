#include <catch2/catch.hpp>

#include "support/random_data.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "lowbit/algo/calibration.hpp"
#include "lowbit/algo/smoothquant.hpp"
#include "lowbit/kernels/int8_reference.hpp"
#include "lowbit/quant/linear.hpp"

using lowbit::Granularity;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;
using lowbit::ScalarFormat;
using lowbit::Scheme;

namespace {

using lowbit::test::gaussian;

MatrixView<const float> view(const std::vector<float>& m, std::size_t rows, std::size_t cols) {
  return MatrixView<const float>(m.data(), rows, cols);
}
MatrixView<float> view(std::vector<float>& m, std::size_t rows, std::size_t cols) {
  return MatrixView<float>(m.data(), rows, cols);
}

// The reference's formula (mit-han-lab/smoothquant smooth.py), in double, with lowbit's rule for
// degenerate channels: s = 1 where the activation max or the weight max is 0.
std::vector<double> reference_scales(const std::vector<float>& act,
                                     const std::vector<std::vector<float>>& weights,
                                     const std::vector<std::size_t>& rows, double alpha) {
  const std::size_t in = act.size();
  std::vector<double> s(in);
  for (std::size_t j = 0; j < in; ++j) {
    double wmax = 0.0;
    for (std::size_t i = 0; i < weights.size(); ++i)
      for (std::size_t r = 0; r < rows[i]; ++r)
        wmax = std::max(wmax, std::abs(static_cast<double>(weights[i][r * in + j])));
    if (act[j] == 0.0f || wmax == 0.0) {
      s[j] = 1.0;
      continue;
    }
    s[j] = std::max(
        std::pow(static_cast<double>(act[j]), alpha) / std::pow(std::max(wmax, 1e-5), 1.0 - alpha),
        1e-5);
  }
  return s;
}

// x [batch, in] * w [out, in]^T in double.
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

// Activations like an LLM layer's input: N(0, 1) with `outliers` channels scaled by `factor`.
std::vector<float> activations_with_outlier_channels(std::size_t batch, std::size_t in,
                                                     std::size_t outliers, float factor,
                                                     std::uint32_t seed) {
  std::vector<float> x = gaussian(batch * in, seed, 1.0f);
  for (std::size_t j = 0; j < outliers; ++j) {
    const std::size_t channel = (j * 37 + 5) % in;
    for (std::size_t b = 0; b < batch; ++b) x[b * in + channel] *= factor;
  }
  return x;
}

// The signed int8 weight code of element (o, k).
int weight_code(const QuantizedMatrix& q, std::size_t o, std::size_t k) {
  return lowbit::from_code(q.code(o, k), 8, true);
}

}  // namespace

TEST_CASE("smoothquant_scales follows the reference formula over all weights sharing the input",
          "[smoothquant]") {
  const std::size_t in = 24;
  const std::vector<std::size_t> rows = {5, 3, 7};  // q, k, v of different widths
  std::vector<std::vector<float>> weights;
  for (std::size_t i = 0; i < rows.size(); ++i)
    weights.push_back(gaussian(rows[i] * in, 11 + static_cast<std::uint32_t>(i), 0.05f));
  // Column 2's max lives in the third matrix only, column 3's in the second.
  weights[2][4 * in + 2] = 0.9f;
  weights[1][1 * in + 3] = -1.3f;
  std::vector<float> act(in);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(0.05f, 80.0f);
  for (float& a : act) a = uniform(rng);

  std::vector<MatrixView<const float>> views;
  for (std::size_t i = 0; i < rows.size(); ++i) views.push_back(view(weights[i], rows[i], in));

  for (const float alpha : {0.0f, 0.25f, 0.5f, 0.75f, 1.0f}) {
    INFO("alpha " << alpha);
    const std::vector<float> s = lowbit::smoothquant_scales(act, views, alpha);
    const std::vector<double> expected = reference_scales(act, weights, rows, alpha);
    REQUIRE(s.size() == in);
    for (std::size_t j = 0; j < in; ++j) {
      INFO("channel " << j);
      CHECK(static_cast<double>(s[j]) == Approx(expected[j]).epsilon(1e-6));
    }
    if (alpha == 0.0f) {
      // s = 1 / max|W_j|: the weights' columns all end with absmax 1.
      CHECK(s[2] == Approx(1.0 / 0.9).epsilon(1e-6));
      CHECK(s[3] == Approx(1.0 / 1.3).epsilon(1e-6));
    }
    if (alpha == 1.0f)
      for (std::size_t j = 0; j < in; ++j) CHECK(s[j] == act[j]);  // s = max|X_j|
  }

  // One matrix: the single-weight overload and a span of one agree.
  const std::vector<float> one = lowbit::smoothquant_scales(act, views[0]);
  const std::vector<double> expected_one = reference_scales(act, {weights[0]}, {rows[0]}, 0.5);
  for (std::size_t j = 0; j < in; ++j)
    CHECK(static_cast<double>(one[j]) == Approx(expected_one[j]).epsilon(1e-6));
}

TEST_CASE("smoothquant_scales: degenerate channels get 1, tiny values are clamped as the reference",
          "[smoothquant]") {
  const std::size_t in = 6, out = 4;
  std::vector<float> w = gaussian(out * in, 21, 0.05f);
  std::vector<float> w2 = gaussian(2 * in, 22, 0.05f);
  for (std::size_t r = 0; r < out; ++r) {
    w[r * in + 1] = 0.0f;   // column 1 is zero in both matrices
    w[r * in + 2] = 0.0f;   // column 2 is zero in the first one only
    w[r * in + 4] = 1e-7f;  // column 4: weight max below the 1e-5 clamp
    w[r * in + 5] = 0.0f;   // column 5: both zero
  }
  for (std::size_t r = 0; r < 2; ++r) {
    w2[r * in + 1] = 0.0f;
    w2[r * in + 4] = 0.0f;
    w2[r * in + 5] = 0.0f;
  }
  w2[1 * in + 2] = 0.4f;
  const std::vector<float> act = {0.0f, 3.0f, 4.0f, 1e-12f, 9.0f, 0.0f};
  const std::array<MatrixView<const float>, 2> views = {view(w, out, in), view(w2, 2, in)};

  for (const float alpha : {0.0f, 0.5f, 1.0f}) {
    INFO("alpha " << alpha);
    const std::vector<float> s = lowbit::smoothquant_scales(act, views, alpha);
    for (float v : s) CHECK((std::isfinite(v) && v > 0.0f));
    CHECK(s[0] == 1.0f);  // zero activation
    CHECK(s[1] == 1.0f);  // zero weight column
    CHECK(s[5] == 1.0f);  // both
    // Column 2 reads max|W| = 0.4 from the second matrix.
    CHECK(s[2] == Approx(std::pow(4.0, alpha) / std::pow(0.4, 1.0 - alpha)).epsilon(1e-6));
    // Column 3: 1e-12^alpha / w^(1-alpha), clamped at 1e-5 unless alpha = 0.
    if (alpha > 0.0f) CHECK(s[3] == 1e-5f);
    // Column 4: the weight max 1e-7 counts as 1e-5.
    CHECK(s[4] == Approx(std::pow(9.0, alpha) / std::pow(1e-5, 1.0 - alpha)).epsilon(1e-6));
  }
  // The largest possible factors stay finite.
  const std::vector<float> huge = {std::numeric_limits<float>::max()};
  const std::vector<float> tiny_w = {1e-30f};
  for (const float alpha : {0.0f, 0.3f, 0.9f, 1.0f}) {
    const std::vector<float> s = lowbit::smoothquant_scales(huge, view(tiny_w, 1, 1), alpha);
    CHECK(std::isfinite(s[0]));
    CHECK(s[0] > 0.0f);
  }
}

TEST_CASE("smoothquant_scales validates its arguments", "[smoothquant]") {
  const std::size_t in = 4;
  const std::vector<float> w = gaussian(3 * in, 5, 0.05f);
  const std::vector<float> act = {1.0f, 2.0f, 3.0f, 4.0f};
  const MatrixView<const float> wv = view(w, 3, in);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();

  for (const float alpha : {-0.01f, 1.01f, nan, inf})
    CHECK_THROWS_AS(lowbit::smoothquant_scales(act, wv, alpha), lowbit::invalid_argument);
  CHECK_THROWS_WITH(lowbit::smoothquant_scales(act, wv, 2.0f), Catch::Contains("alpha"));
  CHECK_THROWS_AS(lowbit::smoothquant_scales(act, std::span<const MatrixView<const float>>()),
                  lowbit::invalid_argument);
  const std::vector<float> short_act = {1.0f, 2.0f, 3.0f};
  CHECK_THROWS_AS(lowbit::smoothquant_scales(short_act, wv), lowbit::invalid_argument);
  const std::vector<float> narrow = gaussian(2 * 3, 6, 0.05f);
  const std::array<MatrixView<const float>, 2> mismatched = {wv, view(narrow, 2, 3)};
  CHECK_THROWS_WITH(lowbit::smoothquant_scales(act, mismatched), Catch::Contains("weight 1"));

  for (const float bad : {nan, inf, -1.0f}) {
    std::vector<float> a = act;
    a[2] = bad;
    CHECK_THROWS_AS(lowbit::smoothquant_scales(a, wv), lowbit::invalid_value);
  }
  std::vector<float> w_bad = w;
  w_bad[1 * in + 3] = nan;
  CHECK_THROWS_WITH(lowbit::smoothquant_scales(act, view(w_bad, 3, in)),
                    Catch::Contains("NaN") && Catch::Contains("row 1, column 3"));
  w_bad[1 * in + 3] = -inf;
  CHECK_THROWS_AS(lowbit::smoothquant_scales(act, view(w_bad, 3, in)), lowbit::invalid_value);
}

TEST_CASE("SmoothQuant's rescaling preserves the layer's function", "[smoothquant]") {
  const std::size_t batch = 32, in = 96, out = 40;
  const std::vector<float> x = activations_with_outlier_channels(batch, in, 4, 50.0f, 31);
  const std::vector<float> w = lowbit::test::weights_with_outliers(out, in, 32);
  lowbit::InputStatistics stats(in);
  stats.add(view(x, batch, in));

  for (const float alpha : {0.0f, 0.5f, 0.85f, 1.0f}) {
    INFO("alpha " << alpha);
    const std::vector<float> s =
        lowbit::smoothquant_scales(stats.max_abs(), view(w, out, in), alpha);
    std::vector<float> xs = x, ws = w;
    lowbit::unscale_input_channels(view(xs, batch, in), s);
    lowbit::scale_input_channels(view(ws, out, in), s);
    for (std::size_t j = 0; j < in; ++j) {
      CHECK(ws[3 * in + j] == w[3 * in + j] * s[j]);
      CHECK(xs[5 * in + j] == x[5 * in + j] / s[j]);
    }
    const std::vector<double> y = matmul_double(x, w, batch, in, out);
    const std::vector<double> y_smoothed = matmul_double(xs, ws, batch, in, out);
    for (std::size_t b = 0; b < batch; ++b)
      for (std::size_t o = 0; o < out; ++o) {
        // Each product is off by the two roundings of x / s and w * s: at most 2^-23 relative.
        double magnitude = 0.0;
        for (std::size_t k = 0; k < in; ++k)
          magnitude += std::abs(static_cast<double>(x[b * in + k]) * w[o * in + k]);
        CHECK(std::abs(y_smoothed[b * out + o] - y[b * out + o]) <= 0x1p-22 * magnitude);
      }
    // The outlier channels really were flattened (alpha > 0): the largest activation shrinks.
    if (alpha >= 0.5f) {
      const float before = *std::max_element(stats.max_abs().begin(), stats.max_abs().end());
      float after = 0.0f;
      for (float v : xs) after = std::max(after, std::abs(v));
      CHECK(after < 0.5f * before);
    }
  }
}

TEST_CASE("scale_input_channels and unscale_input_channels check their scales", "[smoothquant]") {
  std::vector<float> m = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
  const std::vector<float> s = {2.0f, 0.5f, 4.0f};
  lowbit::scale_input_channels(view(m, 2, 3), s);
  CHECK(m == std::vector<float>{2.0f, 1.0f, 12.0f, 8.0f, 2.5f, 24.0f});
  lowbit::unscale_input_channels(view(m, 2, 3), s);
  CHECK(m == std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f});
  // A strided view: the padding is left alone.
  std::vector<float> padded = {1.0f, 1.0f, 1.0f, 9.0f, 1.0f, 1.0f, 1.0f, 9.0f};
  lowbit::scale_input_channels(MatrixView<float>(padded.data(), 2, 3, 4), s);
  CHECK(padded == std::vector<float>{2.0f, 0.5f, 4.0f, 9.0f, 2.0f, 0.5f, 4.0f, 9.0f});

  const std::vector<float> short_s = {1.0f, 2.0f};
  CHECK_THROWS_AS(lowbit::scale_input_channels(view(m, 2, 3), short_s), lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::unscale_input_channels(view(m, 2, 3), short_s), lowbit::invalid_argument);
  for (const float bad : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::infinity()}) {
    const std::vector<float> b = {1.0f, bad, 1.0f};
    CHECK_THROWS_AS(lowbit::scale_input_channels(view(m, 2, 3), b), lowbit::invalid_value);
    CHECK_THROWS_AS(lowbit::unscale_input_channels(view(m, 2, 3), b), lowbit::invalid_value);
  }
  CHECK(m == std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f});  // untouched by failures
}

TEST_CASE("quantize_per_token_int8: exact codes, ties to even, zero rows, clamping",
          "[smoothquant]") {
  const float dm = std::numeric_limits<float>::denorm_min();
  // Row 0: absmax 127, so scale 1 exactly and x / scale is x: ties go to the even level.
  // Row 1: all zero. Row 2: absmax 254, scale 2. Row 3: a subnormal row whose absmax / 127 rounds
  // down to the smallest subnormal, so 190 / 1 must be clamped to 127. Row 4: absmax / 127
  // underflows to 0; the scale becomes the smallest subnormal and the codes stay exact.
  const std::vector<float> x = {
      0.5f,        1.5f,         2.5f,        -0.5f,     -1.5f, -2.5f, 126.5f, -127.0f,  //
      0.0f,        0.0f,         0.0f,        0.0f,      0.0f,  0.0f,  0.0f,   0.0f,     //
      5.0f,        7.0f,         -3.0f,       254.0f,    1.0f,  -1.0f, 0.0f,   253.0f,   //
      190.0f * dm, -190.0f * dm, 100.0f * dm, 1.0f * dm, 0.0f,  0.0f,  0.0f,   0.0f,     //
      50.0f * dm,  -20.0f * dm,  0.0f,        0.0f,      0.0f,  0.0f,  0.0f,   0.0f,     //
  };
  const lowbit::Int8Rows q = lowbit::quantize_per_token_int8(view(x, 5, 8));
  REQUIRE(q.rows == 5);
  REQUIRE(q.cols == 8);
  REQUIRE(q.scales.size() == 5);
  REQUIRE(q.codes.size() == 40);
  CHECK(q.scales[0] == 1.0f);
  CHECK(q.scales[1] == 0.0f);
  CHECK(q.scales[2] == 2.0f);
  CHECK(q.scales[3] == dm);
  CHECK(q.scales[4] == dm);
  const auto codes = [&](std::size_t r) {
    return std::vector<int>(q.row(r).begin(), q.row(r).end());
  };
  CHECK(codes(0) == std::vector<int>{0, 2, 2, 0, -2, -2, 126, -127});
  CHECK(codes(1) == std::vector<int>{0, 0, 0, 0, 0, 0, 0, 0});
  CHECK(codes(2) == std::vector<int>{2, 4, -2, 127, 0, 0, 0, 126});  // 2.5 -> 2, 3.5 -> 4, 126.5
  CHECK(codes(3) == std::vector<int>{127, -127, 100, 1, 0, 0, 0, 0});
  CHECK(codes(4) == std::vector<int>{50, -20, 0, 0, 0, 0, 0, 0});

  // Scales are absmax / 127 in float, and every code is within [-127, 127].
  const std::vector<float> g = gaussian(7 * 33, 8, 3.0f);
  const lowbit::Int8Rows r = lowbit::quantize_per_token_int8(view(g, 7, 33));
  for (std::size_t b = 0; b < 7; ++b) {
    float absmax = 0.0f;
    for (std::size_t k = 0; k < 33; ++k) absmax = std::max(absmax, std::abs(g[b * 33 + k]));
    CHECK(r.scales[b] == absmax / 127.0f);
    for (std::size_t k = 0; k < 33; ++k) {
      const int code = r.row(b)[k];
      CHECK(code >= -127);
      CHECK(code <= 127);
      CHECK(static_cast<float>(code) == std::nearbyint(g[b * 33 + k] / r.scales[b]));
    }
  }
  // A strided view reads only its columns.
  std::vector<float> padded = {127.0f, 1.5f, 1e9f, -63.5f, 2.5f, 1e9f};
  const lowbit::Int8Rows p =
      lowbit::quantize_per_token_int8(MatrixView<const float>(padded.data(), 2, 2, 3));
  CHECK(p.scales == std::vector<float>{1.0f, 0.5f});
  CHECK(std::vector<int>(p.codes.begin(), p.codes.end()) == std::vector<int>{127, 2, -127, 5});

  std::vector<float> bad = x;
  bad[2 * 8 + 3] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(lowbit::quantize_per_token_int8(view(bad, 5, 8)),
                    Catch::Contains("NaN") && Catch::Contains("row 2, column 3"));
  bad[2 * 8 + 3] = -std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(lowbit::quantize_per_token_int8(view(bad, 5, 8)), lowbit::invalid_value);
}

TEST_CASE("w8a8_gemm is the integer formula, bit for bit, on ragged shapes", "[smoothquant]") {
  std::uint32_t seed = 100;
  for (const std::size_t batch : {1u, 3u, 7u})
    for (const std::size_t in : {1u, 13u, 100u})
      for (const std::size_t out : {1u, 5u, 17u}) {
        INFO("batch " << batch << ", in " << in << ", out " << out);
        const std::vector<float> x = gaussian(batch * in, ++seed, 2.0f);
        std::vector<float> w = lowbit::test::weights_with_outliers(out, in, ++seed);
        if (out == 5) std::fill(w.begin() + 2 * in, w.begin() + 3 * in, 0.0f);  // a zero row
        const QuantizedMatrix q = lowbit::quantize_w8a8_weights(view(w, out, in));
        REQUIRE(q.scheme() == lowbit::w8a8_weight_scheme());
        std::vector<float> y(batch * out, -1.0f);
        lowbit::w8a8_gemm(q, view(x, batch, in), view(y, batch, out));

        const lowbit::Int8Rows xq = lowbit::quantize_per_token_int8(view(x, batch, in));
        for (std::size_t o = 0; o < out; ++o) {
          float absmax = 0.0f;
          for (std::size_t k = 0; k < in; ++k) absmax = std::max(absmax, std::abs(w[o * in + k]));
          // quantize_linear stores a constant row (a single weight, here) as its own scale.
          REQUIRE(q.scale(o) == (in == 1 ? absmax : absmax / 127.0f));
        }
        for (std::size_t b = 0; b < batch; ++b)
          for (std::size_t o = 0; o < out; ++o) {
            std::int64_t acc = 0;
            for (std::size_t k = 0; k < in; ++k)
              acc += std::int64_t{xq.row(b)[k]} * weight_code(q, o, k);
            const double expected = static_cast<double>(acc) * static_cast<double>(xq.scales[b]) *
                                    static_cast<double>(q.scale(o));
            CHECK(y[b * out + o] == static_cast<float>(expected));
          }
      }
}

TEST_CASE("w8a8_gemm is within the int8 step sizes of the float product", "[smoothquant]") {
  const std::size_t batch = 7, in = 203, out = 31;
  const std::vector<float> x = activations_with_outlier_channels(batch, in, 3, 20.0f, 41);
  const std::vector<float> w = lowbit::test::heavy_tailed(out * in, 42);
  const QuantizedMatrix q = lowbit::quantize_w8a8_weights(view(w, out, in));
  std::vector<float> y(batch * out);
  lowbit::w8a8_gemm(q, view(x, batch, in), view(y, batch, out));
  const lowbit::Int8Rows xq = lowbit::quantize_per_token_int8(view(x, batch, in));
  const std::vector<double> exact = matmul_double(x, w, batch, in, out);
  double worst_ratio = 0.0;
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t o = 0; o < out; ++o) {
      const double dx = xq.scales[b] / 2.0, dw = q.scale(o) / 2.0;
      double bound = 0.0, magnitude = 0.0;
      for (std::size_t k = 0; k < in; ++k) {
        const double xk = std::abs(static_cast<double>(x[b * in + k]));
        const double wk = std::abs(static_cast<double>(w[o * in + k]));
        bound += xk * dw + wk * dx + dx * dw;
        magnitude += (xk + dx) * (wk + dw);
      }
      const double err = std::abs(static_cast<double>(y[b * out + o]) - exact[b * out + o]);
      // The float rounding of the result (and of the scales) on top of the quantization bound.
      CHECK(err <= bound * (1.0 + 1e-4) + 1e-6 * magnitude);
      worst_ratio = std::max(worst_ratio, err / bound);
    }
  CHECK(worst_ratio > 0.0);  // the check above is not vacuous
}

TEST_CASE("w8a8_gemm refuses other schemes, wrong shapes and non-finite input", "[smoothquant]") {
  const std::size_t batch = 3, in = 16, out = 4;
  const std::vector<float> x = gaussian(batch * in, 51, 1.0f);
  const std::vector<float> w = gaussian(out * in, 52, 0.05f);
  std::vector<float> y(batch * out);
  const auto run = [&](const QuantizedMatrix& q) {
    lowbit::w8a8_gemm(q, view(x, batch, in), view(y, batch, out));
  };
  const MatrixView<const float> wv = view(w, out, in);

  // Other scale formats are fine: the codes and the stored scales are what is multiplied.
  CHECK_NOTHROW(run(lowbit::quantize_linear(
      wv, Scheme::symmetric_int(8, Granularity::per_channel(), ScalarFormat::f16))));
  CHECK_THROWS_WITH(
      run(lowbit::quantize_linear(wv, Scheme::symmetric_int(4, Granularity::per_channel()))),
      Catch::Contains("int4 sym channel"));
  for (const Scheme& scheme : {Scheme::symmetric_int(8, Granularity::per_group(8)),
                               Scheme::symmetric_int(8, Granularity::per_tensor()),
                               Scheme::asymmetric_int(8, Granularity::per_channel())})
    CHECK_THROWS_AS(run(lowbit::quantize_linear(wv, scheme)), lowbit::unsupported);
  QuantizedMatrix rotated = lowbit::quantize_w8a8_weights(wv);
  rotated.set_input_rotation(lowbit::HadamardRotation{8, 1, true});
  CHECK_THROWS_AS(run(rotated), lowbit::unsupported);

  const QuantizedMatrix q = lowbit::quantize_w8a8_weights(wv);
  std::vector<float> big(batch * (out + 1));
  CHECK_THROWS_AS(lowbit::w8a8_gemm(q, view(x, batch, in), view(big, batch, out + 1)),
                  lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::w8a8_gemm(q, view(x, batch, in), view(y, batch - 1, out)),
                  lowbit::invalid_argument);
  CHECK_THROWS_WITH(lowbit::w8a8_gemm(q, view(x, batch * 2, in / 2), view(y, batch * 2, out / 2)),
                    Catch::Contains("[6, 8]") && Catch::Contains("[4, 16]"));

  std::vector<float> bad = x;
  bad[in + 7] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(lowbit::w8a8_gemm(q, view(bad, batch, in), view(y, batch, out)),
                    Catch::Contains("Inf") && Catch::Contains("row 1, column 7"));

  // Past 2^17 input features int32 accumulation could overflow.
  const std::size_t wide = (std::size_t{1} << 17) + 1;
  const QuantizedMatrix wide_q(lowbit::w8a8_weight_scheme(), 1, wide);
  const std::vector<float> wide_x(wide, 1.0f);
  std::vector<float> wide_y(1);
  CHECK_THROWS_AS(lowbit::w8a8_gemm(wide_q, view(wide_x, 1, wide), view(wide_y, 1, 1)),
                  lowbit::unsupported);
}

TEST_CASE("SmoothQuant reduces W8A8 error on a layer with activation outlier channels",
          "[smoothquant]") {
  const std::size_t batch = 64, in = 256, out = 128;
  const std::vector<float> x = activations_with_outlier_channels(batch, in, 4, 50.0f, 61);
  const std::vector<float> w = gaussian(out * in, 62, 0.02f);
  const std::vector<double> exact = matmul_double(x, w, batch, in, out);
  const auto error_of = [&](const std::vector<float>& xs, const std::vector<float>& ws) {
    const QuantizedMatrix q = lowbit::quantize_w8a8_weights(view(ws, out, in));
    std::vector<float> y(batch * out);
    lowbit::w8a8_gemm(q, view(xs, batch, in), view(y, batch, out));
    double total = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) total += std::pow(y[i] - exact[i], 2);
    return std::sqrt(total);
  };
  const double plain = error_of(x, w);

  lowbit::InputStatistics stats(in);
  stats.add(view(x, batch, in));
  const std::vector<float> s = lowbit::smoothquant_scales(stats.max_abs(), view(w, out, in), 0.5f);
  std::vector<float> xs = x, ws = w;
  lowbit::unscale_input_channels(view(xs, batch, in), s);
  lowbit::scale_input_channels(view(ws, out, in), s);
  const double smoothed = error_of(xs, ws);
  INFO("error without smoothing " << plain << ", with " << smoothed);
  CHECK(smoothed < 0.5 * plain);
}
