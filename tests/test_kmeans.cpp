#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "lowbit/quant/kmeans.hpp"

using lowbit::KMeansOptions;
using lowbit::KMeansResult;

namespace {

// Standard normal samples by Box-Muller over mt19937_64, so the data is the same everywhere.
std::vector<float> gaussian(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> out(count);
  for (std::size_t i = 0; i < count; i += 2) {
    const double u1 = (static_cast<double>(rng() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    out[i] = static_cast<float>(r * std::cos(2.0 * std::numbers::pi * u2));
    if (i + 1 < count) out[i + 1] = static_cast<float>(r * std::sin(2.0 * std::numbers::pi * u2));
  }
  return out;
}

// Points around a few random cluster centers.
std::vector<float> clustered(std::size_t count, std::size_t dim, std::uint64_t seed) {
  const auto noise = gaussian(count * dim, seed);
  std::mt19937_64 rng(seed + 1);
  std::vector<float> middles(6 * dim);
  for (float& m : middles) m = static_cast<float>(rng() % 1000) / 100.0f - 5.0f;
  std::vector<float> points(count * dim);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t cluster = rng() % 6;
    for (std::size_t j = 0; j < dim; ++j)
      points[i * dim + j] = middles[cluster * dim + j] + 0.7f * noise[i * dim + j];
  }
  return points;
}

// The weighted squared distance, written out independently of the library.
double distance(const std::vector<float>& points, std::size_t dim,
                const std::vector<float>& weights, std::size_t i, const float* center) {
  double total = 0.0;
  for (std::size_t j = 0; j < dim; ++j) {
    double w = 1.0;
    if (weights.size() == points.size()) w = weights[i * dim + j];
    if (weights.size() * dim == points.size()) w = weights[i];
    const double diff = static_cast<double>(points[i * dim + j]) - center[j];
    total += w * diff * diff;
  }
  return total;
}

// Checks what a k-means result must satisfy, against brute force.
void check_result(const std::vector<float>& points, std::size_t dim,
                  const std::vector<float>& weights, const KMeansResult& result, std::size_t k) {
  const std::size_t n = points.size() / dim;
  REQUIRE(result.centers.size() == k * dim);
  REQUIRE(result.assignment.size() == n);
  for (float c : result.centers) REQUIRE(std::isfinite(c));
  // Assignments are nearest centers.
  double error = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t c = 0; c < k; ++c)
      best = std::min(best, distance(points, dim, weights, i, &result.centers[c * dim]));
    const double mine =
        distance(points, dim, weights, i, &result.centers[result.assignment[i] * dim]);
    REQUIRE(mine <= best * (1.0 + 1e-12));
    error += mine;
  }
  CHECK(result.error == Approx(error).epsilon(1e-9).margin(1e-12));
  // The error never increases.
  REQUIRE(result.history.size() == static_cast<std::size_t>(result.iterations) + 1);
  for (std::size_t t = 1; t < result.history.size(); ++t)
    REQUIRE(result.history[t] <= result.history[t - 1] * (1.0 + 1e-12) + 1e-300);
  // Once converged, centers are the weighted means of their points.
  if (!result.converged) return;
  std::vector<double> sums(k * dim, 0.0), totals(k * dim, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < dim; ++j) {
      double w = 1.0;
      if (weights.size() == points.size()) w = weights[i * dim + j];
      if (weights.size() * dim == points.size()) w = weights[i];
      sums[result.assignment[i] * dim + j] += w * points[i * dim + j];
      totals[result.assignment[i] * dim + j] += w;
    }
  for (std::size_t c = 0; c < k * dim; ++c)
    if (totals[c] > 0.0) REQUIRE(result.centers[c] == Approx(sums[c] / totals[c]).margin(1e-5));
}

}  // namespace

