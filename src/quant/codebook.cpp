#include "lowbit/quant/codebook.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "lowbit/detail/parallel.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/packing.hpp"
#include "lowbit/quant/linear.hpp"
#include "quant/kmeans_internal.hpp"

namespace lowbit {

namespace {

/// The columns [begin, end) of the rows [row_begin, row_end) that codebook `index` serves.
struct CodebookBlock {
  std::size_t row_begin = 0, row_end = 0, col_begin = 0, col_end = 0;

  static CodebookBlock of(const Scheme& scheme, const ScaleGrid& grid, std::size_t index,
                          std::size_t rows, std::size_t cols) noexcept {
    switch (scheme.codebook_granularity.kind) {
      case Granularity::Kind::channel:
        return {index, index + 1, 0, cols};
      case Granularity::Kind::group: {
        const std::size_t g = scheme.codebook_granularity.group_size;
        const std::size_t row = index / grid.cols, begin = (index % grid.cols) * g;
        return {row, row + 1, begin, std::min(cols, begin + g)};
      }
      default:
        return {0, rows, 0, cols};
    }
  }
};

}  // namespace

QuantizedMatrix quantize_codebook(MatrixView<const float> weights, const Scheme& scheme,
                                  const CodebookOptions& options) {
  scheme.validate();
  if (!scheme.is_codebook())
    throw unsupported("codebook quantization needs codebook elements, not " + scheme.to_string());
  if (scheme.tensor_scale || scheme.double_quant_block > 0)
    throw unsupported("codebook quantization does not do tensor scales or double quantization (" +
                      scheme.to_string() + ")");
  if (options.iterations < 0) throw invalid_argument("codebook: iterations must not be negative");
  detail::require_finite(weights, options.tensor_name);
  const MatrixView<const float>& importance = options.importance;
  const bool weighted = importance.data != nullptr || importance.rows != 0 || importance.cols != 0;
  if (weighted) {
    if (importance.rows != weights.rows || importance.cols != weights.cols) {
      std::string message = "codebook: importance is [";
      message.append(std::to_string(importance.rows))
          .append(", ")
          .append(std::to_string(importance.cols))
          .append("], weights are [")
          .append(std::to_string(weights.rows))
          .append(", ")
          .append(std::to_string(weights.cols))
          .append("]");
      throw invalid_argument(message, ErrorContext{"", options.tensor_name, {}});
    }
    for (std::size_t r = 0; r < importance.rows; ++r)
      for (std::size_t c = 0; c < importance.cols; ++c) {
        const float x = importance(r, c);
        if (!(x >= 0.0f && x <= std::numeric_limits<float>::max())) {
          std::string message = "codebook: importance at row ";
          message.append(std::to_string(r))
              .append(", column ")
              .append(std::to_string(c))
              .append(" is not finite and non-negative");
          throw invalid_value(message, ErrorContext{"", options.tensor_name, {}});
        }
      }
  }

  const std::size_t rows = weights.rows, cols = weights.cols, dim = scheme.vector_dim;
  const std::size_t codes_per_row = scheme.codes_per_row(cols);
  QuantizedMatrix q(scheme, rows, cols);

  // Scales: the absmax of each scale group, rounded up to the scale format, as stored.
  std::vector<float> scales;
  if (scheme.has_scales()) {
    const ScaleGrid& grid = q.scale_grid();
    std::vector<float> absmax(grid.size(), 0.0f);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < cols; ++c) {
        float& m = absmax[q.scale_index(r, c)];
        m = std::max(m, std::abs(weights(r, c)));
      }
    scales.resize(grid.size());
    for (std::size_t i = 0; i < grid.size(); ++i)
      scales[i] = q.set_scale(i, detail::storable_scale(scheme.scale_format, absmax[i]));
  }

