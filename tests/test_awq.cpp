#include <catch2/catch.hpp>

#include "support/random_data.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include <Eigen/Dense>

#include "lowbit/algo/awq.hpp"
#include "lowbit/quant/grid.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quant/microscaling.hpp"

using lowbit::AwqOptions;
using lowbit::AwqScaleResult;
using lowbit::Granularity;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;
using lowbit::ScalarFormat;
using lowbit::Scheme;

namespace {

/// A row-major matrix that owns its values.
struct Mat {
  std::size_t rows = 0, cols = 0;
  std::vector<float> v;

  Mat() = default;
  Mat(std::size_t r, std::size_t c, std::vector<float> values = {})
      : rows(r), cols(c), v(values.empty() ? std::vector<float>(r * c, 0.0f) : std::move(values)) {}
  float& operator()(std::size_t r, std::size_t c) { return v[r * cols + c]; }
  float operator()(std::size_t r, std::size_t c) const { return v[r * cols + c]; }
  MatrixView<const float> view() const { return {v.data(), rows, cols}; }
  MatrixView<float> view() { return {v.data(), rows, cols}; }
};

/// Calibration inputs [n, in]: N(0, 1), with the channels in `salient` multiplied by `factor`.
Mat inputs(std::size_t n, std::size_t in, std::uint32_t seed,
           const std::vector<std::size_t>& salient, float factor) {
  Mat x(n, in, lowbit::test::gaussian(n * in, seed, 1.0f));
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t j : salient) x(t, j) *= factor;
  return x;
}

/// ||X W^T - Xq Q^T||_F in double, for x, xq [n, in] and w, q [out, in].
double output_error(const Mat& x, const Mat& w, const Mat& xq, const std::vector<float>& q) {
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto map = [](const float* data, std::size_t rows, std::size_t cols) {
    return Eigen::Map<const RowMajor>(data, static_cast<Eigen::Index>(rows),
                                      static_cast<Eigen::Index>(cols))
        .cast<double>();
  };
  const Eigen::MatrixXd exact =
      map(x.v.data(), x.rows, x.cols) * map(w.v.data(), w.rows, w.cols).transpose();
  const Eigen::MatrixXd approx =
      map(xq.v.data(), xq.rows, xq.cols) * map(q.data(), w.rows, w.cols).transpose();
  return (exact - approx).norm();
}

/// AWQ's scale-search loss by direct evaluation, in double: the sum over the layers of the mean
/// over (samples, outputs) of (x W^T - (x / s) Q(W diag(s))^T)^2, Q by quantize_linear.
double direct_loss(const std::vector<Mat>& weights, const Mat& x, const std::vector<float>& s,
                   const Scheme& scheme) {
  double total = 0.0;
  for (const Mat& w : weights) {
    Mat scaled = w;
    for (std::size_t r = 0; r < w.rows; ++r)
      for (std::size_t j = 0; j < w.cols; ++j) scaled(r, j) = w(r, j) * s[j];
    const std::vector<float> q = lowbit::quantize_linear(scaled.view(), scheme).dequantize();
    double sum = 0.0;
    for (std::size_t t = 0; t < x.rows; ++t)
      for (std::size_t o = 0; o < w.rows; ++o) {
        double diff = 0.0;
        for (std::size_t j = 0; j < w.cols; ++j)
          diff += static_cast<double>(x(t, j)) * w(o, j) -
                  static_cast<double>(x(t, j)) / s[j] * q[o * w.cols + j];
        sum += diff * diff;
      }
    total += sum / (static_cast<double>(x.rows) * static_cast<double>(w.rows));
  }
  return total;
}

std::vector<MatrixView<const float>> views(const std::vector<Mat>& weights) {
  std::vector<MatrixView<const float>> out;
  for (const Mat& w : weights) out.push_back(w.view());
  return out;
}

/// (W diag(s), X diag(s)^-1).
std::pair<Mat, Mat> scaled_pair(const Mat& w, const Mat& x, const std::vector<float>& s) {
  Mat ws = w, xs = x;
  lowbit::scale_input_channels(ws.view(), s);
  lowbit::unscale_input_channels(xs.view(), s);
  return {ws, xs};
}

