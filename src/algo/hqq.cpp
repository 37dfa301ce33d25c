#include "lowbit/algo/hqq.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "detail/parallel_rows.hpp"
#include "lowbit/detail/parallel.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/packing.hpp"
#include "lowbit/quant/grid.hpp"
#include "lowbit/quant/linear.hpp"

namespace lowbit {

namespace {

/// The generalised soft-thresholding operator of the l_p proximal step:
/// sign(x) * max(|x| - |x|^(p-1) / beta, 0). At x = 0, |x|^(p-1) is +inf for p < 1 and the result
/// is 0, as it should be.
float hqq_shrink(float x, float beta, float p) noexcept {
  const float magnitude = std::abs(x);
  const float shrunk = std::max(magnitude - std::pow(magnitude, p - 1.0f) / beta, 0.0f);
  return std::copysign(shrunk, x);
}

/// The min/max start of a group that is not constant: the scale rounded up to its format, the
/// zero point fractional.
LinearParams hqq_start(const ValueRange& range, ScalarFormat format, float top) {
  // hi - lo can overflow float near FLT_MAX; the scale itself cannot.
  const double width = static_cast<double>(range.hi) - static_cast<double>(range.lo);
  LinearParams p;
  p.scale = detail::storable_scale(format, static_cast<float>(width / static_cast<double>(top)));
  p.zero = -range.lo / p.scale;
  return p;
}

/// One HQQ iteration for one group at a time; holds the scratch space.
class HqqStep {
 public:
  HqqStep(int bits, const HqqOptions& options, std::size_t group_size)
      : options_(options),
        top_(static_cast<float>((1 << bits) - 1)),
        levels_(group_size),
        targets_(group_size) {}

  /// Updates `p` (the scale only with optimize_scale) by one iteration on `w` and returns
  /// sum |w - Wr| of the parameters it started from. An update that is not finite (impossible for
  /// finite input) leaves `p` as it was.
  double run(std::span<const float> w, LinearParams& p, float beta) {
    const std::size_t n = w.size();
    const double count = static_cast<double>(n);
    // Wq, the l1 error, and the targets w - We that the linear model (Wq - z) * s should fit.
    double error = 0.0, sum_levels = 0.0, sum_targets = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const float level =
          detail::round_half_even(std::min(std::max(w[i] / p.scale + p.zero, 0.0f), top_));
      const float reconstructed = (level - p.zero) * p.scale;
      error += std::abs(w[i] - reconstructed);
      levels_[i] = level;
      targets_[i] = w[i] - hqq_shrink(w[i] - reconstructed, beta, options_.lp_norm);
      sum_levels += level;
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
          const float rounded = round_scalar(options_.scale_format, static_cast<float>(fit));
          if (rounded > 0.0f && std::isfinite(rounded)) next.scale = rounded;
        }
      }
    }
    // Zero-point step: z = mean(Wq - (w - We) / s).
    double sum = 0.0;
    for (std::size_t i = 0; i < n; ++i) sum += levels_[i] - targets_[i] / next.scale;
    next.zero = static_cast<float>(sum / count);
    if (std::isfinite(next.zero)) p = next;
    return error;
  }

 private:
  const HqqOptions& options_;
  float top_;
  std::vector<float> levels_, targets_;
};

void check_hqq_options(const HqqOptions& options) {
  if (!(options.lp_norm > 0.0f && options.lp_norm <= 1.0f))
    throw invalid_argument("HQQ: lp_norm must be in (0, 1], not " +
                           std::to_string(options.lp_norm));
  if (!(options.beta > 0.0f) || !std::isfinite(options.beta))
    throw invalid_argument("HQQ: beta must be positive and finite");
  if (!(options.kappa >= 1.0f) || !std::isfinite(options.kappa))
    throw invalid_argument("HQQ: kappa must be at least 1 and finite");
  if (options.iterations < 0) throw invalid_argument("HQQ: iterations must not be negative");
}

}  // namespace

