#include "lowbit/algo/higgs.hpp"

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "detail/parallel_rows.hpp"
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
  // The largest scale the format holds: an RMS above it would be saturated silently.
  const float largest_scale = round_scalar_up(scheme.scale_format, FLT_MAX);
  return detail::in_tensor(options.tensor_name, weights, [&] {
    return quantize_incoherent(
        weights, {block, options.seed, true}, [&](MatrixView<const float> rotated) {
          QuantizedMatrix q(scheme, rotated.rows, rotated.cols);
          detail::for_each_row(
              rotated.rows, detail::worth_threads(rotated.size()),
              [&] {
                return std::pair(std::vector<std::uint8_t>(scheme.codes_per_row(rotated.cols)),
                                 std::vector<float>(p));
              },
              [&](std::size_t row, auto& scratch) {
                auto& [codes, v] = scratch;
                const std::span<const float> x = rotated.row(row);
                for (std::size_t start = 0; start < x.size(); start += block) {
                  const std::size_t length = std::min(block, x.size() - start);
                  double squares = 0;
                  for (std::size_t i = start; i < start + length; ++i)
                    squares += static_cast<double>(x[i]) * x[i];
                  const double rms = std::sqrt(squares / static_cast<double>(length));
                  if (rms > static_cast<double>(largest_scale))
                    throw invalid_value("HIGGS: a group's RMS of " + std::to_string(rms) +
                                        " is beyond the largest " + to_string(scheme.scale_format) +
                                        " scale: weights this large need f32 scales");
                  const float scale =
                      q.set_scale(q.scale_index(row, start), static_cast<float>(rms));
                  for (std::size_t i = start; i < start + length; i += p) {
                    // A vector cut short by the end of the row is padded with zeros.
                    for (std::size_t d = 0; d < p; ++d)
                      v[d] = i + d < x.size() && scale > 0 ? x[i + d] / scale : 0.0f;
                    codes[i / p] = static_cast<std::uint8_t>(higgs_nearest(grid, v));
                  }
                }
                pack_words(codes, scheme.bits, q.row_words(row), scheme.pack_order);
              });
          return q;
        });
  });
}

}  // namespace lowbit