bool all_finite(const std::vector<float>& values) {
  return std::all_of(values.begin(), values.end(), [](float v) { return std::isfinite(v); });
}

}  // namespace

TEST_CASE("AWQ: the fake quantizer is quantize_linear then dequantize, clamped or not",
          "[algo][awq]") {
  const std::vector<Scheme> schemes = {
      Scheme::symmetric_int(4, Granularity::per_group(32)),
      Scheme::asymmetric_int(3, Granularity::per_group(32)),
      Scheme::asymmetric_int(4, Granularity::per_group(16), ScalarFormat::bf16),
      Scheme::symmetric_int(4, Granularity::per_group(32), ScalarFormat::e8m0),
      Scheme::asymmetric_int(4, Granularity::per_channel()),
      Scheme::symmetric_int(8, Granularity::per_tensor(), ScalarFormat::f32),
  };
  const std::size_t rows = 9, cols = 70;  // ragged last group of 6 (or 22)
  Mat w(rows, cols, lowbit::test::weights_with_outliers(rows, cols, 11));
  for (std::size_t c = 32; c < 64; ++c) w(3, c) = 0.0f;  // an all-zero group
  for (std::size_t c = 0; c < 32; ++c) w(5, c) = 0.03f;  // a constant group
  for (const Scheme& scheme : schemes) {
    INFO(scheme.to_string());
    const std::unique_ptr<lowbit::Grid> grid = lowbit::make_grid(scheme);
    std::vector<float> fake(rows * cols);
    lowbit::detail::awq_fake_quantize(*grid, w.view(), {}, fake.data());
    CHECK(fake == lowbit::quantize_linear(w.view(), scheme).dequantize());

    // Clamped to 70% of each group's absmax: the same as clipping a copy first.
    std::vector<float> max_values = lowbit::detail::awq_group_absmax(w.view(), scheme);
    for (float& m : max_values) m *= 0.7f;
    lowbit::detail::awq_fake_quantize(*grid, w.view(), max_values, fake.data());
    Mat clipped = w;
    lowbit::apply_clip(clipped.view(), max_values, scheme);
    CHECK(fake == lowbit::quantize_linear(clipped.view(), scheme).dequantize());
    CHECK(clipped.v != w.v);
  }
}

