// The reference dequantize-GEMM: scalar, simple, exact up to one rounding per output. It is the
// oracle every faster kernel is tested against, and what the reference backend runs.
//
// Y = X W^T for W [out, in] (a QuantizedMatrix, any Scheme) and X [batch, in] row-major.
//   none            y[b, o] = float(sum_k double(x'[b, k]) * double(w[o, k])), w the dequantized
//                   weights (QuantizedMatrix::dequantize: (code value - zero) * scale * tensor
//                   scale), x' = R x for a matrix stored with an input rotation R.
//   int8_per_token  x'[b] quantized to int8 (quantize_per_token_int8, kernels/int8_reference.hpp:
//   absmax / 127, ties to even)
//                   and, with integer weights of any width, scale group g of row o:
//                     y[b, o] = float(sx[b] * sum_g s_g t (double(acc_g) - z_g * double(X_g)))
//                   acc_g = sum_{k in g} int32(xq[b, k]) * int32(level[o, k]) (exact),
//                   X_g = sum_{k in g} xq[b, k], level the code's integer value, z_g the zero point
//                   (0 when symmetric; fractional zeros allowed), s_g the scale, t the tensor
//                   scale. W8A8 is int8 per-channel weights; W4A8 int4 grouped ones.
//   llm_int8        llm_int8_gemm (kernels/int8_reference.hpp): int8 per-channel weights only.
#pragma once

#include <vector>

#include "lowbit/kernels/backend.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quantized_matrix.hpp"

namespace lowbit::kernels {

namespace detail {

/// Throws invalid_argument unless X is [batch, cols] and Y [batch, rows] for a [rows, cols] weight.
void check_gemm_shapes(std::size_t rows, std::size_t cols, MatrixView<const float> x,
                       MatrixView<float> y, const char* who);

/// The activations in the basis the stored weights expect: X, or X R^T when W carries an input
/// rotation (each row x <- R x).
std::vector<float> rotated_inputs(const QuantizedMatrix& w, MatrixView<const float> x);

/// Throws unsupported unless int8_per_token can run `scheme`: integer elements with plain
/// scales (no codebooks, no double quantization).
void require_integer_weights(const Scheme& scheme, const char* who);

}  // namespace detail

/// y = x w^T with w given dequantized ([out, in], in the stored basis) and x already rotated:
/// the `none` mode's arithmetic.
void reference_gemm_dequantized(MatrixView<const float> w, MatrixView<const float> x,
                                MatrixView<float> y);

/// The int8_per_token mode on already-rotated activations; see the top of this file.
void reference_gemm_int8(const QuantizedMatrix& w, MatrixView<const float> x, MatrixView<float> y);

/// The reference GEMM: y = x w^T in the mode `options.activations`; see the top of this file.
/// Throws invalid_argument for shapes that do not fit, unsupported for int8 modes on weights they
/// cannot run, invalid_value for NaN/Inf activations in the int8 modes.
void reference_gemm(const QuantizedMatrix& w, MatrixView<const float> x, MatrixView<float> y,
                    const PrepareOptions& options = {});

}  // namespace lowbit::kernels