TEST_CASE("k-means assigns nearest centers, centers are means, error decreases", "[kmeans]") {
  for (std::size_t dim : {1u, 2u, 4u}) {
    const auto points = clustered(700, dim, dim);
    const std::size_t n = points.size() / dim;
    std::mt19937_64 rng(dim + 10);
    std::vector<float> point_weights(n), component_weights(n * dim);
    for (float& w : point_weights) w = static_cast<float>(rng() % 100) / 10.0f;
    for (float& w : component_weights) w = static_cast<float>(rng() % 100) / 10.0f;
    for (const std::vector<float>& w : {std::vector<float>{}, point_weights, component_weights}) {
      for (int k : {1, 5, 16}) {
        INFO("dim " << dim << " k " << k << " weights " << w.size());
        KMeansOptions options;
        options.clusters = k;
        options.max_iterations = 200;
        options.seed = 7;
        const KMeansResult result = lowbit::kmeans(points, dim, w, options);
        CHECK(result.converged);
        check_result(points, dim, w, result, static_cast<std::size_t>(k));
        // Deterministic for a seed.
        const KMeansResult again = lowbit::kmeans(points, dim, w, options);
        CHECK(again.centers == result.centers);
        CHECK(again.assignment == result.assignment);
        // Stopping early still leaves nearest assignments and a monotone history.
        options.max_iterations = 2;
        check_result(points, dim, w, lowbit::kmeans(points, dim, w, options),
                     static_cast<std::size_t>(k));
      }
    }
  }
}

TEST_CASE("integer weights equal repeated points", "[kmeans]") {
  for (std::size_t dim : {1u, 2u, 4u}) {
    const auto points = clustered(300, dim, 20 + dim);
    const std::size_t n = points.size() / dim;
    std::mt19937_64 rng(dim);
    std::vector<float> weights(n), repeated;
    for (std::size_t i = 0; i < n; ++i) {
      weights[i] = static_cast<float>(1 + rng() % 4);
      for (int copy = 0; copy < static_cast<int>(weights[i]); ++copy)
        repeated.insert(repeated.end(), points.begin() + static_cast<std::ptrdiff_t>(i * dim),
                        points.begin() + static_cast<std::ptrdiff_t>((i + 1) * dim));
    }
    KMeansOptions options;
    options.clusters = 8;
    options.seed = 3;
    const KMeansResult a = lowbit::kmeans(points, dim, weights, options);
    const KMeansResult b = lowbit::kmeans(repeated, dim, {}, options);
    INFO("dim " << dim);
    REQUIRE(a.centers.size() == b.centers.size());
    for (std::size_t c = 0; c < a.centers.size(); ++c)
      CHECK(a.centers[c] == Approx(b.centers[c]).margin(1e-5));
    CHECK(a.error == Approx(b.error).epsilon(1e-9));
    CHECK(a.iterations == b.iterations);
    std::size_t at = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (int copy = 0; copy < static_cast<int>(weights[i]); ++copy)
        REQUIRE(a.assignment[i] == b.assignment[at++]);
  }
}

TEST_CASE("an empty cluster moves to the worst served point", "[kmeans]") {
  // Two tight clusters and an outlier; the third initial center is far from everything, so its
  // cluster is empty after the first assignment.
  const std::vector<float> points = {0.0f, 0.1f, -0.1f, 10.0f, 10.1f, 9.9f, 4.0f};
  const std::vector<float> initial = {0.0f, 10.0f, 1000.0f};
  KMeansOptions options;
  options.clusters = 3;
  const KMeansResult result = lowbit::kmeans_from(points, 1, {}, initial, options);
  check_result(points, 1, {}, result, 3);
  CHECK(result.converged);
  CHECK(result.centers[2] == 4.0f);  // the outlier, which the other two served worst
  CHECK(result.assignment[6] == 2u);
  CHECK(result.error == Approx(4 * 0.01).epsilon(1e-5));
  // In two dimensions with per-component weights: the same.
  const std::vector<float> points2 = {0, 0, 0.1f, 0, 5, 5, 5.1f, 5, -3, 4};
  const std::vector<float> initial2 = {0, 0, 5, 5, -100, -100};
  const KMeansResult result2 = lowbit::kmeans_from(points2, 2, {}, initial2, options);
  check_result(points2, 2, {}, result2, 3);
  CHECK(result2.centers[4] == -3.0f);
  CHECK(result2.centers[5] == 4.0f);
}