TEST_CASE("AWQ: input and weight means and the scales formula, by hand", "[algo][awq]") {
  // x_mean = (2, 2, 0.5).
  const Mat x(2, 3, {1.0f, -2.0f, 0.5f, -3.0f, 2.0f, -0.5f});
  const std::vector<float> x_mean = lowbit::awq_input_means(x.view());
  CHECK(x_mean == std::vector<float>{2.0f, 2.0f, 0.5f});

  // Per channel: |w| / (row absmax + 1e-6), averaged over the rows of both weights.
  const Mat a(1, 3, {1.0f, -2.0f, 4.0f});  // 0.25, 0.5, 1
  const Mat b(1, 3, {-2.0f, 2.0f, 1.0f});  // 1, 1, 0.5
  const std::vector<Mat> layers = {a, b};
  const auto group = views(layers);
  const Scheme channel = Scheme::asymmetric_int(4, Granularity::per_channel());
  const std::vector<float> w_mean = lowbit::awq_weight_means(group, channel);
  const double e = 1e-6;
  const std::vector<double> expected_w = {(1 / (4 + e) + 2 / (2 + e)) / 2,
                                          (2 / (4 + e) + 2 / (2 + e)) / 2,
                                          (4 / (4 + e) + 1 / (2 + e)) / 2};
  for (std::size_t j = 0; j < 3; ++j) CHECK(w_mean[j] == Approx(expected_w[j]).epsilon(1e-7));

  // Groups of 2 with a ragged last group of 1: (1, -2 | 4) -> 0.5, 1 | 1.
  const Mat c(1, 3, {1.0f, -2.0f, 4.0f});
  const std::vector<Mat> single = {c};
  const std::vector<float> grouped =
      lowbit::awq_weight_means(views(single), Scheme::symmetric_int(4, Granularity::per_group(2)));
  CHECK(grouped[0] == Approx(1 / (2 + e)).epsilon(1e-7));
  CHECK(grouped[1] == Approx(2 / (2 + e)).epsilon(1e-7));
  CHECK(grouped[2] == Approx(4 / (4 + e)).epsilon(1e-7));

  // Ratio 0 with duo scaling: s = 1 / (w_mean + 1e-4), normalised by sqrt(max * min).
  const double w0 = 0.625, w1 = 0.75, w2 = 0.75;  // w_mean up to the 1e-6
  const std::vector<float> wm = {0.625f, 0.75f, 0.75f};
  {
    const std::vector<float> s = lowbit::awq_scales(x_mean, wm, 0.0);
    const double r0 = 1 / (w0 + 1e-4), r1 = 1 / (w1 + 1e-4), r2 = 1 / (w2 + 1e-4);
    const double norm = std::sqrt(r0 * r1);  // max r0, min r1 = r2
    CHECK(s[0] == Approx(r0 / norm).epsilon(1e-6));
    CHECK(s[1] == Approx(r1 / norm).epsilon(1e-6));
    CHECK(s[2] == Approx(r2 / norm).epsilon(1e-6));
  }
  // Ratio 0.5: s = sqrt(x_mean) / (sqrt(w_mean) + 1e-4).
  {
    const std::vector<float> s = lowbit::awq_scales(x_mean, wm, 0.5);
    const double r0 = std::sqrt(2.0) / (std::sqrt(w0) + 1e-4);
    const double r1 = std::sqrt(2.0) / (std::sqrt(w1) + 1e-4);
    const double r2 = std::sqrt(0.5) / (std::sqrt(w2) + 1e-4);
    const double norm = std::sqrt(r0 * r2);  // max r0, min r2
    CHECK(s[0] == Approx(r0 / norm).epsilon(1e-6));
    CHECK(s[1] == Approx(r1 / norm).epsilon(1e-6));
    CHECK(s[2] == Approx(r2 / norm).epsilon(1e-6));
  }
  // Without duo scaling: s = x_mean^a, clamped at 1e-4, normalised.
  {
    const std::vector<float> s = lowbit::awq_scales(x_mean, wm, 0.25, false);
    const double r0 = std::pow(2.0, 0.25), r2 = std::pow(0.5, 0.25);
    const double norm = std::sqrt(r0 * r2);
    CHECK(s[0] == Approx(r0 / norm).epsilon(1e-6));
    CHECK(s[1] == Approx(r0 / norm).epsilon(1e-6));
    CHECK(s[2] == Approx(r2 / norm).epsilon(1e-6));
    // Ratio 0 without duo scaling is s = 1 everywhere.
    CHECK(lowbit::awq_scales(x_mean, wm, 0.0, false) == std::vector<float>(3, 1.0f));
  }
  // The 1e-4 clamp: a tiny x_mean at a high ratio.
  {
    const std::vector<float> xs = {1e-12f, 1.0f};
    const std::vector<float> ws = {1.0f, 1.0f};
    const std::vector<float> s = lowbit::awq_scales(xs, ws, 0.9);
    const double r0 = 1e-4, r1 = 1.0 / (1.0 + 1e-4);
    const double norm = std::sqrt(r0 * r1);
    CHECK(s[0] == Approx(r0 / norm).epsilon(1e-6));
    CHECK(s[1] == Approx(r1 / norm).epsilon(1e-6));
  }
}

