// SmoothQuant (Xiao et al., "SmoothQuant: Accurate and Efficient Post-Training Quantization for
// Large Language Models", 2023). LLM activations have a few input channels with outliers 10-100x
// larger than the rest, which ruin per-token int8 quantization of X, while weights are easy to
// quantize. SmoothQuant moves part of that difficulty from activations to weights with an exact
// per-input-channel rescaling, Y = X W^T = (X diag(s)^-1) (W diag(s))^T, with
//
//   s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)
//
// max|X_j| being channel j's activation absmax over calibration data (InputStatistics::max_abs())
// and max|W_j| the absmax of column j over every weight matrix that reads this input (q, k and v
// share one s). alpha = 0.5 balances the two. Then W8A8: int8 weights per output channel, int8
// activations per token (dynamic), int32 accumulation.
//
// What lowbit does, following the reference (github mit-han-lab/smoothquant, smooth.py:
// weight_scales = max|W_j|.clamp(min=1e-5), scales = (act_scales^alpha / weight_scales^(1-alpha))
// .clamp(min=1e-5); fake_quant.py for W8A8):
//  * smoothquant_scales computes s in double (the reference computes in the model's dtype) and
//    rounds it to float. A channel whose activation max or weight max is exactly 0 gets s = 1 (the
//    reference gives such a channel 1e-5 or 0^0 artefacts); no s is ever 0, NaN or Inf: with the
//    1e-5 clamps, s lies in [1e-5, max(max|X_j|, 1e5)].
//  * The caller applies s: X' = X diag(s)^-1 is folded into the preceding norm (norm_weight[j] /=
//    s_j, and its bias if any: unscale_input_channels on a 1-row view), W' = W diag(s) into each
//    weight that reads the input (scale_input_channels).
//  * Weights: quantize_w8a8_weights, i.e. quantize_linear with int8 sym per channel, f32 scales
//    (scale = absmax / 127, round half to even; an all-zero row has scale 0).
//  * Activations: quantize_per_token_int8, per row of X, scale = absmax / 127, code =
//    clamp(round_half_even(x / scale), -127, 127); an all-zero row has scale 0 and codes 0 (the
//    reference clamps the absmax at 1e-5 instead; the codes are 0 either way).
//  * w8a8_gemm is the scalar reference GEMM, the oracle for faster kernels:
//    Y[b, o] = float(double(sum_k int32(xq[b, k]) * int32(wq[o, k])) * x_scale[b] * w_scale[o]),
//    the sum accumulated in int32 (exact for in <= 2^17), the product evaluated in double and
//    rounded once.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "lowbit/algo/channel_scaling.hpp"
#include "lowbit/algo/detail/int8_matmul.hpp"
#include "lowbit/detail/parallel.hpp"
#include "lowbit/error.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

/// SmoothQuant's per-input-channel smoothing factors for `weights` (each [out_i, in], all reading
/// the same input) and the calibration absmax of each input channel (`input_max_abs`, in values):
/// s_j = max|X_j|^alpha / max(max|W_j|, 1e-5)^(1 - alpha), clamped at 1e-5 below; s_j = 1 when
/// max|X_j| or max|W_j| is 0. Throws invalid_argument for alpha outside [0, 1] (or NaN), no weights
/// or a weight whose width is not in; invalid_value for a NaN, Inf or negative activation max or a
/// NaN/Inf weight.
inline std::vector<float> smoothquant_scales(std::span<const float> input_max_abs,
                                             std::span<const MatrixView<const float>> weights,
                                             float alpha = 0.5f) {
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

/// smoothquant_scales for a single weight matrix.
inline std::vector<float> smoothquant_scales(std::span<const float> input_max_abs,
                                             MatrixView<const float> weight, float alpha = 0.5f) {
  return smoothquant_scales(input_max_abs, std::span<const MatrixView<const float>>(&weight, 1),
                            alpha);
}

/// The weight side of W8A8 (SmoothQuant's and LLM.int8()'s vector-wise int8): signed int8, one f32
/// scale per output channel, no zero point.
inline Scheme w8a8_weight_scheme() {
  return Scheme::symmetric_int(8, Granularity::per_channel(), ScalarFormat::f32);
}

/// quantize_linear(w, w8a8_weight_scheme()): scale = absmax(row) / 127, round half to even.
inline QuantizedMatrix quantize_w8a8_weights(MatrixView<const float> w,
                                             const LinearQuantizeOptions& options = {}) {
  return quantize_linear(w, w8a8_weight_scheme(), options);
}

/// Activations quantized to int8 one row (token) at a time.
struct Int8Rows {
  std::vector<std::int8_t> codes;  // [rows, cols], row-major
  std::vector<float> scales;       // one per row: x ~= code * scale
  std::size_t rows = 0;
  std::size_t cols = 0;

  std::span<const std::int8_t> row(std::size_t r) const noexcept {
    return {codes.data() + r * cols, cols};
  }
};

/// Dynamic per-token symmetric int8 quantization of x [batch, in]: per row, scale = absmax / 127,
/// code = clamp(round_half_even(x / scale), -127, 127); an all-zero row has scale 0 and codes 0.
/// Throws invalid_value for NaN/Inf (naming the position).
inline Int8Rows quantize_per_token_int8(MatrixView<const float> x) {
  detail::require_finite_input(x, "quantize_per_token_int8");
  Int8Rows out;
  out.rows = x.rows;
  out.cols = x.cols;
  out.codes.resize(x.rows * x.cols);
  out.scales.resize(x.rows);
  for (std::size_t r = 0; r < x.rows; ++r)
    out.scales[r] = detail::quantize_int8_row(
        x.row(r), std::span<std::int8_t>(out.codes.data() + r * x.cols, x.cols));
  return out;
}

/// The reference W8A8 GEMM: y = x w^T with w int8 per output channel (w8a8_weight_scheme(); the
/// scale format may be any) and x [batch, in] quantized per token by quantize_per_token_int8:
///   y[b, o] = float(double(sum_k int32(xq[b, k]) * int32(wq[o, k])) * x_scale[b] * w_scale[o]),
/// the sum in int32. y is [batch, out] and must not overlap x. Throws unsupported for any other
/// weight scheme (or an input rotation) or more than 2^17 input features, invalid_argument for
/// shapes that do not fit, invalid_value for NaN/Inf in x.
inline void w8a8_gemm(const QuantizedMatrix& w, MatrixView<const float> x, MatrixView<float> y) {
  constexpr const char* who = "w8a8_gemm";
  detail::require_int8_per_channel(w, who);
  detail::check_int8_gemm_shapes(w, x, y, who);
  detail::require_finite_input(x, who);
  const Int8Rows xq = quantize_per_token_int8(x);
  const detail::Int8Weights wq = detail::unpack_int8_weights(w);
  const auto batch = static_cast<std::ptrdiff_t>(x.rows);
#pragma omp parallel for schedule(static) if (detail::worth_threads(x.rows * w.rows() * w.cols()))
  for (std::ptrdiff_t b = 0; b < batch; ++b) {
    const auto row = static_cast<std::size_t>(b);
    const std::int8_t* xrow = xq.codes.data() + row * xq.cols;
    for (std::size_t o = 0; o < wq.rows; ++o)
      y(row, o) = detail::int8_output(detail::dot_int8(xrow, wq.row(o), wq.cols), xq.scales[row],
                                      wq.scales[o]);
  }
}

}  // namespace lowbit
