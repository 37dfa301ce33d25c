#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <random>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/format/higgs_grids.hpp"

namespace {

double cdf(double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); }
double pdf(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi); }

// The exact MSE of a sorted 1-D grid with nearest-point cells for X ~ N(0, 1):
// sum over cells [a, b] of  int (x - c)^2 phi = P (1 + c^2) + a phi(a) - b phi(b) - 2 c (phi(a) -
// phi(b)).
double exact_mse_1d(std::span<const float> points) {
  const double inf = std::numeric_limits<double>::infinity();
  double total = 0;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const double c = points[i];
    const double a = i == 0 ? -inf : 0.5 * (static_cast<double>(points[i - 1]) + c);
    const double b = i + 1 == points.size() ? inf : 0.5 * (c + static_cast<double>(points[i + 1]));
    const double pa = std::isinf(a) ? 0 : pdf(a), pb = std::isinf(b) ? 0 : pdf(b);
    const double apa = std::isinf(a) ? 0 : a * pa, bpb = std::isinf(b) ? 0 : b * pb;
    total += (cdf(b) - cdf(a)) * (1 + c * c) + apa - bpb - 2 * c * (pa - pb);
  }
  return total;
}

int brute_force_nearest(const lowbit::HiggsGrid& grid, std::span<const float> v) {
  int best = 0;
  double best_d = std::numeric_limits<double>::infinity();
  for (int i = 0; i < grid.size; ++i) {
    double d = 0;
    for (int k = 0; k < grid.dimension; ++k) {
      const double diff = static_cast<double>(v[k]) - grid.points[i * grid.dimension + k];
      d += diff * diff;
    }
    if (d < best_d) best = i, best_d = d;
  }
  return best;
}

}  // namespace

TEST_CASE("1-D HIGGS grids are the Lloyd-Max quantizers of a Gaussian", "[higgs]") {
  // Max (1960) / Lloyd (1982) MSE for N(0, 1).
  CHECK(lowbit::higgs_grid(1, 2).mse == Approx(0.3634).epsilon(1e-3));
  CHECK(lowbit::higgs_grid(1, 4).mse == Approx(0.1175).epsilon(1e-3));
  CHECK(lowbit::higgs_grid(1, 8).mse == Approx(0.03455).epsilon(1e-3));
  CHECK(lowbit::higgs_grid(1, 16).mse == Approx(0.009501).epsilon(1e-3));
  // Known levels: 1 bit is ±sqrt(2/pi); 2 bits ±0.4528, ±1.5104.
  CHECK(lowbit::higgs_grid(1, 2).points[1] ==
        Approx(std::sqrt(2 / std::numbers::pi)).epsilon(1e-6));
  CHECK(lowbit::higgs_grid(1, 4).points[2] == Approx(0.4528).epsilon(1e-3));
  CHECK(lowbit::higgs_grid(1, 4).points[3] == Approx(1.5104).epsilon(1e-3));
  double previous = 1.5;  // above 3 * the 1-bit error
  for (int n = 2; n <= 256; n *= 2) {
    CAPTURE(n);
    const lowbit::HiggsGrid g = lowbit::higgs_grid(1, n);
    REQUIRE(g.dimension == 1);
    REQUIRE(g.size == n);
    REQUIRE(g.points.size() == static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) REQUIRE(g.points[i] == -g.points[n - 1 - i]);
    for (int i = 1; i < n; ++i) REQUIRE(g.points[i - 1] < g.points[i]);
    // The stored MSE is the exact MSE of the stored points.
    CHECK(exact_mse_1d(g.points) == Approx(g.mse).epsilon(1e-6));
    // Each extra bit divides the error by about 4 (by more at low rates).
    CHECK(g.mse < previous / 3.0);
    previous = g.mse;
    // Lloyd's conditions: each point is the centroid of its cell.
    const double inf = std::numeric_limits<double>::infinity();
    for (int i = 0; i < n; ++i) {
      const double a = i == 0 ? -inf : 0.5 * (static_cast<double>(g.points[i - 1]) + g.points[i]);
      const double b =
          i + 1 == n ? inf : 0.5 * (static_cast<double>(g.points[i]) + g.points[i + 1]);
      const double centroid =
          ((std::isinf(a) ? 0 : pdf(a)) - (std::isinf(b) ? 0 : pdf(b))) / (cdf(b) - cdf(a));
      REQUIRE(g.points[i] == Approx(centroid).margin(1e-6));
    }
  }
  // Panter-Dite high-rate asymptote sqrt(3) pi / 2 * 4^-b.
  CHECK(lowbit::higgs_grid(1, 256).mse * 65536 ==
        Approx(std::sqrt(3) * std::numbers::pi / 2).epsilon(0.02));
}