TEST_CASE("AWQ: the scale search's loss is the direct evaluation; ratio 0 alone", "[algo][awq]") {
  const Scheme scheme = Scheme::asymmetric_int(3, Granularity::per_group(8));
  // n > in (the QR path) and n < in (the inputs as they are).
  for (const std::size_t n : {std::size_t{40}, std::size_t{5}}) {
    INFO("n = " << n);
    const std::size_t in = 16;
    const Mat x = inputs(n, in, 21, {3}, 10.0f);
    const std::vector<Mat> layers = {Mat(6, in, lowbit::test::weights_with_outliers(6, in, 22)),
                                     Mat(3, in, lowbit::test::weights_with_outliers(3, in, 23))};
    const auto group = views(layers);
    const std::vector<float> x_mean = lowbit::awq_input_means(x.view());
    const std::vector<float> w_mean = lowbit::awq_weight_means(group, scheme);

    AwqOptions only_zero;
    only_zero.scale_grid = 1;
    const AwqScaleResult zero = lowbit::awq_search_scales(group, x.view(), scheme, only_zero);
    CHECK(zero.grid_index == 0);
    CHECK(zero.ratio == 0.0);
    CHECK(zero.errors.size() == 1);
    CHECK(zero.scales == lowbit::awq_scales(x_mean, w_mean, 0.0));
    CHECK(zero.error == Approx(direct_loss(layers, x, zero.scales, scheme)).epsilon(1e-4));
    CHECK(zero.rtn_error ==
          Approx(direct_loss(layers, x, std::vector<float>(in, 1.0f), scheme)).epsilon(1e-4));

    // The full grid: every error is the direct loss of its scales; the first minimum wins.
    AwqOptions options;
    options.scale_grid = 5;
    const AwqScaleResult full = lowbit::awq_search_scales(group, x.view(), scheme, options);
    REQUIRE(full.errors.size() == 5);
    for (int i = 0; i < 5; ++i) {
      const std::vector<float> s = lowbit::awq_scales(x_mean, w_mean, i / 5.0);
      CHECK(full.errors[static_cast<std::size_t>(i)] ==
            Approx(direct_loss(layers, x, s, scheme)).epsilon(1e-4));
    }
    const auto first_min = std::min_element(full.errors.begin(), full.errors.end());
    CHECK(full.grid_index == static_cast<int>(first_min - full.errors.begin()));
    CHECK(full.error == *first_min);
    CHECK(full.ratio == full.grid_index / 5.0);
    CHECK(full.scales == lowbit::awq_scales(x_mean, w_mean, full.ratio));
  }
}

TEST_CASE("AWQ beats RTN on a layer group with salient input channels", "[algo][awq]") {
  // 1% of the input channels (5 of 512) with activations 20x larger than the rest; two layers
  // reading them (as w1 and w3 do).
  const std::size_t in = 512, n = 512;
  const Mat x = inputs(n, in, 31, {7, 100, 233, 377, 480}, 20.0f);
  const std::vector<Mat> layers = {Mat(96, in, lowbit::test::weights_with_outliers(96, in, 32)),
                                   Mat(64, in, lowbit::test::weights_with_outliers(64, in, 33))};
  const auto group = views(layers);

  for (const Scheme& scheme : {Scheme::asymmetric_int(4, Granularity::per_group(32)),
                               Scheme::asymmetric_int(3, Granularity::per_group(32))}) {
    INFO(scheme.to_string());
    const AwqScaleResult search = lowbit::awq_search_scales(group, x.view(), scheme);
    INFO("ratio " << search.ratio);
    CHECK(search.ratio > 0.0);
    CHECK(search.error < 0.7 * search.rtn_error);
    double rtn = 0.0, awq = 0.0;
    for (const Mat& w : layers) {
      const std::vector<float> q_rtn = lowbit::quantize_linear(w.view(), scheme).dequantize();
      const double e_rtn = output_error(x, w, x, q_rtn);
      const auto [ws, xs] = scaled_pair(w, x, search.scales);
      const QuantizedMatrix q = lowbit::quantize_awq(ws.view(), xs.view(), scheme);
      const double e_awq = output_error(x, w, xs, q.dequantize());
      AwqOptions no_clip;
      no_clip.clip = false;
      const double e_scaled = output_error(
          x, w, xs, lowbit::quantize_awq(ws.view(), xs.view(), scheme, no_clip).dequantize());
      INFO("RTN " << e_rtn << ", AWQ scales " << e_scaled << ", scales and clip " << e_awq);
      CHECK(e_awq < 0.7 * e_rtn);
      CHECK(e_awq <= e_scaled * 1.02);  // the clip does not make it worse (beyond noise)
      rtn += e_rtn * e_rtn;
      awq += e_awq * e_awq;
    }
    CHECK(std::sqrt(awq) < 0.7 * std::sqrt(rtn));
  }
}

