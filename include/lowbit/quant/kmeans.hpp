// k-means (Lloyd's algorithm with k-means++ seeding) over points of any dimension, with optional
// weights, and the Lloyd-Max quantizer of a standard Gaussian: the building blocks of learned
// codebooks.
//
// The objective is sum_i sum_j w_ij (x_ij - c_{a(i),j})^2. Weights may be absent (all 1), one per
// point (w_ij = w_i) or one per component; a component of weight 0 is absent: it neither pulls a
// center nor counts in the distance (how codebooks treat the missing tail of a short vector).
//
// Everything is deterministic for a seed: std::mt19937_64 and lowbit's own uniform draw (not the
// standard library's distributions, whose algorithms differ between implementations), and the
// results do not depend on the OpenMP thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/error.hpp"

namespace lowbit {

struct KMeansOptions {
  int clusters = 16;
  int max_iterations = 100;  // Lloyd updates at most; 0 = seeding and one assignment only
  std::uint64_t seed = 0;
};

struct KMeansResult {
  std::vector<float> centers;             // clusters x dim, center-major
  std::vector<std::uint32_t> assignment;  // the center of each point: its nearest, ties to lowest
  double error = 0.0;                     // the objective of centers and assignment
  int iterations = 0;                     // Lloyd updates performed
  std::vector<double> history;            // the objective after seeding and after each update
  bool converged = false;                 // the last update changed no assignment
};

namespace detail {

/// SplitMix64's finalizer: decorrelated seeds from a seed and an index.
constexpr std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t index) noexcept {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// The standard normal density; 0 at the infinities.
double normal_pdf(double x) noexcept;
/// P(a < X < b) for a standard normal X, taken from the tail on the side of the interval to keep
/// precision.
double normal_mass(double a, double b) noexcept;

}  // namespace detail

/// Lloyd's k-means from the given initial centers (clusters x dim values). `weights` is empty
/// (all 1), one per point, or one per component (points x dim; 0 = component absent).
KMeansResult kmeans_from(std::span<const float> points, std::size_t dim,
                         std::span<const float> weights, std::span<const float> initial_centers,
                         const KMeansOptions& options);

/// k-means with k-means++ seeding: `options.clusters` centers of dimension `dim` for the points
/// (count x dim values, point-major). Stops when an update changes no assignment or after
/// options.max_iterations updates; the assignment is then the nearest center of each point (ties
/// to the lowest index) and, when converged, every center with points is their weighted mean.
/// Empty clusters move to the point with the largest error. Fewer distinct points than clusters
/// give repeated centers.
KMeansResult kmeans(std::span<const float> points, std::size_t dim, std::span<const float> weights,
                    const KMeansOptions& options);

// ---- Lloyd-Max: the MSE-optimal scalar quantizer of a standard Gaussian ----

/// The MSE of quantizing a standard Gaussian to the nearest of `levels` (ascending), exactly.
double gaussian_quantizer_mse(std::span<const double> levels);

/// The Lloyd-Max quantizer of N(0, 1) with `levels` levels, ascending and symmetric: Lloyd's
/// fixed point (levels are the centroids of their cells, boundaries the midpoints) computed with
/// the Gaussian density and erfc. Iterates until no level moves by 1e-13: the levels are then
/// within about 1e-11 of the fixed point for 32 levels or fewer, 1e-9 for 256. Throws
/// invalid_argument for levels outside 1..256.
std::vector<double> lloyd_max_gaussian(int levels);

/// The MSE of the Lloyd-Max quantizer of N(0, 1) with `levels` levels.
double lloyd_max_gaussian_mse(int levels);

}  // namespace lowbit
