// The data structures of k-means shared by quant/kmeans.cpp and quant/codebook.cpp: the points
// with their weights, and the nearest-center search. Private to the compiled library.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/quant/kmeans.hpp"

namespace lowbit::detail {

/// The points and weights as the Lloyd loop reads them.
class KMeansData {
 public:
  enum class Weights { none, per_point, per_component };

  KMeansData(std::span<const float> points, std::size_t dim, std::span<const float> weights)
      : points_(points), weights_(weights), dim_(dim) {
    if (dim == 0) throw invalid_argument("kmeans: dimension must be at least 1");
    if (points.size() % dim != 0)
      throw invalid_argument("kmeans: " + std::to_string(points.size()) +
                             " values are not a whole number of points of dimension " +
                             std::to_string(dim));
    count_ = points.size() / dim;
    if (weights.empty())
      kind_ = Weights::none;
    else if (weights.size() == count_ * dim && dim > 1)
      kind_ = Weights::per_component;
    else if (weights.size() == count_)
      kind_ = Weights::per_point;
    else
      throw invalid_argument("kmeans: " + std::to_string(weights.size()) + " weights for " +
                             std::to_string(count_) + " points of dimension " +
                             std::to_string(dim));
    for (float w : weights)
      if (!(w >= 0.0f && w <= std::numeric_limits<float>::max()))
        throw invalid_value("kmeans: weights must be finite and non-negative");
    for (float x : points)
      if (!(std::abs(x) <= std::numeric_limits<float>::max()))
        throw invalid_value("kmeans: points must be finite");
  }

  std::size_t count() const noexcept { return count_; }
  std::size_t dim() const noexcept { return dim_; }
  Weights kind() const noexcept { return kind_; }
  const float* point(std::size_t i) const noexcept { return points_.data() + i * dim_; }
  float weight(std::size_t i, std::size_t j) const noexcept {
    switch (kind_) {
      case Weights::none:
        return 1.0f;
      case Weights::per_point:
        return weights_[i];
      case Weights::per_component:
        return weights_[i * dim_ + j];
    }
    return 1.0f;
  }
  /// The total weight of a point's components.
  double mass(std::size_t i) const noexcept {
    if (kind_ == Weights::none) return static_cast<double>(dim_);
    if (kind_ == Weights::per_point)
      return static_cast<double>(weights_[i]) * static_cast<double>(dim_);
    double total = 0.0;
    for (std::size_t j = 0; j < dim_; ++j) total += weights_[i * dim_ + j];
    return total;
  }

  /// The weighted squared distance of point i from a center: w_i * sum_j (x_j - c_j)^2 with
  /// per-point weights, sum_j w_ij (x_j - c_j)^2 with per-component ones.
  double distance(std::size_t i, const float* center) const noexcept {
    const float* x = point(i);
    double total = 0.0;
    if (kind_ == Weights::per_component) {
      const float* w = weights_.data() + i * dim_;
      for (std::size_t j = 0; j < dim_; ++j) {
        const double diff = static_cast<double>(x[j]) - static_cast<double>(center[j]);
        total += static_cast<double>(w[j]) * diff * diff;
      }
      return total;
    }
    for (std::size_t j = 0; j < dim_; ++j) {
      const double diff = static_cast<double>(x[j]) - static_cast<double>(center[j]);
      total += diff * diff;
    }
    return kind_ == Weights::per_point ? static_cast<double>(weights_[i]) * total : total;
  }

  /// Whether every component of point i has weight 0.
  bool weightless(std::size_t i) const noexcept {
    if (kind_ == Weights::none) return false;
    if (kind_ == Weights::per_point) return !(weights_[i] > 0.0f);
    for (std::size_t j = 0; j < dim_; ++j)
      if (weights_[i * dim_ + j] > 0.0f) return false;
    return true;
  }

