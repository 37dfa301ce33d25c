// The linear quantizer's matrix-level loops (quant/linear.hpp), threaded over rows with OpenMP.
#include "lowbit/quant/linear.hpp"

#include "detail/parallel_rows.hpp"
#include "lowbit/detail/parallel.hpp"

namespace lowbit {

namespace detail {

void require_finite(MatrixView<const float> w, const std::string& tensor_name) {
  for (std::size_t r = 0; r < w.rows; ++r) {
    bool finite = true;
    for (float x : w.row(r)) finite &= std::abs(x) <= std::numeric_limits<float>::max();
    if (finite) continue;
    for (std::size_t c = 0; c < w.cols; ++c) {
      const float x = w(r, c);
      if (!std::isfinite(x))
        throw invalid_value("cannot quantize " + std::string(std::isnan(x) ? "NaN" : "Inf") +
                                " at row " + std::to_string(r) + ", column " + std::to_string(c),
                            ErrorContext{"", tensor_name, {w.rows, w.cols}});
    }
  }
}

}  // namespace detail

namespace {

QuantizedMatrix quantize_linear_unnamed(MatrixView<const float> weights, const Scheme& scheme,
                                        const LinearQuantizeOptions& options) {
  const LinearGrid grid(scheme);
  detail::require_finite(weights, options.tensor_name);
  QuantizedMatrix q(scheme, weights.rows, weights.cols);
  const auto rows = static_cast<std::ptrdiff_t>(weights.rows);
  const bool threaded = detail::worth_threads(weights.size());
  const auto make_codes = [&] { return std::vector<std::uint8_t>(weights.cols); };

  if (scheme.granularity.kind == Granularity::Kind::tensor) {
    ValueRange range;
    for (std::size_t r = 0; r < weights.rows; ++r) range.merge(ValueRange::of(weights.row(r)));
    if (weights.size() == 0) range = ValueRange{0.0f, 0.0f};
    float shrink = 1.0f;
    if (options.clip.enabled && range.lo != range.hi) {
      shrink = options.clip.best_factor([&](float f) {
        const LinearParams p = grid.params(range, f);
        double total = 0.0;
#pragma omp parallel for reduction(+ : total) schedule(static) if (threaded)
        for (std::ptrdiff_t r = 0; r < rows; ++r)
          total += grid.error(weights.row(static_cast<std::size_t>(r)), p, options.clip);
        return total;
      });
    }
    const LinearParams p = grid.params(range, shrink);
    q.set_scale(0, p.scale);
    if (scheme.has_zero_point()) q.set_zero(0, p.zero);
    detail::for_each_row(
        weights.rows, threaded, make_codes, [&](std::size_t r, std::vector<std::uint8_t>& codes) {
          detail::quantize_row(grid, weights.row(r), r, q, codes,
                               [&](std::span<const float>, std::size_t) { return p; });
        });
    return q;
  }

  // A group's scale may not fit its format (f16 scales for weights beyond about 65504 times the
  // largest level): LinearGrid throws, and for_each_row carries the exception out of the threads.
  detail::for_each_row(
      weights.rows, threaded, make_codes, [&](std::size_t r, std::vector<std::uint8_t>& codes) {
        detail::quantize_row(grid, weights.row(r), r, q, codes,
                             [&](std::span<const float> group, std::size_t index) {
                               const LinearParams p = grid.choose_params(group, options.clip);
                               q.set_scale(index, p.scale);
                               if (scheme.has_zero_point()) q.set_zero(index, p.zero);
                               return p;
                             });
      });
  return q;
}

}  // namespace

QuantizedMatrix quantize_linear(MatrixView<const float> weights, const Scheme& scheme,
                                const LinearQuantizeOptions& options) {
  return detail::in_tensor(options.tensor_name, weights,
                           [&] { return quantize_linear_unnamed(weights, scheme, options); });
}

}  // namespace lowbit
