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
//  * Activations and the product: quantize_per_token_int8 and w8a8_gemm, the scalar reference
//    that faster kernels are tested against, are kernels (kernels/int8_reference.hpp).
#pragma once

#include <span>
#include <vector>

#include "lowbit/algo/channel_scaling.hpp"
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
std::vector<float> smoothquant_scales(std::span<const float> input_max_abs,
                                      std::span<const MatrixView<const float>> weights,
                                      float alpha = 0.5f);

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

}  // namespace lowbit