  /// The nearest of `k` centers and its distance: by weighted distance, ties to the lowest index;
  /// a point without weight (which costs nothing wherever it goes) by unweighted distance.
  std::uint32_t nearest(std::size_t i, const float* centers, std::size_t k,
                        double& best) const noexcept {
    const bool unweighted = weightless(i);
    std::uint32_t index = 0;
    double best_distance = std::numeric_limits<double>::infinity();
    for (std::size_t c = 0; c < k; ++c) {
      const float* center = centers + c * dim_;
      double d = 0.0;
      if (unweighted) {
        for (std::size_t j = 0; j < dim_; ++j) {
          const double diff = static_cast<double>(point(i)[j]) - static_cast<double>(center[j]);
          d += diff * diff;
        }
      } else {
        d = distance(i, center);
      }
      if (d < best_distance) {
        best_distance = d;
        index = static_cast<std::uint32_t>(c);
      }
    }
    best = unweighted ? 0.0 : best_distance;
    return index;
  }

  /// The weighted mean of each component over all points (0 where no weight): the value a
  /// center takes in a component that none of its points has.
  std::vector<float> component_means() const {
    std::vector<double> sum(dim_, 0.0), total(dim_, 0.0);
    for (std::size_t i = 0; i < count_; ++i)
      for (std::size_t j = 0; j < dim_; ++j) {
        const double w = weight(i, j);
        sum[j] += w * static_cast<double>(point(i)[j]);
        total[j] += w;
      }
    std::vector<float> mean(dim_, 0.0f);
    for (std::size_t j = 0; j < dim_; ++j)
      if (total[j] > 0.0) mean[j] = static_cast<float>(sum[j] / total[j]);
    return mean;
  }

  /// Sets a center to point i, taking `fallback` in the point's absent components.
  void copy_point(std::size_t i, const std::vector<float>& fallback, float* center) const noexcept {
    for (std::size_t j = 0; j < dim_; ++j)
      center[j] =
          (kind_ != Weights::per_component || weight(i, j) > 0.0f) ? point(i)[j] : fallback[j];
  }

 private:
  std::span<const float> points_;
  std::span<const float> weights_;
  std::size_t dim_ = 1;
  std::size_t count_ = 0;
  Weights kind_ = Weights::none;
};

/// Finds nearest centers: brute force, or for scalars by comparing x with the midpoints between
/// the sorted distinct centers (exact in double: x is nearer the lower of two neighbours iff it
/// is below their midpoint; on a midpoint the lower index wins, and equal centers resolve to the
/// lowest index, as brute force does).
class NearestCenter {
 public:
  NearestCenter(const KMeansData& data, const float* centers, std::size_t k)
      : data_(data), centers_(centers), k_(k) {
    if (data.dim() != 1 || k < 4) return;
    std::vector<std::uint32_t> order(k);
    for (std::size_t c = 0; c < k; ++c) order[c] = static_cast<std::uint32_t>(c);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::uint32_t a, std::uint32_t b) { return centers[a] < centers[b]; });
    std::vector<float> values;
    for (std::uint32_t c : order) {
      if (!values.empty() && values.back() == centers[c]) continue;  // keeps the lowest index
      values.push_back(centers[c]);
      index_.push_back(c);
    }
    for (std::size_t i = 0; i + 1 < values.size(); ++i)
      midpoints_.push_back(0.5 * (static_cast<double>(values[i]) + values[i + 1]));
  }

  std::uint32_t operator()(std::size_t i, double& best) const noexcept {
    if (index_.empty()) return data_.nearest(i, centers_, k_, best);
    const double x = data_.point(i)[0];
    std::size_t at = 0;
    if (midpoints_.size() <= 32) {
      for (double m : midpoints_) at += static_cast<std::size_t>(m < x);
    } else {
      at = static_cast<std::size_t>(std::lower_bound(midpoints_.begin(), midpoints_.end(), x) -
                                    midpoints_.begin());
    }
    if (at < midpoints_.size() && midpoints_[at] == x && index_[at + 1] < index_[at]) ++at;
    const std::uint32_t c = index_[at];
    if (data_.weightless(i)) {
      best = 0.0;
    } else {
      const double diff = x - static_cast<double>(centers_[c]);
      best = static_cast<double>(data_.weight(i, 0)) * diff * diff;
    }
    return c;
  }

 private:
  const KMeansData& data_;
  const float* centers_;
  std::size_t k_;
  std::vector<double> midpoints_;
  std::vector<std::uint32_t> index_;
};

}  // namespace lowbit::detail
