// SymmetricMatrix: a dense symmetric matrix of doubles, the type of the input Hessians that
// calibration accumulates (InputStatistics::hessian) and GPTQ consumes (quantize_gptq).
//
// Its own header rather than calibration.hpp: GPTQ takes a Hessian from anywhere (a file, a
// test's identity, a rotated one), so gptq.hpp needs the type but not the accumulator, and
// neither public header needs Eigen: the algorithms in src/ map data() onto Eigen matrices.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/error.hpp"

namespace lowbit {

/// [n, n], both triangles stored (row-major, which for a symmetric matrix is column-major too),
/// and every write sets (i, j) and (j, i) together, so the matrix is exactly symmetric.
class SymmetricMatrix {
 public:
  SymmetricMatrix() = default;
  /// The zero matrix [n, n].
  explicit SymmetricMatrix(std::size_t n) : n_(n), values_(n * n, 0.0) {}
  /// From n * n values, row-major. Throws invalid_argument for a wrong count or an asymmetric
  /// pair values[i * n + j] != values[j * n + i] (a pair of NaNs counts as equal: whether NaN
  /// is acceptable is for the algorithm to say, with invalid_value).
  SymmetricMatrix(std::size_t n, std::vector<double> values) : n_(n), values_(std::move(values)) {
    if (values_.size() != n * n)
      throw invalid_argument("SymmetricMatrix: " + std::to_string(values_.size()) +
                             " values for [" + std::to_string(n) + ", " + std::to_string(n) + "]");
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (const double a = values_[i * n + j], b = values_[j * n + i];
            !(a == b) && !(std::isnan(a) && std::isnan(b)))
          throw invalid_argument("SymmetricMatrix: entries (" + std::to_string(i) + ", " +
                                 std::to_string(j) + ") and (" + std::to_string(j) + ", " +
                                 std::to_string(i) + ") differ");
  }

  static SymmetricMatrix identity(std::size_t n) {
    SymmetricMatrix m(n);
    for (std::size_t i = 0; i < n; ++i) m.set(i, i, 1.0);
    return m;
  }
  static SymmetricMatrix from_diagonal(std::span<const double> diagonal) {
    SymmetricMatrix m(diagonal.size());
    for (std::size_t i = 0; i < diagonal.size(); ++i) m.set(i, i, diagonal[i]);
    return m;
  }

  std::size_t rows() const noexcept { return n_; }
  std::size_t cols() const noexcept { return n_; }
  double operator()(std::size_t i, std::size_t j) const noexcept { return values_[i * n_ + j]; }
  void set(std::size_t i, std::size_t j, double value) noexcept {
    values_[i * n_ + j] = value;
    values_[j * n_ + i] = value;
  }
  /// The n * n entries, row-major (equally column-major).
  std::span<const double> values() const noexcept { return values_; }
  const double* data() const noexcept { return values_.data(); }
  std::vector<double> diagonal() const {
    std::vector<double> d(n_);
    for (std::size_t i = 0; i < n_; ++i) d[i] = values_[i * n_ + i];
    return d;
  }
  SymmetricMatrix& operator*=(double factor) noexcept {
    for (double& v : values_) v *= factor;
    return *this;
  }

  friend bool operator==(const SymmetricMatrix&, const SymmetricMatrix&) = default;

 private:
  std::size_t n_ = 0;
  std::vector<double> values_;
};

}  // namespace lowbit
