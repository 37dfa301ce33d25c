// Calibration statistics of one Linear layer's input: what GPTQ (the Hessian), AWQ (mean |x|) and
// SmoothQuant / LLM.int8() (max |x|) need, accumulated batch by batch in O(in^2) memory.
//
//   H = 2/n * sum_t x_t x_t^T       (n = samples seen; GPTQ's add_batch keeps the same running
//   mean) mean_abs[j] = 1/n * sum_t |x_t[j]|,   max_abs[j] = max_t |x_t[j]|
//
// The Hessian is accumulated in double (a symmetric rank-k update of the lower triangle per batch,
// Eigen's blocked SYRK), so its value does not depend on how the samples are split into batches
// beyond double rounding.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "lowbit/error.hpp"
#include "lowbit/matrix_view.hpp"

namespace lowbit {

class InputStatistics {
 public:
  explicit InputStatistics(std::size_t in)
      : in_(in),
        sum_xxt_(
            Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(in), static_cast<Eigen::Index>(in))),
        sum_abs_(in, 0.0),
        max_abs_(in, 0.0f) {}

  std::size_t width() const noexcept { return in_; }
  std::size_t samples() const noexcept { return samples_; }

  /// Adds a batch of samples x [batch, in] (row-major, any row stride). Throws invalid_argument
  /// for a wrong width, invalid_value for NaN/Inf (naming the row and column).
  void add(MatrixView<const float> x) {
    if (x.cols != in_)
      throw invalid_argument("InputStatistics: a batch of width " + std::to_string(x.cols) +
                             " for inputs of width " + std::to_string(in_));
    if (x.rows == 0) return;
    const auto batch = static_cast<Eigen::Index>(x.rows);
    const auto in = static_cast<Eigen::Index>(in_);
    using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const RowMajor, 0, Eigen::OuterStride<>> view(
        x.data, batch, in, Eigen::OuterStride<>(static_cast<Eigen::Index>(x.row_stride)));
    // Checked first, so a rejected batch leaves the statistics as they were.
    for (std::size_t r = 0; r < x.rows; ++r)
      for (std::size_t c = 0; c < x.cols; ++c) {
        const float v = x(r, c);
        if (!std::isfinite(v))
          throw invalid_value("InputStatistics: " + std::string(std::isnan(v) ? "NaN" : "Inf") +
                              " at row " + std::to_string(r) + ", column " + std::to_string(c));
      }
    for (std::size_t r = 0; r < x.rows; ++r)
      for (std::size_t c = 0; c < x.cols; ++c) {
        const float v = std::abs(x(r, c));
        sum_abs_[c] += static_cast<double>(v);
        max_abs_[c] = std::max(max_abs_[c], v);
      }
    // Column-major [batch, in] in double: X^T X is a rank-`batch` update of the lower triangle.
    const Eigen::MatrixXd xd = view.cast<double>();
    sum_xxt_.selfadjointView<Eigen::Lower>().rankUpdate(xd.transpose());
    samples_ += x.rows;
  }

  /// H = 2/n * sum x x^T, [in, in], symmetric (zero before any sample).
  Eigen::MatrixXd hessian() const {
    Eigen::MatrixXd h(sum_xxt_.rows(), sum_xxt_.cols());
    h.setZero();
    if (samples_ == 0) return h;
    h.triangularView<Eigen::Lower>() = sum_xxt_.triangularView<Eigen::Lower>();
    h.triangularView<Eigen::StrictlyUpper>() =
        sum_xxt_.transpose().triangularView<Eigen::StrictlyUpper>();
    h *= 2.0 / static_cast<double>(samples_);
    return h;
  }
  /// Mean |x| per input channel (zero before any sample).
  std::vector<double> mean_abs() const {
    std::vector<double> out(in_, 0.0);
    if (samples_ == 0) return out;
    for (std::size_t j = 0; j < in_; ++j) out[j] = sum_abs_[j] / static_cast<double>(samples_);
    return out;
  }
  /// Max |x| per input channel (zero before any sample).
  const std::vector<float>& max_abs() const noexcept { return max_abs_; }

 private:
  std::size_t in_ = 0;
  std::size_t samples_ = 0;
  Eigen::MatrixXd sum_xxt_;  // lower triangle of sum x x^T
  std::vector<double> sum_abs_;
  std::vector<float> max_abs_;
};

}  // namespace lowbit
