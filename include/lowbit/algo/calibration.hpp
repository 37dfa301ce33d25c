// Calibration statistics of one Linear layer's input: what GPTQ (the Hessian), AWQ (mean |x|) and
// SmoothQuant / LLM.int8() (max |x|) need, accumulated batch by batch in O(in^2) memory.
//
//   H = 2/n * sum_t x_t x_t^T       (n = samples seen; GPTQ's add_batch keeps the same running
//                                    mean)
//   mean_abs[j] = 1/n * sum_t |x_t[j]|,   max_abs[j] = max_t |x_t[j]|
//
// The Hessian is accumulated in double (a symmetric rank-k update of the lower triangle per batch,
// Eigen's blocked SYRK, in src/algo/calibration.cpp), so its value does not depend on how the
// samples are split into batches beyond double rounding.
#pragma once

#include <cstddef>
#include <vector>

#include "lowbit/algo/symmetric_matrix.hpp"
#include "lowbit/matrix_view.hpp"

namespace lowbit {

class InputStatistics {
 public:
  explicit InputStatistics(std::size_t in);

  std::size_t width() const noexcept { return in_; }
  std::size_t samples() const noexcept { return samples_; }

  /// Adds a batch of samples x [batch, in] (row-major, any row stride). Throws invalid_argument
  /// for a wrong width, invalid_value for NaN/Inf (naming the row and column); a rejected batch
  /// leaves the statistics as they were.
  void add(MatrixView<const float> x);

  /// H = 2/n * sum x x^T, [in, in] (zero before any sample).
  SymmetricMatrix hessian() const;
  /// Mean |x| per input channel (zero before any sample).
  std::vector<double> mean_abs() const;
  /// Max |x| per input channel (zero before any sample).
  const std::vector<float>& max_abs() const noexcept { return max_abs_; }

 private:
  std::size_t in_ = 0;
  std::size_t samples_ = 0;
  std::vector<double> sum_xxt_;  // [in, in] column-major, its lower triangle holds sum x x^T
  std::vector<double> sum_abs_;
  std::vector<float> max_abs_;
};

}  // namespace lowbit
