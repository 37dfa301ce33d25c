// Comparing a kernel's output with the reference's under per-element error bounds, for the kernel
// tests of every backend.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>

namespace lowbit::test {

struct BoundCheck {
  std::size_t outside = 0;  // elements whose error exceeds their bound (NaN counts as outside)
  double worst = 0.0;       // the largest error / bound
};

inline BoundCheck check_bounds(std::span<const float> got, std::span<const float> expected,
                               std::span<const double> bounds) {
  BoundCheck result;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double error = std::abs(static_cast<double>(got[i]) - expected[i]);
    result.worst = std::max(result.worst, error / bounds[i]);
    result.outside += !(error <= bounds[i]);
  }
  return result;
}

}  // namespace lowbit::test
