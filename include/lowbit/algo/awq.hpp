// AWQ: Activation-aware Weight Quantization (Lin, Tang, Tang, Yang, Chen, Wang, Xiao, Dang, Gan,
// Han, "AWQ: Activation-aware Weight Quantization for On-Device LLM Compression and
// Acceleration", MLSys 2024), for one *layer group*: the Linear layers that read one input (q, k
// and v of a Llama block, or w1 and w3), as AutoAWQ (casper-hansen/AutoAWQ,
// awq/quantize/quantizer.py: _search_best_scale with duo_scaling, _compute_best_clip) and llm-awq
// (mit-han-lab/llm-awq, awq/quantize/auto_scale.py, auto_clip.py) run it. This file holds the
// matrix-level pieces; folding 1/s into the preceding operation (an RMSNorm's weight) is the
// model's business.
//
// A few input channels carry much larger activations than the rest ("salient" channels); AWQ
// protects their weights by an exact per-input-channel rescaling, Y = X W^T = (X diag(s)^-1)
// (W diag(s))^T, and quantizes W diag(s) with plain round-to-nearest (RTN): scaling a column up
// shrinks its error relative to its contribution. Given the group's weights W_i [out_i, in] and
// calibration inputs X [n, in]:
//
//   x_mean[j] = 1/n sum_t |X[t, j]|
//   w_mean[j] = mean over every row r of every W_i of |W_i[r, j]| / (absmax of the scheme group
//               of W_i holding (r, j) + 1e-6)       (the group is the row for per-channel
//                                                      schemes, the matrix for per-tensor ones)
//   for a = i / scale_grid, i = 0 .. scale_grid - 1:
//     s = max(x_mean^a / (w_mean^(1-a) + 1e-4), 1e-4)   (duo_scaling; else max(x_mean^a, 1e-4))
//     s = s / sqrt(max(s) * min(s))
//     loss(s) = sum_i 1/(n out_i) ||X W_i^T - (X diag(s)^-1) Q(W_i diag(s))^T||_F^2
//   keep the s of the smallest loss (the first grid point among equals).
//
// Q is RTN over the Scheme's grid (algo/rtn.hpp over quant/grid.hpp, then dequantize), computed
// without packing through Grid::fake_quantize, so it is RTN by construction (the tests also hold
// awq_fake_quantize equal to quantize_linear's codes dequantized).
//
// Clip search (per layer, on the scaled weights W' = W diag(s) with the scaled inputs X' = X / s,
// as AutoAWQ runs it after apply_scale has divided its cached inputs by s): X' is subsampled to
// its rows 0, k, 2k, ... with k = max(1, n / clip_samples) (llm-awq's and AutoAWQ's stride: between
// clip_samples and 2 clip_samples - 1 rows when n >= clip_samples, all n rows otherwise), and for
// every (row, scheme group) of W' with absmax m, the candidates max_val = m (1 - i / clip_grid), i
// = 0 .. int(max_shrink clip_grid) - 1, are tried: the group clamped to [-max_val, max_val] and
// quantized by RTN, error = mean over the samples of (sum over the group's columns of x (w - q))^2;
// the first candidate with the smallest error wins (a later one must be strictly smaller). A
// per-tensor scheme has one max_val for the matrix, its error summed over the rows.
//
// How lowbit computes it, and where it differs from the references:
//  * Loss. Both errors are quadratic forms in the inputs, ||X d||^2 = d^T X^T X d, so X is replaced
//    once by its R factor (a Householder QR; X itself when it has no more rows than columns): R
//    [min(n, in), in] with R^T R = X^T X gives the same loss at a cost per evaluation of
//    out x in x min(n, in) instead of out x in x n, as a sum of squares (no cancellation). The
//    products are Eigen GEMMs in float; the squares are summed in double. The references compute
//    the outputs in fp16 on the GPU.
//  * Where the loss is measured. AutoAWQ and llm-awq measure the scale search's error at the
//    output of an inspected module (the whole attention block for q/k/v, the MLP for w1/w3, the
//    layer itself for v -> o and w3 -> w2), as one mean over all its outputs. Here it is measured
//    at the outputs of the group's layers, each layer's mean squared error counted once (a layer
//    with fewer outputs, k and v under grouped-query attention, weighs as much as q).
//  * Quantizer. lowbit's RTN: its asymmetric range always includes 0 and the scales are rounded up
//    to their storage format (f16 by default), where the references' pseudo_quantize_tensor uses
//    the group's own [min, max] in fp16. Ragged last groups are allowed (the references require
//    the group size to divide in). Grids: the references are integer-only; lowbit runs AWQ over
//    any Grid whose groups are fitted on their own weights: linear integers, NF4, FP4/FP8 with MX
//    or float scales, per tensor, per channel or per group. A grid that fits something to the
//    whole matrix (NVFP4's tensor scale, codebooks) is unsupported: the searches quantize scaled
//    and clamped copies group by group.
//  * Degenerate channels. A channel with x_mean = 0 (an input that is always 0, e.g. behind a
//    zero norm weight) or w_mean = 0 (a column that is 0 in every weight of the group) does not
//    change the loss whatever its s. The references' formula gives it the clamp 1e-4 (or, for
//    w_mean = 0, x_mean^a / 1e-4), which then dominates the normalisation sqrt(max s min s) and
//    shifts every other channel's scale (100x when their smallest is 1); for a dead input it also
//    makes W_j s_j so small that RTN rounds the column away. lowbit gives such channels s = 1 and
//    leaves them out of max(s) and min(s) (SmoothQuant's convention in algo/smoothquant.hpp). The
//    scales are computed in double and rounded to float; with finite inputs they are positive and
//    finite.
//  * Overflow. A grid point whose W diag(s) has an element beyond half of float's range is skipped
//    (loss +inf). When no grid point can be evaluated (only for weights near float's range), the
//    result is s = 1.
//
// Threads: each search is one OpenMP parallel region (awq_for_tasks in src/algo/awq.cpp) whose
// tasks are blocks of rows (for the scale search, of every layer at every grid point; for the clip,
// of every column group), each with its own single-threaded GEMM, when the multiply-adds are many
// enough (detail::worth_threads). Eigen never threads these products itself: its spin-waiting
// synchronisation inside a product is slow on a busy machine, and its blocking would change the
// rounding with the thread count. Task results are combined in a fixed order, so the losses do
// not depend on the thread count, except through the last bits of the QR of X (Eigen's, which
// threads its own products).
//
// Use, for a group reading the output of a norm (q, k, v):
//
//   AwqScaleResult found = awq_search_scales(std::span(views), x, scheme);
//   for each layer: scale_input_channels(w, found.scales);           // W diag(s), in place
//   unscale_input_channels(x, found.scales);                         // X diag(s)^-1
//   unscale_input_channels(norm_weight_as_1_row_view, found.scales); // the model's part
//   for each layer: q = quantize_awq(w, x, scheme, options);         // clip (AutoAWQ skips it for
//                                                                    // q and k), then RTN
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "lowbit/algo/channel_scaling.hpp"
#include "lowbit/error.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/grid.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

