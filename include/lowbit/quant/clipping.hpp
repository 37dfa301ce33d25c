// MSE-optimal clipping: shrink a group's range by a factor and keep the factor whose quantization
// error is smallest. Clipping a few outliers buys a finer step for every other element, which is a
// net gain on the heavy-tailed weights of LLMs (GPTQ's `mse` option and AWQ's clip search).
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>

namespace lowbit {

struct ClipSearch {
  bool enabled = false;
  int grid = 100;           // candidate factors 1, 1 - 1/grid, 1 - 2/grid, ...
  float max_shrink = 0.8f;  // ... down to 1 - max_shrink (exclusive), as GPTQ's reference does
  float norm = 2.0f;        // error = sum |x - dequant(quant(x))|^norm; 2 is the mean squared error

  static constexpr ClipSearch none() noexcept { return {}; }
  static constexpr ClipSearch mse(int grid = 100, float max_shrink = 0.8f) noexcept {
    return {true, grid, max_shrink, 2.0f};
  }

  /// Number of candidate factors tried (1 when disabled: only the full range).
  int candidates() const noexcept {
    if (!enabled || grid <= 0) return 1;
    const int count = static_cast<int>(max_shrink * static_cast<float>(grid));
    return count < 1 ? 1 : count;
  }
  /// The i-th candidate shrink factor, i in [0, candidates()).
  float factor(int i) const noexcept {
    return 1.0f - static_cast<float>(i) / static_cast<float>(grid);
  }
  /// |error|^norm, with the common norms computed without pow().
  float penalty(float error) const noexcept {
    const float magnitude = std::abs(error);
    if (norm == 2.0f) return magnitude * magnitude;
    if (norm == 1.0f) return magnitude;
    return std::pow(magnitude, norm);
  }

  /// Runs the search: `error_of(factor)` returns the total penalty of quantizing with the range
  /// shrunk by `factor`. Returns the best factor (the largest one among equals).
  template <class ErrorOf>
  float best_factor(ErrorOf&& error_of) const {
    float best = 1.0f;
    double best_error = std::numeric_limits<double>::infinity();
    for (int i = 0; i < candidates(); ++i) {
      const float f = factor(i);
      const double error = error_of(f);
      if (error < best_error) {
        best_error = error;
        best = f;
      }
    }
    return best;
  }
};

}  // namespace lowbit