TEST_CASE("AWQ: scaling preserves the layer's function", "[algo][awq]") {
  const std::size_t in = 64, n = 50, out = 24;
  const Mat x = inputs(n, in, 41, {2, 40}, 20.0f);
  const Mat w(out, in, lowbit::test::weights_with_outliers(out, in, 42));
  const Scheme scheme = Scheme::asymmetric_int(4, Granularity::per_group(32));
  const AwqScaleResult search = lowbit::awq_search_scales(w.view(), x.view(), scheme);
  REQUIRE(search.scales.size() == in);
  CHECK(*std::max_element(search.scales.begin(), search.scales.end()) > 1.5f);
  const auto [ws, xs] = scaled_pair(w, x, search.scales);
  double reference = 0.0;
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t o = 0; o < out; ++o) {
      double plain = 0.0, scaled = 0.0;
      for (std::size_t j = 0; j < in; ++j) {
        plain += static_cast<double>(x(t, j)) * w(o, j);
        scaled += static_cast<double>(xs(t, j)) * ws(o, j);
      }
      reference = std::max(reference, std::abs(plain));
      CHECK(scaled == Approx(plain).margin(1e-5));
    }
  CHECK(reference > 0.1);
}

TEST_CASE("AWQ clip search: candidates, the best by brute force, outliers, zero groups",
          "[algo][awq]") {
  // n = 1100, clip_samples = 512: every 2nd row (550 rows) is used. Column 3 is 0 on those rows
  // and 50 on the others, so only the right subsampling finds that group (0, 0)'s outlier at
  // column 3 is worth clipping. Columns 64.. (the ragged last group of 6) are never read.
  const std::size_t rows = 8, cols = 70, n = 1100;
  Mat x = inputs(n, cols, 51, {}, 1.0f);
  for (std::size_t t = 0; t < n; ++t) {
    x(t, 3) = t % 2 == 0 ? 0.0f : 50.0f;
    for (std::size_t c = 64; c < cols; ++c) x(t, c) = 0.0f;  // the last group's inputs: all 0
  }
  Mat w(rows, cols, lowbit::test::gaussian(rows * cols, 52));
  w(0, 3) = 1.0f;                                        // 50 sigma
  for (std::size_t c = 32; c < 64; ++c) w(2, c) = 0.0f;  // an all-zero group
  AwqOptions options;

  for (const Scheme& scheme : {Scheme::asymmetric_int(3, Granularity::per_group(32)),
                               Scheme::symmetric_int(4, Granularity::per_channel())}) {
    INFO(scheme.to_string());
    const std::vector<float> best = lowbit::awq_search_clip(w.view(), x.view(), scheme, options);
    const std::vector<float> absmax = lowbit::detail::awq_group_absmax(w.view(), scheme);
    REQUIRE(best.size() == scheme.scale_grid(rows, cols).size());
    REQUIRE(all_finite(best));
    const std::size_t group = scheme.granularity.kind == Granularity::Kind::group ? 32 : cols;
    const int candidates = 10;  // int(0.5 * 20)
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t start = 0; start < cols; start += group) {
        const std::size_t length = std::min(group, cols - start);
        const std::size_t k = r * ((cols + group - 1) / group) + start / group;
        INFO("row " << r << ", group at " << start);
        CHECK(best[k] <= absmax[k]);
        // Brute force: every candidate, the group clamped and quantized alone by quantize_linear.
        std::vector<double> errors;
        int chosen = -1;
        for (int i = 0; i < candidates; ++i) {
          const float m = lowbit::awq_clip_candidate(absmax[k], i, 20);
          if (m == best[k] && chosen < 0) chosen = i;
          Mat g(1, length);
          for (std::size_t c = 0; c < length; ++c) g(0, c) = std::clamp(w(r, start + c), -m, m);
          const std::vector<float> q = lowbit::quantize_linear(g.view(), scheme).dequantize();
          double error = 0.0;
          std::size_t used = 0;
          for (std::size_t t = 0; t < n; t += 2, ++used) {
            double dot = 0.0;
            for (std::size_t c = 0; c < length; ++c)
              dot += static_cast<double>(x(t, start + c)) * (w(r, start + c) - q[c]);
            error += dot * dot;
          }
          errors.push_back(error / static_cast<double>(used));
        }
        REQUIRE(chosen >= 0);  // one of the candidates
        const double least = *std::min_element(errors.begin(), errors.end());
        CHECK(errors[static_cast<std::size_t>(chosen)] <= least * (1.0 + 1e-4) + 1e-30);
      }
    if (scheme.granularity.kind == Granularity::Kind::group) {
      CHECK(best[0] < 0.75f * absmax[0]);  // the outlier, which the sampled inputs never read
      CHECK(best[2 * 3 + 1] == 0.0f);      // the all-zero group
      // Unread groups: every candidate's error is 0, and the first (no clipping) is kept.
      for (std::size_t r = 0; r < rows; ++r) CHECK(best[r * 3 + 2] == absmax[r * 3 + 2]);
      Mat clipped = w;
      lowbit::apply_clip(clipped.view(), best, scheme);
      for (std::size_t c = 32; c < 64; ++c) CHECK(clipped(2, c) == 0.0f);
      CHECK(clipped(0, 3) == best[0]);
      const std::vector<float> q = lowbit::quantize_awq(w.view(), x.view(), scheme).dequantize();
      CHECK(all_finite(q));
      CHECK(q == lowbit::quantize_linear(clipped.view(), scheme).dequantize());
    }
  }

  // Per tensor: one max value, one of the candidates.
  const Scheme tensor = Scheme::symmetric_int(8, Granularity::per_tensor(), ScalarFormat::f32);
  const std::vector<float> one = lowbit::awq_search_clip(w.view(), x.view(), tensor, options);
  REQUIRE(one.size() == 1);
  bool candidate = false;
  for (int i = 0; i < 10; ++i) candidate |= one[0] == lowbit::awq_clip_candidate(1.0f, i, 20);
  CHECK(candidate);

  // No candidates (max_shrink 0): the absmax, unclipped.
  AwqOptions none;
  none.max_shrink = 0.0f;
  const Scheme g32 = Scheme::asymmetric_int(3, Granularity::per_group(32));
  CHECK(lowbit::awq_search_clip(w.view(), x.view(), g32, none) ==
        lowbit::detail::awq_group_absmax(w.view(), g32));

  // An all-zero matrix: zeros, no NaN.
  const Mat zeros(4, 40);
  const Mat x40 = inputs(30, 40, 53, {}, 1.0f);
  const std::vector<float> zero_best =
      lowbit::awq_search_clip(zeros.view(), x40.view(), g32, options);
  CHECK(zero_best == std::vector<float>(4 * 2, 0.0f));
}

