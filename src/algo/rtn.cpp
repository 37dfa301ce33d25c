// The body of algo/rtn.hpp.
#include "lowbit/algo/rtn.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "detail/parallel_rows.hpp"
#include "lowbit/detail/parallel.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/packing.hpp"
#include "lowbit/quant/linear.hpp"

namespace lowbit {

namespace {

/// Runs body(row, codes) for every row, on OpenMP threads for large matrices, then packs each
/// row's codes. A Grid may be the user's own and may throw: for_each_row carries it out.
template <class Body>
void quantize_rows(MatrixView<const float> weights, QuantizedMatrix& q, Body&& body) {
  const Scheme& scheme = q.scheme();
  detail::for_each_row(
      weights.rows, detail::worth_threads(weights.size()),
      [&] { return std::vector<std::uint8_t>(weights.cols); },
      [&](std::size_t r, std::vector<std::uint8_t>& codes) {
        body(r, std::span<std::uint8_t>(codes));
        pack_words(codes, scheme.bits, q.row_words(r), scheme.pack_order);
      });
}

QuantizedMatrix quantize_rtn_unnamed(MatrixView<const float> weights, const Grid& grid,
                                     const RtnOptions& options) {
  const Scheme& scheme = grid.scheme();
  detail::require_finite(weights, options.tensor_name);
  QuantizedMatrix q(scheme, weights.rows, weights.cols);
  const std::size_t cols = weights.cols;
  const std::size_t span = scheme.granularity.row_span(cols);
  const Granularity::Kind kind = scheme.granularity.kind;

  if (kind == Granularity::Kind::channel || kind == Granularity::Kind::group) {
    grid.prepare(weights, q);
    quantize_rows(weights, q, [&](std::size_t r, std::span<std::uint8_t> codes) {
      const std::span<const float> row = weights.row(r);
      for (std::size_t start = 0; start < cols; start += span) {
        const std::span<const float> group = row.subspan(start, std::min(span, cols - start));
        const GroupParams p = grid.store(q, q.scale_index(r, start), grid.fit(group, q));
        grid.quantize_group(q, r, start, group, p, codes.subspan(start, group.size()), {});
      }
    });
    return q;
  }

  // One matrix (per tensor, or a codebook Scheme without scales) or 2-D blocks: an entry's
  // weights span rows, so they are gathered and fitted before any row is quantized.
  const bool scaled = scheme.has_scales();
  const std::size_t entries = scaled ? q.scale_grid().size() : 1;
  std::vector<std::vector<float>> values(entries);
  for (std::size_t r = 0; r < weights.rows; ++r)
    for (std::size_t start = 0; start < cols; start += span) {
      const std::span<const float> part =
          weights.row(r).subspan(start, std::min(span, cols - start));
      std::vector<float>& to = values[scaled ? q.scale_index(r, start) : 0];
      to.insert(to.end(), part.begin(), part.end());
    }
  grid.prepare(weights, q);
  std::vector<GroupParams> params(entries);
  for (std::size_t k = 0; k < entries; ++k) {
    params[k] = grid.fit(values[k], q);
    if (scaled) params[k] = grid.store(q, k, params[k]);
  }
  values.clear();
  quantize_rows(weights, q, [&](std::size_t r, std::span<std::uint8_t> codes) {
    const std::span<const float> row = weights.row(r);
    for (std::size_t start = 0; start < cols; start += span) {
      const std::span<const float> part = row.subspan(start, std::min(span, cols - start));
      const GroupParams& p = params[scaled ? q.scale_index(r, start) : 0];
      grid.quantize_group(q, r, start, part, p, codes.subspan(start, part.size()), {});
    }
  });
  return q;
}

}  // namespace

QuantizedMatrix quantize_rtn(MatrixView<const float> weights, const Grid& grid,
                             const RtnOptions& options) {
  return detail::in_tensor(options.tensor_name, weights,
                           [&] { return quantize_rtn_unnamed(weights, grid, options); });
}

QuantizedMatrix quantize_rtn(MatrixView<const float> weights, const Scheme& scheme,
                             const RtnOptions& options) {
  GridOptions grid_options;
  grid_options.clip = options.clip;
  return quantize_rtn(weights, *make_grid(scheme, grid_options), options);
}

}  // namespace lowbit
