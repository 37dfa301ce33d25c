// Moving a per-input-channel scale between a layer's weights and its inputs: W x = (W diag(s))
// (diag(s)^-1 x). SmoothQuant migrates activation outliers into the weights this way, AWQ protects
// salient weight channels; both fold diag(s)^-1 into whatever produces x (an RMSNorm's weight).
#pragma once

#include <cstddef>
#include <limits>
#include <span>
#include <string>

#include "lowbit/error.hpp"
#include "lowbit/matrix_view.hpp"

namespace lowbit {

namespace detail {

inline void check_channel_scales(std::size_t cols, std::span<const float> s, const char* who) {
  if (s.size() != cols) {
    std::string message = who;
    message.append(": ")
        .append(std::to_string(s.size()))
        .append(" scales for ")
        .append(std::to_string(cols))
        .append(" columns");
    throw invalid_argument(message);
  }
  for (std::size_t j = 0; j < s.size(); ++j)
    if (!(s[j] > 0.0f && s[j] <= std::numeric_limits<float>::max())) {
      std::string message = who;
      message.append(": scale ")
          .append(std::to_string(j))
          .append(" is ")
          .append(std::to_string(s[j]))
          .append("; scales must be positive and finite");
      throw invalid_value(message);
    }
}

}  // namespace detail

/// W <- W diag(s): multiplies column j of `weights` ([out, in]) by s[j]. Throws invalid_argument
/// when s.size() != in, invalid_value for a scale that is not positive and finite.
inline void scale_input_channels(MatrixView<float> weights, std::span<const float> s) {
  detail::check_channel_scales(weights.cols, s, "scale_input_channels");
  for (std::size_t r = 0; r < weights.rows; ++r) {
    const std::span<float> row = weights.row(r);
    for (std::size_t j = 0; j < row.size(); ++j) row[j] *= s[j];
  }
}

/// X <- X diag(s)^-1: divides column j of `x` ([batch, in], or a norm's weight as a 1-row view) by
/// s[j]. Same checks as scale_input_channels.
inline void unscale_input_channels(MatrixView<float> x, std::span<const float> s) {
  detail::check_channel_scales(x.cols, s, "unscale_input_channels");
  for (std::size_t r = 0; r < x.rows; ++r) {
    const std::span<float> row = x.row(r);
    for (std::size_t j = 0; j < row.size(); ++j) row[j] /= s[j];
  }
}

}  // namespace lowbit
