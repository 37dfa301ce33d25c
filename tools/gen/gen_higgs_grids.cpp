// Generates src/format/higgs_grid_tables.hpp: the MSE-optimal grids for a
// standard Gaussian that HIGGS (Malinovskii et al., 2024) quantizes Hadamard-rotated weights to.
//
//   p = 1: Lloyd-Max on the exact N(0, 1) density. A cell [a, b] has probability
//          Phi(b) - Phi(a) and centroid (phi(a) - phi(b)) / (Phi(b) - Phi(a)); iterate
//          boundaries = midpoints, points = centroids until no point moves by more than 1e-12.
//          The MSE is exact: E[x^2] - sum_i P_i c_i^2 (valid at centroids).
//   p = 2: k-means (Lloyd) on 2^20 deterministic 2-D standard Gaussian samples (splitmix64 +
//          Box-Muller), k-means++ seeding, 6 / 3 / 2 restarts (n <= 16 / 64 / 256; at most 300
//          iterations each, stopping when the error falls by less than 1e-8 relative), the best
//          kept. The stored MSE per dimension is measured on an independent sample of 2^22 points.
//
// Build and run (from the repository root):
//   g++ -std=c++20 -O3 -fopenmp tools/gen/gen_higgs_grids.cpp -o /tmp/gen_higgs   (about 7 min on 2
//   cores) /tmp/gen_higgs > src/format/higgs_grid_tables.hpp
// Not a build dependency: the header is committed; this program makes it reproducible.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numbers>
#include <vector>

namespace {

double pdf(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi); }
// P(a < X < b) computed on the side where it is accurate.
double prob(double a, double b) {
  if (a >= 0)
    return 0.5 * (std::erfc(a / std::numbers::sqrt2) - std::erfc(b / std::numbers::sqrt2));
  if (b <= 0)
    return 0.5 * (std::erfc(-b / std::numbers::sqrt2) - std::erfc(-a / std::numbers::sqrt2));
  return 1.0 - 0.5 * std::erfc(b / std::numbers::sqrt2) - 0.5 * std::erfc(-a / std::numbers::sqrt2);
}

struct Grid1 {
  std::vector<double> points;
  double mse;
  long iterations;
};

Grid1 lloyd_max(int n) {
  // Start from the companding approximation: points at the quantiles of N(0, 3).
  std::vector<double> c(n);
  const double inf = std::numeric_limits<double>::infinity();
  for (int i = 0; i < n; ++i) {
    double u = (i + 0.5) / n;  // inverse normal CDF by bisection on erfc (plenty accurate here)
    double lo = -10, hi = 10;
    for (int k = 0; k < 200; ++k) {
      const double mid = 0.5 * (lo + hi);
      (0.5 * std::erfc(-mid / std::numbers::sqrt2) < u ? lo : hi) = mid;
    }
    c[i] = std::sqrt(3.0) * 0.5 * (lo + hi);
  }
  long it = 0;
  for (; it < 50'000'000; ++it) {
    double moved = 0;
    std::vector<double> next(n);
    for (int i = 0; i < n; ++i) {
      const double a = i == 0 ? -inf : 0.5 * (c[i - 1] + c[i]);
      const double b = i == n - 1 ? inf : 0.5 * (c[i] + c[i + 1]);
      const double pa = std::isinf(a) ? 0.0 : pdf(a), pb = std::isinf(b) ? 0.0 : pdf(b);
      next[i] = (pa - pb) / prob(a, b);
      moved = std::max(moved, std::abs(next[i] - c[i]));
    }
    // Exact symmetry: average the point with its mirror image.
    for (int i = 0; i < n; ++i) c[i] = 0.5 * (next[i] - next[n - 1 - i]);
    if (moved < 1e-12) break;
  }
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    const double a = i == 0 ? -inf : 0.5 * (c[i - 1] + c[i]);
    const double b = i == n - 1 ? inf : 0.5 * (c[i] + c[i + 1]);
    sum += prob(a, b) * c[i] * c[i];
  }
  return {c, 1.0 - sum, it};
}

struct SplitMix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }  // (0, 1)
};

// 2-D standard Gaussian points, Box-Muller.
std::vector<double> gaussian_2d(std::size_t count, std::uint64_t seed) {
  SplitMix64 rng{seed};
  std::vector<double> x(2 * count);
  for (std::size_t i = 0; i < count; ++i) {
    const double r = std::sqrt(-2.0 * std::log(rng.uniform()));
    const double t = 2.0 * std::numbers::pi * rng.uniform();
    x[2 * i] = r * std::cos(t);
    x[2 * i + 1] = r * std::sin(t);
  }
  return x;
}

// Assigns every point to its nearest centre; returns the total squared error.
double assign(const std::vector<double>& x, const std::vector<double>& c, std::vector<int>& label) {
  const std::size_t count = x.size() / 2;
  const int k = static_cast<int>(c.size() / 2);
  // Per-point errors summed serially afterwards: the result does not depend on the thread count.
  std::vector<double> error(count);
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < count; ++i) {
    const double px = x[2 * i], py = x[2 * i + 1];
    double best = std::numeric_limits<double>::infinity();
    int arg = 0;
    for (int j = 0; j < k; ++j) {
      const double dx = px - c[2 * j], dy = py - c[2 * j + 1];
      const double d = dx * dx + dy * dy;
      if (d < best) best = d, arg = j;
    }
    label[i] = arg;
    error[i] = best;
  }
  double total = 0;
  for (double e : error) total += e;
  return total;
}

