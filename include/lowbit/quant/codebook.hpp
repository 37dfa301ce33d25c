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

#include <cstddef>
#include <cstdint>
#include <string>

#include "lowbit/error.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/kmeans.hpp"
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

}  // namespace detail

/// Quantizes a [rows, cols] float matrix (rows = output channels) with a codebook Scheme.
/// Throws invalid_value for NaN/Inf weights (naming the position) or bad importance values,
/// invalid_argument for an invalid Scheme or mismatched importance, unsupported for a Scheme that
/// is not a codebook one or has a tensor scale or double quantization. Codebooks are independent
/// k-means problems, run in parallel for large matrices; the result does not depend on the
/// thread count.
QuantizedMatrix quantize_codebook(MatrixView<const float> weights, const Scheme& scheme,
                                  const CodebookOptions& options = {});

}  // namespace lowbit
