#include "lowbit/algo/calibration.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include <Eigen/Dense>

#include "lowbit/error.hpp"

namespace lowbit {

InputStatistics::InputStatistics(std::size_t in)
    : in_(in), sum_xxt_(in * in, 0.0), sum_abs_(in, 0.0), max_abs_(in, 0.0f) {}

void InputStatistics::add(MatrixView<const float> x) {
  if (x.cols != in_)
    throw invalid_argument("InputStatistics: a batch of width " + std::to_string(x.cols) +
                           " for inputs of width " + std::to_string(in_));
  if (x.rows == 0) return;
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
  const auto batch = static_cast<Eigen::Index>(x.rows);
  const auto in = static_cast<Eigen::Index>(in_);
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const RowMajor, 0, Eigen::OuterStride<>> view(
      x.data, batch, in, Eigen::OuterStride<>(static_cast<Eigen::Index>(x.row_stride)));
  // Column-major [batch, in] in double: X^T X is a rank-`batch` update of the lower triangle.
  const Eigen::MatrixXd xd = view.cast<double>();
  Eigen::Map<Eigen::MatrixXd> sum(sum_xxt_.data(), in, in);
  sum.selfadjointView<Eigen::Lower>().rankUpdate(xd.transpose());
  samples_ += x.rows;
}

SymmetricMatrix InputStatistics::hessian() const {
  if (samples_ == 0) return SymmetricMatrix(in_);
  const auto in = static_cast<Eigen::Index>(in_);
  const Eigen::Map<const Eigen::MatrixXd> sum(sum_xxt_.data(), in, in);
  std::vector<double> values(in_ * in_);
  Eigen::Map<Eigen::MatrixXd> h(values.data(), in, in);
  h = sum.selfadjointView<Eigen::Lower>();  // both triangles from the lower one: exactly symmetric
  h *= 2.0 / static_cast<double>(samples_);
  return SymmetricMatrix(in_, std::move(values));
}

std::vector<double> InputStatistics::mean_abs() const {
  std::vector<double> out(in_, 0.0);
  if (samples_ == 0) return out;
  for (std::size_t j = 0; j < in_; ++j) out[j] = sum_abs_[j] / static_cast<double>(samples_);
  return out;
}

}  // namespace lowbit
