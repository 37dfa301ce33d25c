// Codebook quantization: every vector of vector_dim consecutive weights of a row is replaced by
// the index of an entry of a learned table of 2^bits entries (k-means), one table per tensor,
// output channel or group of input elements (Scheme::codebook_granularity).
//
//   dequantized weight = codebook[index][component] * scale
//
// * The codebooks are stored rounded to Scheme::codebook_format, and the codes are assigned
//   against those stored values after rounding, so each code is the nearest stored entry.
// * A short last vector of a row (vector_dim not dividing the row) has its missing components
//   absent: they neither pull the centers nor count in the distance that chooses its code.
// * With scales (Scheme::granularity not none), each scale group is divided by its absmax
//   (rounded up to the scale format, as the linear quantizer does, and stored as the scale), and
//   k-means runs on the normalized values with each weight's error multiplied by its scale
//   squared, so the objective is still the squared error of the dequantized matrix. An all-zero
//   group stores scale 0 (its normalized values are 0). Tensor scales and double quantization
//   are not supported here.
// * Optional importance weights (same shape as the matrix, finite, >= 0) make the objective
//   sum importance * (w - dequantized w)^2; a weight of importance 0 is free to take any entry.
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
#include "lowbit/format/packing.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/kmeans.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

struct CodebookOptions {
  int iterations = 100;  // Lloyd iterations per codebook, at most
  std::uint64_t seed = 0;
  MatrixView<const float> importance{};  // empty, or one weight >= 0 per element of the matrix
  std::string tensor_name;               // named in error messages
};

namespace detail {

/// The seed of codebook `index`'s k-means.
constexpr std::uint64_t codebook_seed(std::uint64_t seed, std::size_t index) noexcept {
  return mix_seed(seed, index);
}

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

}  // namespace detail

/// Quantizes a [rows, cols] float matrix (rows = output channels) with a codebook Scheme.
/// Throws invalid_value for NaN/Inf weights (naming the position) or bad importance values,
/// invalid_argument for an invalid Scheme or mismatched importance, unsupported for a Scheme that
/// is not a codebook one or has a tensor scale or double quantization. Codebooks are independent
/// k-means problems, run in parallel for large matrices; the result does not depend on the
/// thread count.
inline QuantizedMatrix quantize_codebook(MatrixView<const float> weights, const Scheme& scheme,
                                         const CodebookOptions& options = {}) {
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
#pragma omp parallel for schedule(dynamic) if (threaded)
  for (std::ptrdiff_t b = 0; b < book_count; ++b) {
    const auto index = static_cast<std::size_t>(b);
    const auto block = detail::CodebookBlock::of(scheme, books, index, rows, cols);
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
  }
  for (std::size_t r = 0; r < rows; ++r)
    pack_words(std::span<const std::uint8_t>(codes.data() + r * codes_per_row, codes_per_row),
               scheme.bits, q.row_words(r), scheme.pack_order);
  return q;
}

}  // namespace lowbit