  const ScaleGrid& books = q.codebook_grid();
  const std::size_t entries = scheme.codebook_entries();
  std::vector<std::uint8_t> codes(rows * codes_per_row, 0);
  const auto book_count = static_cast<std::ptrdiff_t>(books.size());
  const bool threaded = books.size() > 1 && detail::worth_threads(rows * cols * entries);
  // Codebooks serve disjoint sets of codes, so the threads write disjoint parts of `codes` and of
  // the stored codebooks; rows are packed afterwards (codebooks share packed words).
  // A codebook entry beyond its format's range throws: kept and rethrown after the region.
  std::exception_ptr failure;
  const float largest_entry = round_scalar_up(scheme.codebook_format, FLT_MAX);
#pragma omp parallel for schedule(dynamic) if (threaded)
  for (std::ptrdiff_t b = 0; b < book_count; ++b) try {
      const auto index = static_cast<std::size_t>(b);
      const auto block = CodebookBlock::of(scheme, books, index, rows, cols);
      const std::size_t vectors_per_row = (block.col_end - block.col_begin + dim - 1) / dim;
      const std::size_t count = (block.row_end - block.row_begin) * vectors_per_row;
      // Scale of each weight relative to the codebook's largest, so weights stay in float range.
      float top_scale = 0.0f;
      if (!scales.empty())
        for (std::size_t r = block.row_begin; r < block.row_end; ++r)
          for (std::size_t c = block.col_begin; c < block.col_end; ++c)
            top_scale = std::max(top_scale, scales[q.scale_index(r, c)]);
      const bool ragged = (block.col_end - block.col_begin) % dim != 0;
      const bool need_weights = weighted || ragged || top_scale > 0.0f;
      std::vector<float> points(count * dim, 0.0f), point_weights(need_weights ? count * dim : 0);
      std::size_t p = 0;
      for (std::size_t r = block.row_begin; r < block.row_end; ++r)
        for (std::size_t start = block.col_begin; start < block.col_end; start += dim, ++p)
          for (std::size_t j = 0; j < dim; ++j) {
            const std::size_t c = start + j;
            if (c >= block.col_end) {
              if (need_weights) point_weights[p * dim + j] = 0.0f;  // absent component
              continue;
            }
            float x = weights(r, c), w = weighted ? importance(r, c) : 1.0f;
            if (top_scale > 0.0f) {
              const float s = scales[q.scale_index(r, c)];
              x = s > 0.0f ? x / s : 0.0f;
              const float relative = s / top_scale;
              w *= relative * relative;
            }
            points[p * dim + j] = x;
            if (need_weights) point_weights[p * dim + j] = w;
          }
      // Dimension 1 takes one weight per point; per-component weights otherwise.
      KMeansOptions kmeans_options;
      kmeans_options.clusters = static_cast<int>(entries);
      kmeans_options.max_iterations = options.iterations;
      kmeans_options.seed = detail::codebook_seed(options.seed, index);
      const KMeansResult result = kmeans(points, dim, point_weights, kmeans_options);
      for (float center : result.centers)
        if (!(std::abs(center) <= largest_entry)) {
          char text[160];
          std::snprintf(text, sizeof text,
                        "codebook %zu: an entry of %g is beyond the largest %s value (%g): weights "
                        "this large need f32 codebooks, or scales",
                        index, static_cast<double>(center), to_string(scheme.codebook_format),
                        static_cast<double>(largest_entry));
          throw invalid_value(text, ErrorContext{"", options.tensor_name, {rows, cols}});
        }
      const std::vector<float> stored = q.set_codebook(index, result.centers);
      // Codes against the stored (rounded) entries.
      const detail::KMeansData data(points, dim, point_weights);
      const detail::NearestCenter nearest(data, stored.data(), entries);
      p = 0;
      for (std::size_t r = block.row_begin; r < block.row_end; ++r)
        for (std::size_t v = 0; v < vectors_per_row; ++v, ++p) {
          double best = 0.0;
          codes[r * codes_per_row + block.col_begin / dim + v] =
              static_cast<std::uint8_t>(nearest(p, best));
        }
    } catch (...) {
#pragma omp critical(lowbit_codebook_failure)
      if (!failure) failure = std::current_exception();
    }
  if (failure) std::rethrow_exception(failure);
  for (std::size_t r = 0; r < rows; ++r)
    pack_words(std::span<const std::uint8_t>(codes.data() + r * codes_per_row, codes_per_row),
               scheme.bits, q.row_words(r), scheme.pack_order);
  return q;
}

}  // namespace lowbit
