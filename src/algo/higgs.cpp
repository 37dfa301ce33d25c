#include "lowbit/algo/higgs.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lowbit/algo/incoherence.hpp"
#include "lowbit/detail/parallel.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/higgs_grids.hpp"
#include "lowbit/format/packing.hpp"
#include "lowbit/quant/linear.hpp"

namespace lowbit {

Scheme higgs_scheme(const HiggsOptions& options, std::size_t cols) {
  const std::size_t block = options.block == 0 || options.block > cols ? cols : options.block;
  if (options.grid_size < 2 || !std::has_single_bit(static_cast<unsigned>(options.grid_size)))
    throw invalid_argument("HIGGS: the grid size must be a power of two, not " +
                           std::to_string(options.grid_size));
  Scheme scheme{
      .element = ElementFormat::higgs,
      .bits = std::countr_zero(static_cast<unsigned>(options.grid_size)),
      .granularity = Granularity::per_group(block == 0 ? 1 : block),
      .scale_format = options.scale_format,
      .vector_dim = static_cast<std::size_t>(options.dimension < 1 ? 0 : options.dimension)};
  scheme.validate();
  return scheme;
}

QuantizedMatrix quantize_higgs(MatrixView<const float> weights, const HiggsOptions& options) {
  detail::require_finite(weights, options.tensor_name);
  const Scheme scheme = higgs_scheme(options, weights.cols);
  const HiggsGrid grid = higgs_grid(options.dimension, options.grid_size);
  const std::size_t block = scheme.granularity.group_size;
  const auto p = static_cast<std::size_t>(options.dimension);
  return quantize_incoherent(
      weights, {block, options.seed, true}, [&](MatrixView<const float> rotated) {
        QuantizedMatrix q(scheme, rotated.rows, rotated.cols);
        const auto rows = static_cast<std::ptrdiff_t>(rotated.rows);
#pragma omp parallel if (detail::worth_threads(rotated.size()))
        {
          std::vector<std::uint8_t> codes(scheme.codes_per_row(rotated.cols));
          std::vector<float> v(p);
#pragma omp for schedule(static)
          for (std::ptrdiff_t r = 0; r < rows; ++r) {
            const auto row = static_cast<std::size_t>(r);
            const std::span<const float> x = rotated.row(row);
            for (std::size_t start = 0; start < x.size(); start += block) {
              const std::size_t length = std::min(block, x.size() - start);
              double squares = 0;
              for (std::size_t i = start; i < start + length; ++i)
                squares += static_cast<double>(x[i]) * x[i];
              const float scale =
                  q.set_scale(q.scale_index(row, start),
                              static_cast<float>(std::sqrt(squares / static_cast<double>(length))));
              for (std::size_t i = start; i < start + length; i += p) {
                // A vector cut short by the end of the row is padded with zeros.
                for (std::size_t d = 0; d < p; ++d)
                  v[d] = i + d < x.size() && scale > 0 ? x[i + d] / scale : 0.0f;
                codes[i / p] = static_cast<std::uint8_t>(higgs_nearest(grid, v));
              }
            }
            pack_words(codes, scheme.bits, q.row_words(row), scheme.pack_order);
          }
        }
        return q;
      });
}

}  // namespace lowbit
