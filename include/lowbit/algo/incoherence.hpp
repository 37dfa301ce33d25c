// Hadamard incoherence processing (QuIP#, QuaRot): rotate a weight matrix on its input side by a
// randomized Hadamard transform before quantizing it. The rotation spreads outliers over whole
// blocks, so the rotated weights are close to Gaussian and a uniform grid fits them better;
// W x = (W R^T)(R x) keeps the layer's function, and the rotation is recorded in the
// QuantizedMatrix so that a kernel or a user can rotate the activations.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/format/hadamard.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quantized_matrix.hpp"

namespace lowbit {

struct IncoherenceOptions {
  std::size_t block = 0;  // rotate blocks of this many inputs (0 or more than a row: the whole row)
  std::uint64_t seed = 0;
  bool randomized = true;
};

/// The rotation of each block of a row of `cols` inputs. Throws invalid_argument when the block
/// does not divide the row or is not a size lowbit has a Hadamard matrix for (K * 2^m).
inline HadamardRotation incoherence_rotation(std::size_t cols, const IncoherenceOptions& options) {
  const std::size_t block = options.block == 0 || options.block > cols ? cols : options.block;
  if (block == 0 || cols % block != 0 || !hadamard_size_supported(block))
    throw invalid_argument(
        "Hadamard rotation: blocks of " + std::to_string(block) + " inputs for rows of " +
        std::to_string(cols) +
        " (the block must divide the row and be K * 2^m, K a known Hadamard order)");
  return HadamardRotation{block, options.seed, options.randomized};
}

/// W R^T for the block-diagonal rotation R (blocks of rotation.size inputs), as a dense row-major
/// copy [rows, cols]. Throws invalid_value when a rotated weight does not fit float (finite
/// weights near float's largest value: a rotated weight can be sqrt(block) times larger).
inline std::vector<float> rotated_copy(MatrixView<const float> weights,
                                       const HadamardRotation& rotation) {
  std::vector<float> rotated(weights.rows * weights.cols);
  for (std::size_t r = 0; r < weights.rows; ++r)
    std::copy(weights.row(r).begin(), weights.row(r).end(),
              rotated.begin() + static_cast<std::ptrdiff_t>(r * weights.cols));
  for (std::size_t start = 0; start < weights.cols; start += rotation.size)
    rotate_input_side(
        MatrixView<float>(rotated.data() + start, weights.rows, rotation.size, weights.cols),
        rotation);
  for (std::size_t i = 0; i < rotated.size(); ++i)
    if (!(std::abs(rotated[i]) <= std::numeric_limits<float>::max()))
      throw invalid_value("the Hadamard rotation (blocks of " + std::to_string(rotation.size) +
                          ") of these weights overflows float at row " +
                          std::to_string(i / weights.cols) + ", column " +
                          std::to_string(i % weights.cols));
  return rotated;
}

/// Rotates `weights` blockwise on the input side, quantizes the result with `quantize`
/// (MatrixView<const float> -> QuantizedMatrix) and records the rotation in it.
template <class Quantize>
QuantizedMatrix quantize_incoherent(MatrixView<const float> weights,
                                    const IncoherenceOptions& options, Quantize&& quantize) {
  const HadamardRotation rotation = incoherence_rotation(weights.cols, options);
  const std::vector<float> rotated = rotated_copy(weights, rotation);
  QuantizedMatrix q = std::forward<Quantize>(quantize)(
      MatrixView<const float>(rotated.data(), weights.rows, weights.cols));
  q.set_input_rotation(rotation);
  return q;
}

}  // namespace lowbit
