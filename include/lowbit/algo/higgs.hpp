// HIGGS (Malinovskii et al., 2024, "Pushing the Limits of Large Language Model Quantization via
// the Linearity Theorem"): rotate each block of a row by a randomized Hadamard transform, scale the
// block by its RMS so that its entries are close to a standard Gaussian, and round p-dimensional
// vectors of it to the MSE-optimal grid for a standard Gaussian (higgs_grids.hpp). The codes index
// the fixed grid; the per-block scales and the rotation are stored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "lowbit/error.hpp"
#include "lowbit/format/scalar_format.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

struct HiggsOptions {
  int dimension = 2;        // p: weights per grid point
  int grid_size = 256;      // n: points in the grid (bits per weight = log2(n) / p)
  std::size_t block = 512;  // Hadamard and scale block along the input (a row, when shorter)
  std::uint64_t seed = 0;   // of the random signs
  ScalarFormat scale_format = ScalarFormat::f16;
  std::string tensor_name;  // named in error messages
};

/// The Scheme HIGGS stores a [rows, cols] matrix with. Throws invalid_argument for a grid size
/// that is not a power of two or options that make no valid Scheme.
Scheme higgs_scheme(const HiggsOptions& options, std::size_t cols);

/// Quantizes a [rows, cols] float matrix (rows = output channels) with HIGGS: the rotated rows'
/// blocks scaled by their RMS (stored in options.scale_format) and rounded vector by vector to
/// the nearest grid point; the rotation is recorded in the result. Throws invalid_value naming
/// the position for NaN/Inf input; invalid_argument for options higgs_scheme refuses, a dimension
/// and grid size higgs_grid has no grid for, or a block that does not divide the row or has no
/// Hadamard matrix.
QuantizedMatrix quantize_higgs(MatrixView<const float> weights, const HiggsOptions& options = {});

}  // namespace lowbit
