// HQQ: Half-Quadratic Quantization (Badri & Shaji, "Half-Quadratic Quantization of Large Machine
// Learning Models", 2023). Calibration-free: per group of input elements it starts from min/max
// asymmetric parameters with a fractional zero point and refines the zero point (optionally also
// the scale) by half-quadratic proximal iterations that minimise the l_p "norm" (p < 1) of the
// quantization error, which favours errors that are mostly zero with a few large ones.
//
// Per group w (G consecutive elements of a row of the [out, in] matrix; the last group of a row
// is shorter when G does not divide it), with L = 2^b - 1:
//
//   s = (max - min) / L   (rounded up to the scale format, so [min, max] stays covered)
//   z = -min / s          (a float: HQQ's zero point is fractional)
//   repeat `iterations` times, beta = beta0 (times kappa after each; kappa is 1 by default):
//     Wq  = clamp(round(w / s + z), 0, L)
//     Wr  = (Wq - z) * s
//     We  = shrink_lp(w - Wr, beta, p),  shrink_lp(x) = sign(x) max(|x| - |x|^(p-1) / beta, 0)
//     z   = mean(Wq - (w - We) / s)
//     early stop: E = mean |w - Wr| over the whole matrix (every group); after this update, stop
//     unless E is strictly below every E before it
//   dequantized: (Wq - z) * s, as QuantizedMatrix::dequantize() computes it.
//
// This is hqq 0.2.8's default solver (github mobiusml/hqq, hqq/core/optimize.py:
// optimize_weights_proximal, an alias of optimize_weights_proximal_legacy, which
// Quantizer.quantize calls through Quantizer.optimize_weights), written with the scale s where
// the reference keeps its inverse 1/s. Its early stop, followed exactly: the error is the l1 error
// (not the l_p objective) of the zero points *before* the iteration's update, averaged over the
// whole tensor, so every group stops at the same iteration; the iteration whose error does not
// decrease still updates the zero points, and those last ones are returned (neither the best ones
// nor ones it measured). In 0.2.8 that solver reads kappa but never applies it: beta stays beta0;
// only optimize_weights_proximal_v2 (the "slow" solver, and the experimental one) still does
// beta *= kappa. Hence kappa = 1 by default here; early_stop off runs every iteration and keeps
// the last parameters, as the slow solver does. The differences, all deliberate:
//  * Storage formats. The scale is rounded to its storage format before the iterations (it does
//    not change unless optimize_scale), the zero point after them; the final codes are computed
//    against the stored scale and zero, so they are what dequantize() reads. The reference works
//    in float32 on the CPU (float16 on CUDA) and casts afterwards; here the errors and means are
//    summed in double.
//  * Range. min/max is the group's own range (0 need not be in it, unlike quantize_linear's
//    asymmetric range); the reference's "denominator <= 1e-4 means scale 1" guard, a float16
//    concern, is replaced by exact handling of constant groups (below), so groups of tiny weights
//    keep a proper scale. Constant groups take no part in the iterations: their error does not
//    change, so leaving it out of E changes no stopping decision.
//  * optimize_scale (off by default, as in the reference's default path): after the shrink step,
//    the scale and zero point together are the least-squares fit of (Wq - z) * s to w - We, the
//    paper's joint update; the new scale is rounded to nearest in its format (it no longer has to
//    cover the range). A fit that is not a positive finite scale leaves the scale unchanged.
//
// Bits: 1 to 8, as in the paper. Constant groups (all-zero ones included) use quantize_linear's
// convention: the value's magnitude is the scale, zero point 0 or 1, code 1 or 0; they dequantize
// exactly whenever the scale format holds the value. Integer zero points (ZeroFormat::code) are
// refused: HQQ's zero points are fractional and need ZeroFormat::f16, bf16 or f32 (each costs 16 or
// 32 bits per group).
//
// Threads: every iteration is one pass over the rows in parallel (OpenMP); the per-row errors are
// added in row order, so the result does not depend on the thread count.
#pragma once

#include <cstddef>
#include <string>

#include "lowbit/error.hpp"
#include "lowbit/format/scalar_format.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

struct HqqOptions {
  std::size_t group_size = 64;
  float lp_norm = 0.7f;  // p of the l_p error the iterations minimise, in (0, 1]
  float beta = 10.0f;    // initial weight of the half-quadratic coupling, > 0
  float kappa = 1.0f;    // beta grows by this factor every iteration, >= 1 (hqq 0.2.8: constant)
  int iterations = 20;   // >= 0; 0 keeps the min/max parameters
  bool optimize_scale = false;
  bool early_stop = true;  // hqq 0.2.8's: stop when the whole matrix's l1 error stops decreasing
  ScalarFormat scale_format = ScalarFormat::f16;
  ZeroFormat zero_format = ZeroFormat::f16;
  std::string tensor_name;  // named in error messages
};

/// The Scheme quantize_hqq produces for `bits` and `options`: unsigned integers with a fractional
/// zero point, per group. Throws invalid_argument for bits outside 1..8, a zero group size, or
/// ZeroFormat::code.
Scheme hqq_scheme(int bits, const HqqOptions& options = {});

/// Quantizes a [rows, cols] float matrix (rows = output channels) with HQQ to `bits`-bit unsigned
/// codes, per group of options.group_size input elements, with a fractional zero point in
/// options.zero_format and the scale in options.scale_format (the Scheme is hqq_scheme(bits,
/// options)). Throws invalid_argument for bits outside 1..8, ZeroFormat::code, a zero group size
/// or out-of-range iteration parameters; invalid_value naming the position for NaN/Inf input.
QuantizedMatrix quantize_hqq(MatrixView<const float> weights, int bits,
                             const HqqOptions& options = {});

}  // namespace lowbit