TEST_CASE("fewer distinct points than clusters give repeated centers, no NaN", "[kmeans]") {
  for (std::size_t dim : {1u, 2u, 4u}) {
    std::vector<float> points;
    for (int copy = 0; copy < 20; ++copy)
      for (int v = 0; v < 3; ++v)
        for (std::size_t j = 0; j < dim; ++j)
          points.push_back(static_cast<float>(v * 2 + j) - 1.5f);
    for (int k : {3, 4, 16}) {
      KMeansOptions options;
      options.clusters = k;
      options.seed = 11;
      const KMeansResult result = lowbit::kmeans(points, dim, {}, options);
      INFO("dim " << dim << " k " << k);
      check_result(points, dim, {}, result, static_cast<std::size_t>(k));
      CHECK(result.error == 0.0);
      for (std::size_t i = 0; i < points.size() / dim; ++i)
        for (std::size_t j = 0; j < dim; ++j)
          REQUIRE(result.centers[result.assignment[i] * dim + j] == points[i * dim + j]);
    }
  }
  // A single point, and no points at all.
  KMeansOptions options;
  options.clusters = 4;
  const std::vector<float> one = {2.5f, -1.0f};
  const KMeansResult single = lowbit::kmeans(one, 2, {}, options);
  for (std::size_t c = 0; c < 4; ++c) {
    CHECK(single.centers[c * 2] == 2.5f);
    CHECK(single.centers[c * 2 + 1] == -1.0f);
  }
  const KMeansResult none = lowbit::kmeans({}, 3, {}, options);
  CHECK(none.centers == std::vector<float>(12, 0.0f));
  CHECK(none.error == 0.0);
  // All weights zero: no NaN.
  const std::vector<float> zeros(2, 0.0f);
  const KMeansResult weightless = lowbit::kmeans(one, 2, zeros, options);
  for (float c : weightless.centers) CHECK(std::isfinite(c));
  CHECK(weightless.error == 0.0);
}

TEST_CASE("components of weight zero are absent", "[kmeans]") {
  // The second component of the last point is absent (a short vector): it must not pull the
  // center, whose second component is the mean of the present ones.
  const std::vector<float> points = {1.0f, 2.0f, 1.2f, 2.2f, 1.1f, 1000.0f};
  const std::vector<float> weights = {1, 1, 1, 1, 1, 0};
  KMeansOptions options;
  options.clusters = 1;
  const KMeansResult result = lowbit::kmeans(points, 2, weights, options);
  CHECK(result.centers[0] == Approx(1.1f));
  CHECK(result.centers[1] == Approx(2.1f));
  check_result(points, 2, weights, result, 1);
}

TEST_CASE("k-means rejects bad arguments", "[kmeans]") {
  const std::vector<float> points(6, 1.0f);
  KMeansOptions options;
  options.clusters = 0;
  CHECK_THROWS_AS(lowbit::kmeans(points, 2, {}, options), lowbit::invalid_argument);
  options.clusters = 2;
  CHECK_THROWS_AS(lowbit::kmeans(points, 4, {}, options), lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::kmeans(points, 0, {}, options), lowbit::invalid_argument);
  const std::vector<float> bad_count(2, 1.0f);
  CHECK_THROWS_AS(lowbit::kmeans(points, 2, bad_count, options), lowbit::invalid_argument);
  const std::vector<float> negative = {1.0f, -1.0f, 1.0f};
  CHECK_THROWS_AS(lowbit::kmeans(points, 2, negative, options), lowbit::invalid_value);
}

