// RTN: round-to-nearest, the baseline every other method is measured against. Each group's
// parameters are fitted to its own weights and every weight is rounded to its group's grid, with
// no calibration data and no error feedback. It runs over any Grid (quant/grid.hpp): over
// make_grid(scheme) it gives what the Scheme's own quantizer gives, code for code (the tests
// check quantize_linear with and without its clip search, quantize_nf4 without double
// quantization, quantize_mx, quantize_nvfp4, quantize_fp8 and scalar quantize_codebook).
//
// The order: the grid prepares what the matrix shares (grid.prepare), then every scale-grid
// entry is fitted on its weights (a group of a row, a row, a 2-D block or the whole matrix) and
// stored, and the weights are quantized against the stored parameters and packed.
#pragma once

#include <string>

#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/clipping.hpp"
#include "lowbit/quant/grid.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

struct RtnOptions {
  ClipSearch clip = ClipSearch::none();  // the Scheme overload: make_grid's clip search
  std::string tensor_name;               // named in error messages
};

/// RTN of a [rows, cols] float matrix (rows = output channels) over `grid`. options.clip is
/// ignored here (it belongs to the grid). Throws invalid_value for NaN/Inf input (naming the
/// position) and whatever the grid throws.
QuantizedMatrix quantize_rtn(MatrixView<const float> weights, const Grid& grid,
                             const RtnOptions& options = {});

/// RTN over make_grid(scheme, {options.clip}).
QuantizedMatrix quantize_rtn(MatrixView<const float> weights, const Scheme& scheme,
                             const RtnOptions& options = {});

}  // namespace lowbit