TEST_CASE("AWQ: dead input channels and all-zero weight columns", "[algo][awq]") {
  const std::size_t in = 64, n = 80;
  Mat x = inputs(n, in, 61, {10}, 20.0f);
  for (std::size_t t = 0; t < n; ++t) x(t, 5) = 0.0f;  // dead input
  std::vector<Mat> layers = {Mat(16, in, lowbit::test::weights_with_outliers(16, in, 62)),
                             Mat(8, in, lowbit::test::weights_with_outliers(8, in, 63))};
  for (Mat& w : layers)
    for (std::size_t r = 0; r < w.rows; ++r) w(r, 7) = 0.0f;  // zero in every weight
  const auto group = views(layers);
  const Scheme scheme = Scheme::asymmetric_int(4, Granularity::per_group(32));

  for (const bool duo : {true, false}) {
    AwqOptions options;
    options.duo_scaling = duo;
    const AwqScaleResult search = lowbit::awq_search_scales(group, x.view(), scheme, options);
    REQUIRE(search.scales.size() == in);
    CHECK(all_finite(search.scales));
    for (float s : search.scales) CHECK(s > 0.0f);
    for (double e : search.errors) CHECK(std::isfinite(e));
    CHECK(search.scales[5] == 1.0f);
    CHECK(search.scales[7] == 1.0f);

    // The other channels' scales are those of the group without the two degenerate channels.
    const std::vector<float> x_mean = lowbit::awq_input_means(x.view());
    const std::vector<float> w_mean = lowbit::awq_weight_means(group, scheme);
    std::vector<float> x_live, w_live;
    for (std::size_t j = 0; j < in; ++j)
      if (j != 5 && j != 7) {
        x_live.push_back(x_mean[j]);
        w_live.push_back(w_mean[j]);
      }
    const std::vector<float> live = lowbit::awq_scales(x_live, w_live, search.ratio, duo);
    for (std::size_t j = 0, k = 0; j < in; ++j)
      if (j != 5 && j != 7) CHECK(search.scales[j] == live[k++]);

    for (const Mat& w : layers) {
      const auto [ws, xs] = scaled_pair(w, x, search.scales);
      const std::vector<float> q = lowbit::quantize_awq(ws.view(), xs.view(), scheme).dequantize();
      CHECK(all_finite(q));
      CHECK(std::isfinite(output_error(x, w, xs, q)));
    }
  }

  // All weights zero: every channel is degenerate, s = 1 at every ratio, all errors equal (0) and
  // the first ratio wins.
  const Mat zeros(4, in);
  const AwqScaleResult flat = lowbit::awq_search_scales(zeros.view(), x.view(), scheme);
  CHECK(flat.scales == std::vector<float>(in, 1.0f));
  CHECK(flat.grid_index == 0);
  CHECK(flat.error == 0.0);
  CHECK(flat.rtn_error == 0.0);
  CHECK(flat.errors == std::vector<double>(20, 0.0));

  // Everything dead: no input at all.
  const Mat silent(n, in);
  const AwqScaleResult dead = lowbit::awq_search_scales(group, silent.view(), scheme);
  CHECK(dead.scales == std::vector<float>(in, 1.0f));
  CHECK(dead.error == 0.0);
}

