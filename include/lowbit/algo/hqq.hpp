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
//   repeat `iterations` times, beta = beta0, beta *= kappa after each:
//     Wq  = clamp(round(w / s + z), 0, L)
//     Wr  = (Wq - z) * s
//     We  = shrink_lp(w - Wr, beta, p),  shrink_lp(x) = sign(x) max(|x| - |x|^(p-1) / beta, 0)
//     z   = mean(Wq - (w - We) / s)
//   dequantized: (Wq - z) * s, as QuantizedMatrix::dequantize() computes it.
//
// This is optimize_weights_proximal_legacy of the reference implementation (github mobiusml/hqq,
// hqq/core/optimize.py), written with the scale s where the reference keeps its inverse 1/s. The
// differences, all deliberate:
//  * Early stop. The reference measures the error as mean |w - Wr| (the l1 error, not the l_p
//    objective) over the *whole tensor* and stops every group at once when it stops decreasing,
//    returning the zero point computed in that last step (neither the best one nor one it
//    measured). Here the same l1 error is measured per group, each group stops on its own when
//    its error does not strictly decrease, and the parameters with the smallest error measured
//    (the min/max start included, the last update too when all iterations run) are kept, as the
//    reference's optimize_weights_proximal_v2 keeps them. With early_stop off, every iteration
//    runs and the last parameters are kept, as the reference's "slow" solver does.
//  * Storage formats. The scale is rounded to its storage format before the iterations (it does
//    not change unless optimize_scale), the zero point after them; the final codes are computed
//    against the stored scale and zero, so they are what dequantize() reads. The reference works
//    in float32 on the CPU (float16 on CUDA) and casts afterwards.
//  * Range. min/max is the group's own range (0 need not be in it, unlike quantize_linear's
//    asymmetric range); the reference's "denominator <= 1e-4 means scale 1" guard, a float16
//    concern, is replaced by exact handling of constant groups (below), so groups of tiny weights
//    keep a proper scale.
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
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "lowbit/detail/parallel.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/scalar_format.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

struct HqqOptions {
  std::size_t group_size = 64;
  float lp_norm = 0.7f;  // p of the l_p error the iterations minimise, in (0, 1]
  float beta = 10.0f;    // initial weight of the half-quadratic coupling, > 0
  float kappa = 1.01f;   // beta grows by this factor every iteration, >= 1
  int iterations = 20;   // >= 0; 0 keeps the min/max parameters
  bool optimize_scale = false;
  bool early_stop = true;
  ScalarFormat scale_format = ScalarFormat::f16;
  ZeroFormat zero_format = ZeroFormat::f16;
  std::string tensor_name;  // named in error messages
};

/// The Scheme quantize_hqq produces for `bits` and `options`: unsigned integers with a fractional
/// zero point, per group. Throws invalid_argument for bits outside 1..8, a zero group size, or
/// ZeroFormat::code.
inline Scheme hqq_scheme(int bits, const HqqOptions& options = {}) {
  if (options.zero_format == ZeroFormat::code)
    throw invalid_argument(
        "HQQ: zero points are fractional and need a float zero format (f16, bf16 or f32), not "
        "code");
  if (options.group_size == 0) throw invalid_argument("HQQ: group size must be at least 1");
  if (bits < 1 || bits > 8) throw invalid_argument("HQQ: 1 to 8 bits, not " + std::to_string(bits));
  return Scheme::asymmetric_int(bits, Granularity::per_group(options.group_size),
                                options.scale_format, options.zero_format);
}

namespace detail {

/// The generalised soft-thresholding operator of the l_p proximal step:
/// sign(x) * max(|x| - |x|^(p-1) / beta, 0). At x = 0, |x|^(p-1) is +inf for p < 1 and the result
/// is 0, as it should be.
inline float hqq_shrink(float x, float beta, float p) noexcept {
  const float magnitude = std::abs(x);
  const float shrunk = std::max(magnitude - std::pow(magnitude, p - 1.0f) / beta, 0.0f);
  return std::copysign(shrunk, x);
}

/// Runs HQQ's iterations for one group at a time; holds the scratch space.
class HqqGroupSolver {
 public:
  HqqGroupSolver(int bits, const HqqOptions& options, std::size_t group_size)
      : options_(options),
        top_(static_cast<float>((1 << bits) - 1)),
        levels_(group_size),
        targets_(group_size) {}

