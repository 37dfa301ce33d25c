#include "lowbit/quant/kmeans.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "lowbit/detail/parallel.hpp"
#include "lowbit/error.hpp"
#include "quant/kmeans_internal.hpp"

namespace lowbit {

namespace detail {

namespace {

/// A uniform double in [0, 1) from the top 53 bits of one draw.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

/// An index drawn with probability proportional to p[i] (total = sum of p, > 0).
std::size_t sample_index(const std::vector<double>& p, double total, std::mt19937_64& rng) {
  const double target = uniform01(rng) * total;
  double cumulative = 0.0;
  std::size_t last_positive = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (!(p[i] > 0.0)) continue;
    cumulative += p[i];
    last_positive = i;
    if (cumulative > target) return i;
  }
  return last_positive;  // rounding left the target beyond the sum
}

/// k-means++ seeding: the first center drawn in proportion to the points' weight, each next one
/// in proportion to its weighted squared distance from the nearest center so far (D^2 sampling).
/// When every point already coincides with a center (fewer distinct points than k), the rest
/// are drawn by weight again, so centers repeat.
std::vector<float> seed_centers(const KMeansData& data, std::size_t k, std::uint64_t seed,
                                const std::vector<float>& fallback) {
  const std::size_t n = data.count(), dim = data.dim();
  std::vector<float> centers(k * dim);
  for (std::size_t c = 0; c < k; ++c)
    std::copy(fallback.begin(), fallback.end(), &centers[c * dim]);
  if (n == 0) return centers;
  std::mt19937_64 rng(seed);
  std::vector<double> mass(n), nearest(n, std::numeric_limits<double>::infinity());
  double total_mass = 0.0;
  for (std::size_t i = 0; i < n; ++i) total_mass += mass[i] = data.mass(i);
  const auto draw_by_mass = [&]() -> std::size_t {
    if (total_mass > 0.0) return sample_index(mass, total_mass, rng);
    return std::min(n - 1, static_cast<std::size_t>(uniform01(rng) * static_cast<double>(n)));
  };
  data.copy_point(draw_by_mass(), fallback, &centers[0]);
  for (std::size_t c = 1; c < k; ++c) {
    double total = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      nearest[i] = std::min(nearest[i], data.distance(i, &centers[(c - 1) * dim]));
      total += nearest[i];
    }
    const std::size_t chosen = total > 0.0 ? sample_index(nearest, total, rng) : draw_by_mass();
    data.copy_point(chosen, fallback, &centers[c * dim]);
  }
  return centers;
}

/// Assigns every point to its nearest center; returns how many assignments changed. `errors`
/// receives each point's weighted squared distance.
std::size_t assign_points(const KMeansData& data, const std::vector<float>& centers, std::size_t k,
                          std::vector<std::uint32_t>& assignment, std::vector<double>& errors,
                          bool threaded) {
  const auto n = static_cast<std::ptrdiff_t>(data.count());
  const NearestCenter nearest(data, centers.data(), k);
  std::size_t changes = 0;
#pragma omp parallel for reduction(+ : changes) schedule(static) if (threaded)
  for (std::ptrdiff_t p = 0; p < n; ++p) {
    const auto i = static_cast<std::size_t>(p);
    double best = 0.0;
    const std::uint32_t a = nearest(i, best);
    errors[i] = best;
    if (a != assignment[i]) {
      assignment[i] = a;
      ++changes;
    }
  }
  return changes;
}

double sum_errors(const std::vector<double>& errors) {
  double total = 0.0;
  for (double e : errors) total += e;
  return total;
}

/// Lloyd's iterations from the given centers.
KMeansResult lloyd(const KMeansData& data, std::vector<float> centers, std::size_t k,
                   int max_iterations, const std::vector<float>& fallback, bool threaded) {
  const std::size_t n = data.count(), dim = data.dim();
  KMeansResult result;
  result.assignment.assign(n, std::numeric_limits<std::uint32_t>::max());
  std::vector<double> errors(n, 0.0);
  assign_points(data, centers, k, result.assignment, errors, threaded);
  result.history.push_back(sum_errors(errors));
  std::vector<double> sums(k * dim), totals(k * dim), mass(k);
  while (result.iterations < max_iterations) {
    // Update: each center to the weighted mean of its points, component by component.
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(totals.begin(), totals.end(), 0.0);
    std::fill(mass.begin(), mass.end(), 0.0);
    if (data.kind() == KMeansData::Weights::none) {
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t a = result.assignment[i];
        const float* x = data.point(i);
        for (std::size_t j = 0; j < dim; ++j) sums[a * dim + j] += static_cast<double>(x[j]);
        mass[a] += 1.0;
      }
      for (std::size_t c = 0; c < k; ++c)
        std::fill(&totals[c * dim], &totals[c * dim] + dim, mass[c]);
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t a = result.assignment[i];
        const float* x = data.point(i);
        for (std::size_t j = 0; j < dim; ++j) {
          const double w = data.weight(i, j);
          sums[a * dim + j] += w * static_cast<double>(x[j]);
          totals[a * dim + j] += w;
          mass[a] += w;
        }
      }
    }
    for (std::size_t c = 0; c < k; ++c) {
      if (mass[c] > 0.0) {
        for (std::size_t j = 0; j < dim; ++j)
          if (totals[c * dim + j] > 0.0)
            centers[c * dim + j] = static_cast<float>(sums[c * dim + j] / totals[c * dim + j]);
        continue;
      }
      // An empty cluster moves to the point worst served now (which then costs nothing more
      // for the next empty one); with no error left anywhere it stays where it is.
      const auto worst = std::max_element(errors.begin(), errors.end());
      if (worst == errors.end() || !(*worst > 0.0)) continue;
      const auto i = static_cast<std::size_t>(worst - errors.begin());
      data.copy_point(i, fallback, &centers[c * dim]);
      *worst = 0.0;
    }
    ++result.iterations;
    const std::size_t changes =
        assign_points(data, centers, k, result.assignment, errors, threaded);
    result.history.push_back(sum_errors(errors));
    if (changes == 0) {
      result.converged = true;
      break;
    }
  }
  result.error = result.history.back();
  result.centers = std::move(centers);
  return result;
}