struct Grid2 {
  std::vector<double> points;
  double train_mse;
};

Grid2 kmeans(const std::vector<double>& x, int k, std::uint64_t seed) {
  const std::size_t count = x.size() / 2;
  SplitMix64 rng{seed};
  // k-means++ seeding.
  std::vector<double> c;
  std::vector<double> d2(count, std::numeric_limits<double>::infinity());
  std::size_t first = rng.next() % count;
  c.push_back(x[2 * first]);
  c.push_back(x[2 * first + 1]);
  while (static_cast<int>(c.size() / 2) < k) {
    const double cx = c[c.size() - 2], cy = c[c.size() - 1];
    double total = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const double dx = x[2 * i] - cx, dy = x[2 * i + 1] - cy;
      d2[i] = std::min(d2[i], dx * dx + dy * dy);
      total += d2[i];
    }
    double target = rng.uniform() * total;
    std::size_t pick = count - 1;
    for (std::size_t i = 0; i < count; ++i) {
      target -= d2[i];
      if (target <= 0) {
        pick = i;
        break;
      }
    }
    c.push_back(x[2 * pick]);
    c.push_back(x[2 * pick + 1]);
  }
  std::vector<int> label(count);
  double previous = std::numeric_limits<double>::infinity(), err = 0;
  for (int it = 0; it < 300; ++it) {
    err = assign(x, c, label);
    std::vector<double> sum(2 * k, 0.0);
    std::vector<std::size_t> n(k, 0);
    for (std::size_t i = 0; i < count; ++i) {
      sum[2 * label[i]] += x[2 * i];
      sum[2 * label[i] + 1] += x[2 * i + 1];
      ++n[label[i]];
    }
    for (int j = 0; j < k; ++j)
      if (n[j] > 0) c[2 * j] = sum[2 * j] / n[j], c[2 * j + 1] = sum[2 * j + 1] / n[j];
    if (previous - err <= 1e-8 * err) break;
    previous = err;
  }
  err = assign(x, c, label);
  return {c, err / (2.0 * count)};
}

void print_points(const std::vector<double>& p) {
  for (std::size_t i = 0; i < p.size(); ++i)
    std::printf("%s%.9gf,%s", i % 6 == 0 ? "    " : "", static_cast<float>(p[i]),
                i % 6 == 5 || i + 1 == p.size() ? "\n" : " ");
}

}  // namespace

int main() {
  std::printf(
      "// Generated by tools/gen/gen_higgs_grids.cpp; do not edit. MSE-optimal grids for a "
      "standard\n"
      "// Gaussian: p = 1 by Lloyd-Max on the exact density, p = 2 by k-means on 2^20 samples.\n"
      "// mse: per dimension (p = 1 exact; p = 2 measured on an independent sample of 2^22 "
      "points).\n"
      "// clang-format off\n#pragma once\n\nnamespace lowbit::detail::higgs {\n\n"
      "struct GridTable {\n  int dimension;\n  int size;\n  const float* points;\n  double "
      "mse;\n};\n\n");
  struct Entry {
    int p, n;
    double mse;
  };
  std::vector<Entry> entries;
  for (int n : {2, 4, 8, 16, 32, 64, 128, 256}) {
    const Grid1 g = lloyd_max(n);
    std::fprintf(stderr, "p=1 n=%d mse=%.9g iterations=%ld\n", n, g.mse, g.iterations);
    std::printf("inline constexpr float grid_p1_n%d[%d] = {\n", n, n);
    print_points(g.points);
    std::printf("};\n\n");
    entries.push_back({1, n, g.mse});
  }
  const std::vector<double> train = gaussian_2d(std::size_t{1} << 20, 0x48494747535f7032ULL);
  const std::vector<double> test = gaussian_2d(std::size_t{1} << 22, 0x7465737432643232ULL);
  std::vector<int> label(test.size() / 2);
  for (int n : {4, 8, 16, 32, 64, 128, 256}) {
    const int restarts = n <= 16 ? 6 : n <= 64 ? 3 : 2;
    Grid2 best{{}, std::numeric_limits<double>::infinity()};
    for (int r = 0; r < restarts; ++r) {
      Grid2 g = kmeans(train, n, 1000003ULL * n + r);
      std::fprintf(stderr, "  p=2 n=%d restart %d train mse=%.9g\n", n, r, g.train_mse);
      if (g.train_mse < best.train_mse) best = std::move(g);
    }
    // Round to the stored float values before measuring.
    for (double& v : best.points) v = static_cast<float>(v);
    const double mse = assign(test, best.points, label) / static_cast<double>(test.size());
    std::fprintf(stderr, "p=2 n=%d train mse=%.9g test mse=%.9g\n", n, best.train_mse, mse);
    std::printf("inline constexpr float grid_p2_n%d[%d] = {\n", n, 2 * n);
    print_points(best.points);
    std::printf("};\n\n");
    entries.push_back({2, n, mse});
  }
  std::printf("inline constexpr GridTable grids[] = {\n");
  for (const Entry& e : entries)
    std::printf("    {%d, %d, grid_p%d_n%d, %.9g},\n", e.p, e.n, e.p, e.n, e.mse);
  std::printf("};\n\n}  // namespace lowbit::detail::higgs\n");
}