TEST_CASE("2-D HIGGS grids have the stored MSE on fresh samples", "[higgs]") {
  std::mt19937_64 rng(20240601);
  std::normal_distribution<double> normal;
  const std::size_t count = std::size_t{1} << 17;
  std::vector<float> samples(2 * count);
  for (float& v : samples) v = static_cast<float>(normal(rng));
  for (int n = 4; n <= 256; n *= 2) {
    CAPTURE(n);
    const lowbit::HiggsGrid g = lowbit::higgs_grid(2, n);
    REQUIRE(g.dimension == 2);
    REQUIRE(g.points.size() == static_cast<std::size_t>(2 * n));
    double sum = 0, sum_sq = 0;
    for (std::size_t s = 0; s < count; ++s) {
      const std::span<const float> v(samples.data() + 2 * s, 2);
      const int i = lowbit::higgs_nearest(g, v);
      const double dx = v[0] - static_cast<double>(g.points[2 * i]);
      const double dy = v[1] - static_cast<double>(g.points[2 * i + 1]);
      const double e = 0.5 * (dx * dx + dy * dy);
      sum += e;
      sum_sq += e * e;
    }
    const double mean = sum / count;
    const double standard_error = std::sqrt((sum_sq / count - mean * mean) / count);
    CAPTURE(mean, g.mse, standard_error);
    CHECK(std::abs(mean - g.mse) < 5 * standard_error);
    // At the same bits per dimension, the 2-D grid beats the 1-D one (n = m^2 against m), except
    // at 1 bit, where the optimum is the square, the product of the 1-D grids.
    const int root = static_cast<int>(std::lround(std::sqrt(n)));
    if (root * root == n && n > 4) CHECK(g.mse < 0.97 * lowbit::higgs_grid(1, root).mse);
  }
  CHECK(lowbit::higgs_grid(2, 16).mse < lowbit::higgs_grid(1, 4).mse);
  CHECK(lowbit::higgs_grid(2, 4).mse ==
        Approx(1 - 2 / std::numbers::pi).epsilon(2e-3));  // the square
}

TEST_CASE("higgs_nearest equals a brute-force nearest-neighbour search", "[higgs]") {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  for (int p : {1, 2})
    for (int n = 2; n <= 256; n *= 2) {
      if (p == 2 && n == 2) continue;
      const lowbit::HiggsGrid g = lowbit::higgs_grid(p, n);
      for (int t = 0; t < 2000; ++t) {
        float v[2];
        const float spread = t % 2 ? 1.0f : 3.0f;  // also far outside the grid
        for (int d = 0; d < p; ++d) v[d] = spread * normal(rng);
        const std::span<const float> view(v, static_cast<std::size_t>(p));
        REQUIRE(lowbit::higgs_nearest(g, view) == brute_force_nearest(g, view));
      }
      // A grid point maps to itself.
      for (int i = 0; i < n; ++i)
        REQUIRE(lowbit::higgs_nearest(g, g.points.subspan(static_cast<std::size_t>(i * p), p)) ==
                i);
    }
  // Ties go to the lowest index: 0 is halfway between the two middle points of a symmetric grid.
  const lowbit::HiggsGrid g4 = lowbit::higgs_grid(1, 4);
  const float zero = 0.0f;
  CHECK(lowbit::higgs_nearest(g4, std::span<const float>(&zero, 1)) == 1);
}

TEST_CASE("unsupported HIGGS grids and vector lengths throw", "[higgs]") {
  CHECK_THROWS_AS(lowbit::higgs_grid(1, 3), lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::higgs_grid(1, 512), lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::higgs_grid(2, 2), lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::higgs_grid(3, 64), lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::higgs_grid(0, 4), lowbit::invalid_argument);
  const lowbit::HiggsGrid g = lowbit::higgs_grid(2, 16);
  const float v[3] = {0, 0, 0};
  CHECK_THROWS_AS(lowbit::higgs_nearest(g, std::span<const float>(v, 1)), lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::higgs_nearest(g, std::span<const float>(v, 3)), lowbit::invalid_argument);
}