TEST_CASE("Lloyd-Max quantizers of the standard Gaussian", "[kmeans][lloyd-max]") {
  // Max (1960): MSE of 2, 4, 8 and 16 levels, to the digits his table gives (0.1175 for 4
  // levels is 0.11748 rounded, so the digits are checked to half a unit of the last one), and to
  // 1e-4 relative against one more digit.
  const std::vector<std::tuple<int, double, double, double>> known = {
      {2, 0.3634, 0.00005, 0.36338},
      {4, 0.1175, 0.00005, 0.11748},
      {8, 0.03455, 0.000005, 0.034548},
      {16, 0.009501, 0.0000005, 0.0095010}};
  for (const auto& [levels, table, half_unit, precise] : known) {
    INFO(levels << " levels");
    CHECK(std::abs(lowbit::lloyd_max_gaussian_mse(levels) - table) <= half_unit);
    CHECK(lowbit::lloyd_max_gaussian_mse(levels) == Approx(precise).epsilon(1e-4));
    const auto c = lowbit::lloyd_max_gaussian(levels);
    REQUIRE(c.size() == static_cast<std::size_t>(levels));
    for (std::size_t i = 0; i < c.size(); ++i) {
      CHECK(c[i] == -c[c.size() - 1 - i]);
      if (i > 0) CHECK(c[i] > c[i - 1]);
    }
    // A fixed point: every level is the centroid of its cell.
    for (std::size_t i = 0; i < c.size(); ++i) {
      const double inf = std::numeric_limits<double>::infinity();
      const double a = i == 0 ? -inf : 0.5 * (c[i - 1] + c[i]);
      const double b = i + 1 == c.size() ? inf : 0.5 * (c[i] + c[i + 1]);
      const double centroid = (lowbit::detail::normal_pdf(a) - lowbit::detail::normal_pdf(b)) /
                              lowbit::detail::normal_mass(a, b);
      CHECK(std::abs(centroid - c[i]) < 1e-12);
    }
  }
  // Closed forms: 2 levels at +-sqrt(2/pi), MSE 1 - 2/pi; 1 level at 0, MSE 1.
  CHECK(lowbit::lloyd_max_gaussian(2)[1] ==
        Approx(std::sqrt(2.0 / std::numbers::pi)).epsilon(1e-12));
  CHECK(lowbit::lloyd_max_gaussian_mse(2) == Approx(1.0 - 2.0 / std::numbers::pi).epsilon(1e-12));
  CHECK(lowbit::lloyd_max_gaussian_mse(1) == Approx(1.0).epsilon(1e-12));
  // 4 levels: +-0.4528, +-1.5104 (Max's table).
  CHECK(lowbit::lloyd_max_gaussian(4)[2] == Approx(0.4528).epsilon(1e-4));
  CHECK(lowbit::lloyd_max_gaussian(4)[3] == Approx(1.5104).epsilon(1e-4));
  CHECK_THROWS_AS(lowbit::lloyd_max_gaussian(0), lowbit::invalid_argument);
}

TEST_CASE("k-means on Gaussian data reaches the Lloyd-Max MSE", "[kmeans][lloyd-max]") {
  const std::size_t n = std::size_t{1} << 18;
  const auto samples = gaussian(n, 42);
  for (int bits : {2, 3, 4}) {
    KMeansOptions options;
    options.clusters = 1 << bits;
    options.max_iterations = 300;
    options.seed = 1;
    const KMeansResult result = lowbit::kmeans(samples, 1, {}, options);
    const double mse = result.error / static_cast<double>(n);
    const double optimum = lowbit::lloyd_max_gaussian_mse(1 << bits);
    // The in-sample MSE: the population MSE of the learned levels, exactly.
    std::vector<double> levels(result.centers.begin(), result.centers.end());
    std::sort(levels.begin(), levels.end());
    const double population = lowbit::gaussian_quantizer_mse(levels);
    WARN(bits << " bits: k-means MSE " << mse << " (population " << population << ", "
              << result.iterations << " iterations), Lloyd-Max " << optimum << ", ratio "
              << mse / optimum);
    CHECK(std::abs(mse / optimum - 1.0) < 0.01);
    CHECK(std::abs(population / optimum - 1.0) < 0.01);
  }
}
