// The reference int8 products: SmoothQuant's W8A8 (int8 weights per output channel, int8
// activations per token, int32 accumulation) and LLM.int8()'s mixed-precision decomposition. They
// are the oracles of the int8 activation modes (kernels/reference.hpp) and of every faster int8
// kernel; the quantizers that produce their weights live in algo/smoothquant.hpp and
// algo/llm_int8.hpp, which explain the methods.
//
//  * quantize_per_token_int8, per row of X: scale = absmax / 127, code =
//    clamp(round_half_even(x / scale), -127, 127); an all-zero row has scale 0 and codes 0 (the
//    SmoothQuant reference clamps the absmax at 1e-5 instead; the codes are 0 either way).
//  * w8a8_gemm: Y[b, o] = float(double(sum_k int32(xq[b, k]) * int32(wq[o, k])) * x_scale[b] *
//    w_scale[o]), the sum accumulated in int32 (exact for in <= 2^17), the product evaluated in
//    double and rounded once.
//  * llm_int8_gemm, as bitsandbytes' MatMul8bitLt at inference, where only int8 weights exist:
//    outlier columns are chosen per call (every input column k where some row b has
//    |x[b, k]| > threshold; bitsandbytes tests >=, the paper says "larger than"). Float part: the
//    sum over outlier k of x[b, k] * wdq[o, k], wdq = code * scale the *dequantized int8* weights
//    (bitsandbytes dequantizes those columns of CB), accumulated in double (bitsandbytes: fp16
//    addmm). Int8 part: each row of x with its outlier columns set to zero, quantized as
//    quantize_per_token_int8 does (bitsandbytes zeroes only the outlier *elements* before taking
//    the row absmax; here the row scale comes from the non-outlier columns alone, which is never
//    larger). y[b, o] = float(double(acc) * x_scale[b] * w_scale[o] + float part); with no
//    outlier column this is exactly w8a8_gemm.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/matrix_view.hpp"
#include "lowbit/quantized_matrix.hpp"

namespace lowbit {

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
Int8Rows quantize_per_token_int8(MatrixView<const float> x);

/// The reference W8A8 GEMM: y = x w^T with w int8 per output channel (w8a8_weight_scheme(); the
/// scale format may be any) and x [batch, in] quantized per token by quantize_per_token_int8:
///   y[b, o] = float(double(sum_k int32(xq[b, k]) * int32(wq[o, k])) * x_scale[b] * w_scale[o]),
/// the sum in int32. y is [batch, out] and must not overlap x. Throws unsupported for any other
/// weight scheme (or an input rotation) or more than 2^17 input features, invalid_argument for
/// shapes that do not fit, invalid_value for NaN/Inf in x.
void w8a8_gemm(const QuantizedMatrix& w, MatrixView<const float> x, MatrixView<float> y);

struct LlmInt8Options {
  float threshold = 6.0f;  // |x| above this makes a column an outlier column; > 0, +inf = none
};

/// What one llm_int8_gemm call did.
struct LlmInt8Stats {
  std::vector<std::size_t> outlier_columns;  // ascending input column indices

  std::size_t outlier_count() const noexcept { return outlier_columns.size(); }
};

/// The input columns of x [batch, in] that LLM.int8() multiplies in float: those where some row
/// has |x| > options.threshold, ascending. Throws invalid_argument for a threshold that is not
/// positive (or NaN), invalid_value for NaN/Inf in x.
std::vector<std::size_t> llm_int8_outlier_columns(MatrixView<const float> x,
                                                  const LlmInt8Options& options = {});

/// The reference LLM.int8() GEMM: y = x w^T with w int8 per output channel (as w8a8_gemm takes it)
/// and x [batch, in] decomposed into outlier columns (float, against the dequantized int8 weights)
/// and the rest (per-token int8, int32 accumulation); see the top of this file. y is [batch, out]
/// and must not overlap x. Throws unsupported for any other weight scheme or more than 2^17 input
/// features, invalid_argument for shapes that do not fit or a threshold that is not positive,
/// invalid_value for NaN/Inf in x.
LlmInt8Stats llm_int8_gemm(const QuantizedMatrix& w, MatrixView<const float> x, MatrixView<float> y,
                           const LlmInt8Options& options = {});

}  // namespace lowbit