  /// Scale and zero point for `w` (not empty, finite); the scale is a value of the scale format,
  /// the zero point is not yet rounded to the zero format.
  LinearParams solve(std::span<const float> w) {
    const ValueRange range = ValueRange::of(w);
    const ScalarFormat format = options_.scale_format;
    LinearParams p;
    if (range.lo == range.hi) {
      // Constant (or all-zero) group: as quantize_linear, the value is the scale, code 1 (or
      // code 0 with zero point 1 for a negative value).
      p.scale = storable_scale(format, std::abs(range.lo));
      p.zero = range.lo < 0.0f ? 1.0f : 0.0f;
      return p;
    }
    // hi - lo can overflow float near FLT_MAX; the scale itself cannot.
    const double width = static_cast<double>(range.hi) - static_cast<double>(range.lo);
    p.scale = storable_scale(format, static_cast<float>(width / static_cast<double>(top_)));
    p.zero = -range.lo / p.scale;

    const std::size_t n = w.size();
    const double count = static_cast<double>(n);
    LinearParams best = p;
    double best_error = std::numeric_limits<double>::infinity();
    float beta = options_.beta;
    bool stopped = false;
    for (int iteration = 0; iteration < options_.iterations; ++iteration) {
      const double error = l1_error(w, p);  // also fills levels_
      if (options_.early_stop) {
        if (error < best_error) {
          best_error = error;
          best = p;
        } else {
          stopped = true;
          break;
        }
      }
      // Shrink step, then the targets w - We that the linear model (Wq - z) * s should fit.
      double sum_levels = 0.0, sum_targets = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        const float reconstructed = (levels_[i] - p.zero) * p.scale;
        const float shrunk = hqq_shrink(w[i] - reconstructed, beta, options_.lp_norm);
        targets_[i] = w[i] - shrunk;
        sum_levels += levels_[i];
        sum_targets += targets_[i];
      }
      LinearParams next = p;
      if (options_.optimize_scale) {
        const double mean_levels = sum_levels / count, mean_targets = sum_targets / count;
        double covariance = 0.0, variance = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
          const double dl = levels_[i] - mean_levels;
          covariance += dl * (targets_[i] - mean_targets);
          variance += dl * dl;
        }
        if (variance > 0.0) {
          const double fit = covariance / variance;
          if (fit > 0.0 && fit <= std::numeric_limits<float>::max()) {
            const float rounded = round_scalar(format, static_cast<float>(fit));
            if (rounded > 0.0f && std::isfinite(rounded)) next.scale = rounded;
          }
        }
      }
      // Zero-point step: z = mean(Wq - (w - We) / s).
      double sum = 0.0;
      for (std::size_t i = 0; i < n; ++i) sum += levels_[i] - targets_[i] / next.scale;
      next.zero = static_cast<float>(sum / count);
      if (!std::isfinite(next.zero)) {
        stopped = true;  // cannot happen for finite input; keep what was measured
        if (!options_.early_stop) best = p;
        break;
      }
      p = next;
      beta *= options_.kappa;
    }
    if (!stopped) {
      if (!options_.early_stop)
        best = p;
      else if (l1_error(w, p) < best_error)
        best = p;
    }
    return best;
  }

 private:
  // sum |w - (Wq - z) * s| with Wq = clamp(round(w / s + z), 0, L), leaving Wq in levels_.
  double l1_error(std::span<const float> w, const LinearParams& p) {
    double total = 0.0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      const float level = round_half_even(std::min(std::max(w[i] / p.scale + p.zero, 0.0f), top_));
      levels_[i] = level;
      total += std::abs(w[i] - (level - p.zero) * p.scale);
    }
    return total;
  }

  const HqqOptions& options_;
  float top_;
  std::vector<float> levels_, targets_;
};

}  // namespace detail

/// Quantizes a [rows, cols] float matrix (rows = output channels) with HQQ to `bits`-bit unsigned
/// codes, per group of options.group_size input elements, with a fractional zero point in
/// options.zero_format and the scale in options.scale_format (the Scheme is hqq_scheme(bits,
/// options)). Throws invalid_argument for bits outside 1..8, ZeroFormat::code, a zero group size
/// or out-of-range iteration parameters; invalid_value naming the position for NaN/Inf input.
inline QuantizedMatrix quantize_hqq(MatrixView<const float> weights, int bits,
                                    const HqqOptions& options = {}) {
  const Scheme scheme = hqq_scheme(bits, options);
  if (!(options.lp_norm > 0.0f && options.lp_norm <= 1.0f))
    throw invalid_argument("HQQ: lp_norm must be in (0, 1], not " +
                           std::to_string(options.lp_norm));
  if (!(options.beta > 0.0f) || !std::isfinite(options.beta))
    throw invalid_argument("HQQ: beta must be positive and finite");
  if (!(options.kappa >= 1.0f) || !std::isfinite(options.kappa))
    throw invalid_argument("HQQ: kappa must be at least 1 and finite");
  if (options.iterations < 0) throw invalid_argument("HQQ: iterations must not be negative");
  detail::require_finite(weights, options.tensor_name);

  const LinearGrid grid(scheme);
  QuantizedMatrix q(scheme, weights.rows, weights.cols);
  const auto rows = static_cast<std::ptrdiff_t>(weights.rows);
  const std::size_t group = std::min(options.group_size, std::max<std::size_t>(weights.cols, 1));
#pragma omp parallel if (detail::worth_threads(weights.size()))
  {
    detail::HqqGroupSolver solver(bits, options, group);
    std::vector<std::uint8_t> codes(weights.cols);
#pragma omp for schedule(static)
    for (std::ptrdiff_t r = 0; r < rows; ++r)
      detail::quantize_row(
          grid, weights.row(static_cast<std::size_t>(r)), static_cast<std::size_t>(r), q, codes,
          [&](std::span<const float> values, std::size_t index) {
            const LinearParams p = solver.solve(values);
            // The codes are computed against the stored values.
            return LinearParams{q.set_scale(index, p.scale), q.set_zero(index, p.zero)};
          });
  }
  return q;
}

}  // namespace lowbit