Scheme hqq_scheme(int bits, const HqqOptions& options) {
  if (options.zero_format == ZeroFormat::code)
    throw invalid_argument(
        "HQQ: zero points are fractional and need a float zero format (f16, bf16 or f32), not "
        "code");
  if (options.group_size == 0) throw invalid_argument("HQQ: group size must be at least 1");
  if (bits < 1 || bits > 8) throw invalid_argument("HQQ: 1 to 8 bits, not " + std::to_string(bits));
  return Scheme::asymmetric_int(bits, Granularity::per_group(options.group_size),
                                options.scale_format, options.zero_format);
}

namespace {

QuantizedMatrix quantize_hqq_unnamed(MatrixView<const float> weights, int bits,
                                     const HqqOptions& options) {
  const Scheme scheme = hqq_scheme(bits, options);
  check_hqq_options(options);
  detail::require_finite(weights, options.tensor_name);

  // The linear grid (quant/grid.hpp) fits the constant groups, stores the parameters and computes
  // the codes; the iterations below refine the other groups' zero points (and scales).
  const std::unique_ptr<Grid> grid = make_grid(scheme);
  QuantizedMatrix q(scheme, weights.rows, weights.cols);
  const std::size_t rows = weights.rows, cols = weights.cols;
  const std::size_t group = scheme.granularity.row_span(cols);
  const float top = static_cast<float>((1 << bits) - 1);
  const auto row_count = static_cast<std::ptrdiff_t>(rows);
  const bool threaded = detail::worth_threads(weights.size());

  // The parameters of every group (scale_index order), and which groups iterate.
  std::vector<LinearParams> params(q.scale_grid().size());
  std::vector<unsigned char> iterates(params.size(), 0);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t start = 0; start < cols; start += group) {
      const std::size_t k = q.scale_index(r, start);
      const std::span<const float> part =
          weights.row(r).subspan(start, std::min(group, cols - start));
      const ValueRange range = ValueRange::of(part);
      iterates[k] = range.lo != range.hi;
      if (iterates[k]) {
        params[k] = hqq_start(range, options.scale_format, top);
      } else {  // the value is the scale, code 1 (or code 0 with zero point 1 if negative)
        const GroupParams constant = grid->fit(part, q);
        params[k] = {constant.scale, constant.zero};
      }
    }

  // The iterations run over the whole matrix at once: the early stop watches its total error.
  std::vector<double> row_errors(rows, 0.0);
  double best_error = std::numeric_limits<double>::infinity();
  float beta = options.beta;
  for (int iteration = 0; iteration < options.iterations; ++iteration) {
#pragma omp parallel if (threaded)
    {
      HqqStep step(bits, options, group);
#pragma omp for schedule(static)
      for (std::ptrdiff_t rr = 0; rr < row_count; ++rr) {
        const auto r = static_cast<std::size_t>(rr);
        double error = 0.0;
        for (std::size_t start = 0; start < cols; start += group) {
          const std::size_t k = q.scale_index(r, start);
          if (iterates[k])
            error += step.run(weights.row(r).subspan(start, std::min(group, cols - start)),
                              params[k], beta);
        }
        row_errors[r] = error;
      }
    }
    beta *= options.kappa;
    if (!options.early_stop) continue;
    double total = 0.0;
    for (double e : row_errors) total += e;  // in row order: independent of the thread count
    if (!(total < best_error)) break;        // keeping the zero points this iteration updated
    best_error = total;
  }

  detail::for_each_row(
      rows, threaded, [&] { return std::vector<std::uint8_t>(cols); },
      [&](std::size_t r, std::vector<std::uint8_t>& codes) {
        const std::span<const float> row = weights.row(r);
        for (std::size_t start = 0; start < cols; start += group) {
          const std::size_t k = q.scale_index(r, start), length = std::min(group, cols - start);
          // The codes are computed against the stored values.
          const GroupParams stored = grid->store(q, k, {params[k].scale, params[k].zero});
          grid->quantize_group(q, r, start, row.subspan(start, length), stored,
                               std::span(codes).subspan(start, length), {});
        }
        pack_words(codes, scheme.bits, q.row_words(r), scheme.pack_order);
      });
  return q;
}

}  // namespace

QuantizedMatrix quantize_hqq(MatrixView<const float> weights, int bits, const HqqOptions& options) {
  return detail::in_tensor(options.tensor_name, weights,
                           [&] { return quantize_hqq_unnamed(weights, bits, options); });
}

}  // namespace lowbit