struct AwqOptions {
  int scale_grid = 20;             // ratios a = i / scale_grid, i = 0 .. scale_grid - 1; >= 1
  bool duo_scaling = true;         // s from x_mean and w_mean (AutoAWQ's default); else x_mean only
  bool clip = true;                // quantize_awq: search and apply the clip before RTN
  int clip_grid = 20;              // clip candidates absmax (1 - i / clip_grid); >= 1
  float max_shrink = 0.5f;         // i < int(max_shrink * clip_grid); in [0, 1]
  std::size_t clip_samples = 512;  // the clip search's sample stride is max(1, n / clip_samples)
  std::string tensor_name;         // named in error messages
};

struct AwqScaleResult {
  std::vector<float> scales;   // s [in]: the weights become W diag(s), the input X diag(s)^-1
  int grid_index = 0;          // i of the best ratio; -1 when no grid point could be evaluated
  double ratio = 0.0;          // i / scale_grid (-1 with grid_index -1)
  double error = 0.0;          // the loss at the best ratio (rtn_error with grid_index -1)
  double rtn_error = 0.0;      // the loss at s = 1: plain RTN
  std::vector<double> errors;  // the loss of every grid point, in order (+inf where skipped)
};

namespace detail {

/// absmax of every entry of w's scale grid (QuantizedMatrix::scale_index order).
std::vector<float> awq_group_absmax(MatrixView<const float> w, const Scheme& scheme);

/// What quantize_rtn(w', grid).dequantize() holds, written row-major into `out` ([w.rows *
/// w.cols]), where w' is w with every element clamped to [-m, m], m = max_values[its scale-grid
/// index] (w itself when max_values is empty): the grid's fit and fake_quantize, without the
/// packing, as the searches run them row by row.
void awq_fake_quantize(const Grid& grid, MatrixView<const float> w,
                       std::span<const float> max_values, float* out);

}  // namespace detail

/// x_mean[j] = mean over the rows t of |x[t, j]| (in double, rounded to float) for calibration
/// inputs x [n, in]. Throws invalid_argument for n = 0, invalid_value for NaN/Inf.
std::vector<float> awq_input_means(MatrixView<const float> x);

