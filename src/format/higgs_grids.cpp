// The bodies of format/higgs_grids.hpp, compiled once with the generated tables.
#include "lowbit/format/higgs_grids.hpp"

#include <string>

#include "format/higgs_grid_tables.hpp"
#include "lowbit/error.hpp"

namespace lowbit {

// The grid of `size` points in `dimension` dimensions; invalid_argument for an unsupported pair
// (supported: p = 1 with n = 2, 4, ..., 256 and p = 2 with n = 4, 8, ..., 256).
HiggsGrid higgs_grid(int dimension, int size) {
  for (const detail::higgs::GridTable& g : detail::higgs::grids)
    if (g.dimension == dimension && g.size == size)
      return {g.dimension, g.size,
              std::span<const float>(g.points, static_cast<std::size_t>(g.size * g.dimension)),
              g.mse};
  throw invalid_argument("higgs_grid: no grid of " + std::to_string(size) + " points in " +
                         std::to_string(dimension) + " dimensions");
}

// Index of the nearest grid point to v (length = grid.dimension): the argmax over points g of
// 2 <v, g> - |g|^2, evaluated in double; ties go to the lowest index.
int higgs_nearest(const HiggsGrid& grid, std::span<const float> v) {
  const auto p = static_cast<std::size_t>(grid.dimension);
  if (grid.dimension <= 0 || v.size() != p ||
      grid.points.size() != p * static_cast<std::size_t>(grid.size))
    throw invalid_argument("higgs_nearest: vector of length " + std::to_string(v.size()) +
                           " for a grid of dimension " + std::to_string(grid.dimension));
  int best = 0;
  double best_score = 0;
  for (int i = 0; i < grid.size; ++i) {
    const float* g = grid.points.data() + static_cast<std::size_t>(i) * p;
    double score = 0;
    for (std::size_t d = 0; d < p; ++d) {
      const double gd = g[d];
      score += gd * (2.0 * static_cast<double>(v[d]) - gd);
    }
    if (i == 0 || score > best_score) best = i, best_score = score;
  }
  return best;
}

}  // namespace lowbit