void check_kmeans_options(const KMeansOptions& options) {
  if (options.clusters < 1)
    throw invalid_argument("kmeans: needs at least 1 cluster, not " +
                           std::to_string(options.clusters));
  if (options.max_iterations < 0)
    throw invalid_argument("kmeans: max_iterations must not be negative");
}

}  // namespace

double normal_pdf(double x) noexcept {
  if (std::isinf(x)) return 0.0;
  return std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi);
}

namespace {

/// P(X > x), accurate in the upper tail.
double normal_upper_tail(double x) noexcept { return 0.5 * std::erfc(x / std::numbers::sqrt2); }

/// x * pdf(x), 0 at the infinities.
double x_pdf(double x) noexcept { return std::isinf(x) ? 0.0 : x * normal_pdf(x); }

}  // namespace

double normal_mass(double a, double b) noexcept {
  if (a >= 0.0) return normal_upper_tail(a) - normal_upper_tail(b);
  if (b <= 0.0) return normal_upper_tail(-b) - normal_upper_tail(-a);
  return 1.0 - normal_upper_tail(-a) - normal_upper_tail(b);
}

}  // namespace detail

KMeansResult kmeans_from(std::span<const float> points, std::size_t dim,
                         std::span<const float> weights, std::span<const float> initial_centers,
                         const KMeansOptions& options) {
  detail::check_kmeans_options(options);
  const detail::KMeansData data(points, dim, weights);
  const auto k = static_cast<std::size_t>(options.clusters);
  if (initial_centers.size() != k * dim)
    throw invalid_argument("kmeans: " + std::to_string(initial_centers.size()) +
                           " initial center values for " + std::to_string(k) + " centers of " +
                           std::to_string(dim));
  return detail::lloyd(data, std::vector<float>(initial_centers.begin(), initial_centers.end()), k,
                       options.max_iterations, data.component_means(),
                       detail::worth_threads(data.count() * dim * k));
}

KMeansResult kmeans(std::span<const float> points, std::size_t dim, std::span<const float> weights,
                    const KMeansOptions& options) {
  detail::check_kmeans_options(options);
  const detail::KMeansData data(points, dim, weights);
  const auto k = static_cast<std::size_t>(options.clusters);
  const std::vector<float> fallback = data.component_means();
  return detail::lloyd(data, detail::seed_centers(data, k, options.seed, fallback), k,
                       options.max_iterations, fallback,
                       detail::worth_threads(data.count() * dim * k));
}

double gaussian_quantizer_mse(std::span<const double> levels) {
  if (levels.empty()) throw invalid_argument("gaussian_quantizer_mse: no levels");
  constexpr double inf = std::numeric_limits<double>::infinity();
  double total = 0.0;
  for (std::size_t i = 0; i < levels.size(); ++i) {
    const double a = i == 0 ? -inf : 0.5 * (levels[i - 1] + levels[i]);
    const double b = i + 1 == levels.size() ? inf : 0.5 * (levels[i] + levels[i + 1]);
    const double c = levels[i];
    const double m0 = detail::normal_mass(a, b);
    const double m1 = detail::normal_pdf(a) - detail::normal_pdf(b);
    const double m2 = m0 + detail::x_pdf(a) - detail::x_pdf(b);
    total += m2 - 2.0 * c * m1 + c * c * m0;  // integral of (x - c)^2 pdf over [a, b]
  }
  return total;
}

std::vector<double> lloyd_max_gaussian(int levels) {
  if (levels < 1 || levels > 256)
    throw invalid_argument("lloyd_max_gaussian: levels must be 1 to 256, not " +
                           std::to_string(levels));
  const auto n = static_cast<std::size_t>(levels);
  if (n == 1) return {0.0};
  constexpr double inf = std::numeric_limits<double>::infinity();
  // Start evenly spaced over about the range the extreme level ends up at.
  const double reach = std::sqrt(2.0 * std::log(static_cast<double>(n))) + 0.5;
  std::vector<double> c(n), boundary(n + 1);
  for (std::size_t i = 0; i < n; ++i)
    c[i] = reach * (2.0 * (static_cast<double>(i) + 0.5) / static_cast<double>(n) - 1.0);
  for (int iteration = 0; iteration < 2'000'000; ++iteration) {
    boundary[0] = -inf;
    boundary[n] = inf;
    for (std::size_t i = 1; i < n; ++i) boundary[i] = 0.5 * (c[i - 1] + c[i]);
    double change = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const double mass = detail::normal_mass(boundary[i], boundary[i + 1]);
      if (!(mass > 0.0)) continue;
      const double centroid =
          (detail::normal_pdf(boundary[i]) - detail::normal_pdf(boundary[i + 1])) / mass;
      change = std::max(change, std::abs(centroid - c[i]));
      c[i] = centroid;
    }
    if (change < 1e-13) break;
  }
  for (std::size_t i = 0; i < n / 2; ++i) {  // exact symmetry
    const double m = 0.5 * (c[n - 1 - i] - c[i]);
    c[i] = -m;
    c[n - 1 - i] = m;
  }
  if (n % 2 == 1) c[n / 2] = 0.0;
  return c;
}

double lloyd_max_gaussian_mse(int levels) {
  return gaussian_quantizer_mse(lloyd_max_gaussian(levels));
}

}  // namespace lowbit