/// w_mean[j]: the mean over every row r of every weight of the group of |w[r, j]| / (absmax of the
/// scheme group holding (r, j) + 1e-6), AutoAWQ's per-group normalised weight magnitude (in double,
/// rounded to float). Throws as awq_search_scales does for the weights and the Scheme.
std::vector<float> awq_weight_means(std::span<const MatrixView<const float>> weights,
                                    const Scheme& scheme);

/// The scales of one grid point: s_j = max(x_mean_j^ratio / (w_mean_j^(1 - ratio) + 1e-4), 1e-4)
/// with duo_scaling (max(x_mean_j^ratio, 1e-4) without), divided by sqrt(max(s) min(s)); in double,
/// rounded to float. Channels with x_mean_j = 0 or w_mean_j = 0 get s_j = 1 and are left out of
/// max(s) and min(s) (see the top of this file). Throws invalid_argument for spans of different
/// sizes or a ratio outside [0, 1], invalid_value for a negative, NaN or Inf mean.
std::vector<float> awq_scales(std::span<const float> x_mean, std::span<const float> w_mean,
                              double ratio, bool duo_scaling = true);

/// AWQ's scale search for a layer group: `weights` [out_i, in] all read the calibration inputs
/// x [n, in]. See the top of this file. Throws invalid_argument for no weights, mismatched widths,
/// a weight without rows, no input channels, n = 0 or bad options; invalid_value for NaN/Inf;
/// unsupported for a grid AWQ cannot search (see "Grids" above).
AwqScaleResult awq_search_scales(std::span<const MatrixView<const float>> weights,
                                 MatrixView<const float> x, const Grid& grid,
                                 const AwqOptions& options = {});

/// Over the Scheme's grid (make_grid).
AwqScaleResult awq_search_scales(std::span<const MatrixView<const float>> weights,
                                 MatrixView<const float> x, const Scheme& scheme,
                                 const AwqOptions& options = {});

/// The single-layer form: a group of one weight.
AwqScaleResult awq_search_scales(MatrixView<const float> weight, MatrixView<const float> x,
                                 const Scheme& scheme, const AwqOptions& options = {});

/// Clip candidate i of a group whose absmax is `absmax`: absmax * (1 - i / clip_grid), the factor
/// computed in double and rounded to float, the product in float.
float awq_clip_candidate(float absmax, int i, int clip_grid) noexcept;

/// AWQ's clip search for one layer: the best max value of every entry of w's scale grid
/// ([rows, groups] row-major, QuantizedMatrix::scale_index order), for weights w [out, in] and
/// their inputs x [n, in] (both already scaled: W diag(s) and X diag(s)^-1). See the top of this
/// file. Every value is one of the candidates, so never above the group's absmax; an all-zero group
/// gets 0. Throws invalid_argument for mismatched widths, n = 0 or bad options, invalid_value for
/// NaN/Inf, unsupported for a grid AWQ cannot search.
std::vector<float> awq_search_clip(MatrixView<const float> w, MatrixView<const float> x,
                                   const Grid& grid, const AwqOptions& options = {});

/// Over the Scheme's grid (make_grid).
std::vector<float> awq_search_clip(MatrixView<const float> w, MatrixView<const float> x,
                                   const Scheme& scheme, const AwqOptions& options = {});

/// Clamps every element of w [out, in] to [-m, m], m = max_values[its scale-grid index] (the
/// order awq_search_clip returns). Any Scheme with scales gives the grid. Throws invalid_argument
/// for a count of max values that is not the grid's size, invalid_value for a NaN or negative max
/// value or NaN/Inf weights.
void apply_clip(MatrixView<float> w, std::span<const float> max_values, const Scheme& scheme);

/// Quantizes one layer of a group after the scale search: `scaled_weights` is W diag(s) [out, in]
/// and `scaled_inputs` X diag(s)^-1 [n, in] (scale_input_channels, unscale_input_channels in
/// channel_scaling.hpp). With options.clip, awq_search_clip and apply_clip on a copy first; then
/// RTN over the grid (quantize_rtn). The QuantizedMatrix holds the *scaled* weights W diag(s): the
/// caller divides the preceding operation (the norm's weight) by s, so that (X diag(s)^-1) Q^T
/// approximates X W^T. Without options.clip the inputs are only checked for their width (they may
/// have no rows). Throws as awq_search_clip does.
QuantizedMatrix quantize_awq(MatrixView<const float> scaled_weights,
                             MatrixView<const float> scaled_inputs, const Grid& grid,
                             const AwqOptions& options = {});

/// Over the Scheme's grid (make_grid).
QuantizedMatrix quantize_awq(MatrixView<const float> scaled_weights,
                             MatrixView<const float> scaled_inputs, const Scheme& scheme,
                             const AwqOptions& options = {});

}  // namespace lowbit
