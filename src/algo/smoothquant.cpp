// SmoothQuant's smoothing factors (algo/smoothquant.hpp).
#include "lowbit/algo/smoothquant.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "lowbit/error.hpp"

namespace lowbit {

std::vector<float> smoothquant_scales(std::span<const float> input_max_abs,
                                      std::span<const MatrixView<const float>> weights,
                                      float alpha) {
  if (!(alpha >= 0.0f && alpha <= 1.0f)) {
    std::string message = "smoothquant_scales: alpha must be in [0, 1], not ";
    message.append(std::to_string(alpha));
    throw invalid_argument(message);
  }
  if (weights.empty())
    throw invalid_argument("smoothquant_scales: needs at least one weight matrix");
  const std::size_t in = input_max_abs.size();
  for (std::size_t i = 0; i < weights.size(); ++i)
    if (weights[i].cols != in) {
      std::string message = "smoothquant_scales: weight ";
      message.append(std::to_string(i))
          .append(" is ")
          .append(detail::shape_text(weights[i].rows, weights[i].cols))
          .append(" [out, in] but there are ")
          .append(std::to_string(in))
          .append(" activation maxima");
      throw invalid_argument(message);
    }
  for (std::size_t j = 0; j < in; ++j) {
    const float a = input_max_abs[j];
    if (!(a >= 0.0f && a <= std::numeric_limits<float>::max())) {
      std::string message = "smoothquant_scales: the activation max of channel ";
      message.append(std::to_string(j))
          .append(" is ")
          .append(std::to_string(a))
          .append("; it must be finite and non-negative");
      throw invalid_value(message);
    }
  }

  std::vector<float> weight_max(in, 0.0f);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const MatrixView<const float>& w = weights[i];
    for (std::size_t r = 0; r < w.rows; ++r)
      for (std::size_t c = 0; c < in; ++c) {
        const float v = std::abs(w(r, c));
        if (!(v <= std::numeric_limits<float>::max())) {
          std::string message = "smoothquant_scales: ";
          message.append(std::isnan(v) ? "NaN" : "Inf")
              .append(" in weight ")
              .append(std::to_string(i))
              .append(" at row ")
              .append(std::to_string(r))
              .append(", column ")
              .append(std::to_string(c));
          throw invalid_value(message);
        }
        weight_max[c] = std::max(weight_max[c], v);
      }
  }

  constexpr double floor = 1e-5;  // the reference's clamp, on the weight max and on s
  std::vector<float> s(in, 1.0f);
  for (std::size_t j = 0; j < in; ++j) {
    if (input_max_abs[j] == 0.0f || weight_max[j] == 0.0f) continue;  // nothing to balance
    const double a = input_max_abs[j];
    const double w = std::max(static_cast<double>(weight_max[j]), floor);
    const double value =
        std::pow(a, static_cast<double>(alpha)) / std::pow(w, 1.0 - static_cast<double>(alpha));
    // A weighted geometric mean of a and 1/w <= 1e5, so at most max(a, 1e5): finite in float.
    s[j] = static_cast<float>(std::max(value, floor));
  }
  return s;
}

}  // namespace lowbit