TEST_CASE("AWQ: bad shapes, NaN/Inf, unsupported schemes and options", "[algo][awq]") {
  const Scheme scheme = Scheme::asymmetric_int(4, Granularity::per_group(32));
  const Mat w(4, 64, lowbit::test::gaussian(4 * 64, 71));
  const Mat x(10, 64, lowbit::test::gaussian(10 * 64, 72, 1.0f));
  const Mat narrow(10, 32, lowbit::test::gaussian(10 * 32, 73, 1.0f));
  const Mat other(3, 32, lowbit::test::gaussian(3 * 32, 74));
  const std::vector<MatrixView<const float>> mixed = {w.view(), other.view()};
  const std::vector<MatrixView<const float>> none;

  using lowbit::invalid_argument;
  using lowbit::invalid_value;
  using lowbit::unsupported;
  CHECK_THROWS_AS(lowbit::awq_search_scales(none, x.view(), scheme), invalid_argument);
  CHECK_THROWS_AS(lowbit::awq_search_scales(mixed, x.view(), scheme), invalid_argument);
  CHECK_THROWS_AS(lowbit::awq_search_scales(w.view(), narrow.view(), scheme), invalid_argument);
  CHECK_THROWS_AS(lowbit::awq_search_scales(w.view(), Mat(0, 64).view(), scheme), invalid_argument);
  CHECK_THROWS_AS(lowbit::awq_search_scales(Mat(0, 64).view(), x.view(), scheme), invalid_argument);
  CHECK_THROWS_AS(lowbit::awq_search_clip(w.view(), narrow.view(), scheme), invalid_argument);
  CHECK_THROWS_AS(lowbit::awq_search_clip(w.view(), Mat(0, 64).view(), scheme), invalid_argument);
  CHECK_THROWS_AS(lowbit::quantize_awq(w.view(), narrow.view(), scheme), invalid_argument);

  Mat bad_x = x;
  bad_x(3, 5) = std::numeric_limits<float>::quiet_NaN();
  Mat bad_w = w;
  bad_w(1, 2) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(lowbit::awq_search_scales(w.view(), bad_x.view(), scheme), invalid_value);
  CHECK_THROWS_AS(lowbit::awq_search_scales(bad_w.view(), x.view(), scheme), invalid_value);
  CHECK_THROWS_AS(lowbit::awq_search_clip(w.view(), bad_x.view(), scheme), invalid_value);
  CHECK_THROWS_AS(lowbit::awq_search_clip(bad_w.view(), x.view(), scheme), invalid_value);
  CHECK_THROWS_AS(lowbit::quantize_awq(bad_w.view(), x.view(), scheme), invalid_value);
  CHECK_THROWS_AS(lowbit::quantize_awq(w.view(), bad_x.view(), scheme), invalid_value);
  CHECK_THROWS_AS(lowbit::awq_input_means(bad_x.view()), invalid_value);
  try {
    lowbit::awq_search_scales(w.view(), bad_x.view(), scheme);
  } catch (const invalid_value& e) {
    CHECK_THAT(e.what(), Catch::Contains("NaN") && Catch::Contains("row 3, column 5"));
  }

  // NVFP4's tensor scale is fitted to the whole matrix (test_grid.cpp has the grids AWQ runs on).
  Scheme double_quant = Scheme::symmetric_int(4, Granularity::per_group(32), ScalarFormat::f32);
  double_quant.double_quant_block = 64;
  for (const Scheme& s : {lowbit::nvfp4_scheme(), double_quant}) {
    INFO(s.to_string());
    CHECK_THROWS_AS(lowbit::awq_search_scales(w.view(), x.view(), s), unsupported);
    CHECK_THROWS_AS(lowbit::awq_search_clip(w.view(), x.view(), s), unsupported);
    CHECK_THROWS_AS(lowbit::quantize_awq(w.view(), x.view(), s), unsupported);
  }
  Scheme invalid = scheme;
  invalid.bits = 9;
  CHECK_THROWS_AS(lowbit::awq_search_scales(w.view(), x.view(), invalid), invalid_argument);

  AwqOptions options;
  options.scale_grid = 0;
  CHECK_THROWS_AS(lowbit::awq_search_scales(w.view(), x.view(), scheme, options), invalid_argument);
  options = {};
  options.clip_samples = 0;
  CHECK_THROWS_AS(lowbit::awq_search_clip(w.view(), x.view(), scheme, options), invalid_argument);
  options = {};
  options.max_shrink = 1.5f;
  CHECK_THROWS_AS(lowbit::quantize_awq(w.view(), x.view(), scheme, options), invalid_argument);
  options = {};
  options.clip_grid = 0;
  CHECK_THROWS_AS(lowbit::awq_search_clip(w.view(), x.view(), scheme, options), invalid_argument);

  // Without the clip, quantize_awq needs no samples, only the width; it is RTN.
  AwqOptions no_clip;
  no_clip.clip = false;
  CHECK(lowbit::quantize_awq(w.view(), Mat(0, 64).view(), scheme, no_clip).dequantize() ==
        lowbit::quantize_linear(w.view(), scheme).dequantize());

  Mat target = w;
  CHECK_THROWS_AS(lowbit::apply_clip(target.view(), std::vector<float>(3, 1.0f), scheme),
                  invalid_argument);
  CHECK_THROWS_AS(lowbit::apply_clip(target.view(), std::vector<float>(8, -1.0f), scheme),
                  invalid_value);
  CHECK_THROWS_AS(
      lowbit::apply_clip(target.view(),
                         std::vector<float>(8, std::numeric_limits<float>::quiet_NaN()), scheme),
      invalid_value);
  CHECK(target.v == w.v);

  const std::vector<float> two(2, 1.0f), three(3, 1.0f);
  CHECK_THROWS_AS(lowbit::awq_scales(two, three, 0.5), invalid_argument);
  CHECK_THROWS_AS(lowbit::awq_scales(two, two, 1.5), invalid_argument);
  CHECK_THROWS_AS(lowbit::awq_scales(two, std::vector<float>{1.0f, -1.0f}, 0.5), invalid_value);
  CHECK_THROWS_AS(lowbit::scale_input_channels(target.view(), std::vector<float>(64, 0.0f)),
                  invalid_value);
  CHECK_THROWS_AS(lowbit::unscale_input_channels(target.view(), three), invalid_argument);
}
