// GPTQ (Frantar, Ashkboos, Hoefler, Alistarh 2022), as the reference implementations run it:
// IST-DASLab/gptq (gptq.py, `GPTQ.fasterquant`) and AutoGPTQ 0.7.1
// (auto_gptq/quantization/gptq.py), which agree with each other. lowbit follows them step for
// step, including where a group's parameters are fitted, so with the same grid it gives their
// codes, scales and zeros. It runs over any Grid (quant/grid.hpp: the linear integer grid, NF4,
// FP4/FP8 with MX, NVFP4 or float scales, scalar k-means codebooks, or a user's own): with a
// diagonal Hessian it gives RTN's codes over the same grid. GptqOptions::hadamard first rotates
// the input side (GPTQ+Hadamard, as QuIP#/QuaRot do before GPTQ): W R^T with the Hessian R H R^T.
//
// Given W [out, in] and the input Hessian H = 2/n sum x x^T [in, in] (InputStatistics):
//   1. dead inputs (H_jj == 0): H_jj = 1 and column j of W = 0;
//   2. act-order: columns by decreasing diag H (a stable sort), W and H permuted alike;
//   3. lambda = percdamp * mean(diag H) added to the diagonal; U = the upper Cholesky factor of
//      H^-1 (computed as the inverse of H's "UL" factor: see detail::gptq_inverse_factor). When
//      the Cholesky fails (or yields a non-finite value) lambda is raised tenfold (from 0.01 *
//      mean(diag H) when percdamp is 0) and the factorization retried, up to
//      max_damping_retries times; then invalid_value. GptqResult reports lambda and the retries.
//      (The references stop at the first failure; the retries only change inputs they reject.)
//   4. columns in blocks of `block`: column i is quantized against its group's parameters,
//      err = (w - q) / U_ii is fed back into the block's later columns (W[:, j] -= err U_ij), and
//      after the block the rest of the matrix gets the lazy update W[:, i2:] -= Err1 U[i1:i2, i2:]
//      (one GEMM). The proxy loss is sum (w - q)^2 / U_ii^2 / 2, the references' sum of Losses.
//
// Group parameters:
//   - per channel (and per tensor): from the original weights, before anything else, as the
//     references' quantizer.find_params(W) does before dead columns are zeroed;
//   - groups of G (GptqGroupFit::reference, the default): when the group's first column is
//     reached, from its G columns as they stood at the start of the current lazy-update block:
//     the references call find_params on the outer W, which receives a block's updates only at
//     the block's end. So a group that starts inside a block (G < block, or G not a multiple of
//     it) is fitted without the updates from the block's columns before it, and the result
//     depends on `block`. With G a multiple of `block` every group starts a block and sees every
//     update so far. GptqGroupFit::updated fits every group on its fully updated weights (the
//     unblocked algorithm, independent of `block`): it departs from the references' codes but
//     gave a lower tr(E H E^T) in 9 of 12 grouped cases on correlated test layers (up to 14%
//     lower at g32/g64; from 24 x 200 to 128 x 4000, block 128; on the largest the two are
//     within 4% either way);
//   - static groups: every group's parameters from the weights (after dead columns are zeroed)
//     before any column is quantized, as the references' static_groups.
// With act-order and groups the references (without static_groups) fit a group on G consecutive
// *permuted* columns, which a checkpoint can only describe with a g_idx. QuantizedMatrix has no
// g_idx, so act_order with groups requires static_groups (invalid_argument otherwise): the
// groups are then groups of original positions, the parameters those of AutoGPTQ's
// static_groups with desc_act, and need no g_idx.
//
// Precision: the Hessian and its damping are in double; the Cholesky factorization, the inverse
// factor U, the weights and the quantization loop are in float, as the references run them on the
// GPU (torch.linalg.cholesky on the float32 Hessian).
// Threads: Eigen's GEMMs (the lazy updates, the inverse) use OpenMP when the library is built
// with it. The bodies live in src/algo/gptq.cpp: this header includes no Eigen.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/algo/incoherence.hpp"
#include "lowbit/algo/symmetric_matrix.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/grid.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

/// Which weights a group of G (neither static nor per channel) is fitted on; see the top of this
/// file.
enum class GptqGroupFit {
  reference,  // as they stood at the start of the lazy-update block: the references' codes
  updated,    // with every update so far: the unblocked algorithm's, whatever `block` is
};

struct GptqOptions {
  std::size_t block = 128;     // columns per lazy-update block
  double percdamp = 0.01;      // lambda = percdamp * mean(diag H)
  bool act_order = false;      // columns by decreasing diag H
  bool static_groups = false;  // all group parameters from the unquantized weights up front
  GptqGroupFit group_fit = GptqGroupFit::reference;
  int max_damping_retries = 5;  // tenfold increases of lambda after a failed Cholesky
  /// GPTQ+Hadamard: rotate the input side first (W R^T, and H -> R H R^T), as QuIP#/QuaRot do
  /// before GPTQ; the rotation is recorded in the result (see algo/incoherence.hpp).
  std::optional<IncoherenceOptions> hadamard;
  std::string tensor_name;  // named in error messages
};

struct GptqResult {
  QuantizedMatrix weights;
  double damping = 0.0;     // the lambda added to diag H in the end (absolute)
  int retries = 0;          // failed factorizations before it
  double proxy_loss = 0.0;  // sum over weights of (w - q)^2 / U_ii^2 / 2 (the reference's Losses)
};

/// GPTQ of weights [out, in] (rows = output channels) with the Hessian of the layer's inputs
/// [in, in], over `grid`. See the top of this file.
/// Throws invalid_argument for mismatched shapes, block 0, a negative or non-finite percdamp,
/// act_order with non-static groups or a Hadamard block that does not fit the row; invalid_value
/// for an all-zero Hessian (every input dead: the layer saw no calibration signal) and for weights
/// whose scales do not fit the Scheme's scale format; unsupported for schemes GPTQ cannot quantize
/// column by column (2-D blocks, vector codes, no scales); invalid_value for NaN/Inf or a Hessian
/// that no damping makes positive definite.
GptqResult quantize_gptq(MatrixView<const float> weights, const SymmetricMatrix& hessian,
                         const Grid& grid, const GptqOptions& options = {});

/// GPTQ over the Scheme's own grid (make_grid).
GptqResult quantize_gptq(MatrixView<const float> weights, const SymmetricMatrix& hessian,
                         const Scheme& scheme, const GptqOptions& options = {});

namespace detail {

/// Step 3 alone (for benchmarks and tests): U, the upper Cholesky factor of (H + lambda I)^-1,
/// [n, n] row-major with zeros below the diagonal, and the lambda and retries it took.
struct GptqInverseFactor {
  std::size_t n = 0;
  std::vector<float> upper;
  double damping = 0.0;
  int retries = 0;
};
GptqInverseFactor gptq_inverse_factor(const SymmetricMatrix& hessian, double percdamp,
                                      int max_retries);

/// R H R^T for the block-diagonal rotation R, through the fast transform in float (the
/// factorization that follows runs in float anyway); exactly symmetric.
SymmetricMatrix rotate_hessian(const SymmetricMatrix& hessian, const HadamardRotation& rotation);

}  // namespace detail

}  // namespace lowbit
