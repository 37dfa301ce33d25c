// GPTQ (Frantar, Ashkboos, Hoefler, Alistarh 2022), as the reference implementation
// (IST-DASLab/gptq, gptq.py `GPTQ.fasterquant`) runs it, over any lowbit grid that can quantize one
// value given its group's parameters (GptqGrid: the linear integer grid, NF4, ...).
//
// Given W [out, in] and the input Hessian H = 2/n sum x x^T [in, in] (InputStatistics):
//   1. dead inputs (H_jj == 0): H_jj = 1 and column j of W = 0;
//   2. act-order: columns by decreasing diag H (a stable sort), W and H permuted alike;
//   3. lambda = percdamp * mean(diag H) added to the diagonal; U = the upper Cholesky factor of
//      H^-1 (computed as the inverse of H's "UL" factor: see gptq_inverse_factor). When the
//      Cholesky fails (or yields a non-finite value) lambda is raised tenfold (from 0.01 *
//      mean(diag H) when percdamp is 0) and the factorization retried, up to max_damping_retries
//      times; then invalid_value. GptqResult reports lambda and the retries.
//   4. columns in blocks of `block`: column i is quantized against its group's parameters,
//      err = (w - q) / U_ii is fed back into the block's later columns (W[:, j] -= err U_ij), and
//      after the block the rest of the matrix gets the lazy update W[:, i2:] -= Err1 U[i1:i2, i2:]
//      (one GEMM). The proxy loss is sum (w - q)^2 / U_ii^2 / 2, the reference's sum of Losses.
//
// Group parameters:
//   - per channel (and per tensor): from the original weights, before anything else, as the
//     reference's quantizer.find_params(W) does before dead columns are zeroed;
//   - groups of G: at each group boundary, from the *current* (error-updated) weights of the next G
//     columns. The reference reads those columns from W, whose copy inside the current block has
//     not yet received the block's in-block updates (and beyond the block not the pending lazy
//     update); lowbit applies both first, so the blocked loop computes exactly what the unblocked
//     algorithm (every column updated after every step) computes. With G = block = 128 the two
//     coincide.
//   - static groups: every group's parameters from the weights (after dead columns are zeroed)
//     before any column is quantized, as the reference's static_groups.
// With act-order and groups the reference computes a group's parameters from the *permuted*
// columns (a group of G consecutive columns in act order), which a checkpoint can only describe
// with a g_idx. QuantizedMatrix has no g_idx, so act_order with groups requires static_groups
// (invalid_argument otherwise): the groups are then groups of original positions and need no g_idx.
//
// Precision: the Hessian, its damping and both Cholesky factorizations are in double; the weights,
// U and the quantization loop are in float, as the reference runs them on the GPU.
// Threads: Eigen's GEMMs (the lazy updates, the inverse) use OpenMP when it is enabled.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "lowbit/error.hpp"
#include "lowbit/format/nf4.hpp"
#include "lowbit/format/packing.hpp"
#include "lowbit/format/scalar_format.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

/// One group's parameters, in the grid's storage formats: what GptqGrid::fit returns.
struct GptqGroupParams {
  float scale = 0.0f;
  float zero = 0.0f;
};

/// The grid GPTQ rounds to: fits a group's parameters, stores them, and quantizes a column.
class GptqGrid {
 public:
  virtual ~GptqGrid() = default;
  virtual const Scheme& scheme() const noexcept = 0;
  /// Parameters of one group of one row, from its values (already rounded to the storage format).
  virtual GptqGroupParams fit(std::span<const float> values) const = 0;
  /// Writes the parameters into scale-grid entry `index` of q.
  virtual void store(QuantizedMatrix& q, std::size_t index, const GptqGroupParams& p) const = 0;
  /// Quantizes w[r] with params[r] for r < rows: the code and the value it dequantizes to (what
  /// QuantizedMatrix::dequantize gives for it).
  virtual void quantize_column(const float* w, const GptqGroupParams* params, std::size_t rows,
                               std::uint8_t* codes, float* dequantized) const = 0;

 protected:
  GptqGrid() = default;
  GptqGrid(const GptqGrid&) = default;
  GptqGrid& operator=(const GptqGrid&) = default;
};

/// lowbit's linear integer grid (symmetric or with an integer zero point; see quant/linear.hpp).
class GptqLinearGrid final : public GptqGrid {
 public:
  explicit GptqLinearGrid(const Scheme& scheme) : grid_(scheme) {}
  const Scheme& scheme() const noexcept override { return grid_.scheme(); }
  GptqGroupParams fit(std::span<const float> values) const override {
    const ValueRange range = values.empty() ? ValueRange{0.0f, 0.0f} : ValueRange::of(values);
    const LinearParams p = grid_.params(range);
    return {p.scale, p.zero};
  }
  void store(QuantizedMatrix& q, std::size_t index, const GptqGroupParams& p) const override {
    q.set_scale(index, p.scale);
    if (grid_.scheme().has_zero_point()) q.set_zero(index, p.zero);
  }
  void quantize_column(const float* w, const GptqGroupParams* params, std::size_t rows,
                       std::uint8_t* codes, float* dequantized) const override {
    for (std::size_t r = 0; r < rows; ++r) {
      const LinearParams p{params[r].scale, params[r].zero};
      const int level = grid_.quantize(w[r], p);
      codes[r] = grid_.code(level);
      dequantized[r] = grid_.dequantize(level, p);
    }
  }

 private:
  LinearGrid grid_;
};

/// NF4 with an absmax scale per group (bitsandbytes' rounding, see quant/nf4.hpp), the scale
/// rounded up to the Scheme's scale format (f32, f16 or bf16; no double quantization).
class GptqNf4Grid final : public GptqGrid {
 public:
  explicit GptqNf4Grid(const Scheme& scheme) : scheme_(scheme) {
    scheme_.validate();
    if (scheme_.element != ElementFormat::nf4 || scheme_.double_quant_block > 0 ||
        scheme_.tensor_scale || !scheme_.has_scales())
      throw unsupported("GptqNf4Grid: needs nf4 elements with plain scales, not " +
                        scheme_.to_string());
    if (scheme_.scale_format == ScalarFormat::e8m0 || scheme_.scale_format == ScalarFormat::e4m3)
      throw unsupported("GptqNf4Grid: NF4 scales are stored as f32, f16 or bf16");
  }
  const Scheme& scheme() const noexcept override { return scheme_; }
  GptqGroupParams fit(std::span<const float> values) const override {
    float absmax = 0.0f;
    for (float x : values) absmax = std::max(absmax, std::abs(x));
    return {round_scalar_up(scheme_.scale_format, absmax), 0.0f};
  }
  void store(QuantizedMatrix& q, std::size_t index, const GptqGroupParams& p) const override {
    q.set_scale(index, p.scale);
  }
  void quantize_column(const float* w, const GptqGroupParams* params, std::size_t rows,
                       std::uint8_t* codes, float* dequantized) const override {
    for (std::size_t r = 0; r < rows; ++r) {
      const float s = params[r].scale;
      if (!(s > 0.0f)) {
        codes[r] = 7;  // the exact 0
        dequantized[r] = 0.0f;
        continue;
      }
      const float inverse = 1.0f / s;
      const float x = std::isinf(inverse) ? w[r] / s : w[r] * inverse;
      const nf4 code = nf4::encode_nearest(x);
      codes[r] = code.code;
      dequantized[r] = code.to_float() * s;
    }
  }

 private:
  Scheme scheme_;
};

/// The GptqGrid of a Scheme: integer elements -> GptqLinearGrid, nf4 -> GptqNf4Grid; unsupported
/// otherwise.
inline std::unique_ptr<GptqGrid> make_gptq_grid(const Scheme& scheme) {
  if (scheme.is_integer()) return std::make_unique<GptqLinearGrid>(scheme);
  if (scheme.element == ElementFormat::nf4) return std::make_unique<GptqNf4Grid>(scheme);
  throw unsupported("GPTQ has no grid for " + scheme.to_string());
}

struct GptqOptions {
  std::size_t block = 128;      // columns per lazy-update block
  double percdamp = 0.01;       // lambda = percdamp * mean(diag H)
  bool act_order = false;       // columns by decreasing diag H
  bool static_groups = false;   // all group parameters from the unquantized weights up front
  int max_damping_retries = 5;  // tenfold increases of lambda after a failed Cholesky
  std::string tensor_name;      // named in error messages
};

struct GptqResult {
  QuantizedMatrix weights;
  double damping = 0.0;     // the lambda added to diag H in the end (absolute)
  int retries = 0;          // failed factorizations before it
  double proxy_loss = 0.0;  // sum over weights of (w - q)^2 / U_ii^2 / 2 (the reference's Losses)
};

namespace detail {

struct GptqFactor {
  Eigen::MatrixXf upper;  // U, upper Cholesky factor of (H + lambda I)^-1
  double damping = 0.0;
  int retries = 0;
};

/// Step 3 above: damping, H^-1, its upper Cholesky factor, with retries.
inline GptqFactor gptq_inverse_factor(const Eigen::MatrixXd& h, double percdamp, int max_retries) {
  const Eigen::Index n = h.rows();
  GptqFactor out;
  if (n == 0) return out;
  const double mean_diag = h.diagonal().mean();
  if (!(mean_diag > 0.0) || !std::isfinite(mean_diag))
    throw invalid_value("GPTQ: the Hessian's mean diagonal is " + std::to_string(mean_diag) +
                        "; it must be positive");
  double lambda = percdamp * mean_diag;
  for (int attempt = 0;; ++attempt) {
    Eigen::MatrixXd damped = h;
    damped.diagonal().array() += lambda;
    // U is the upper Cholesky factor of H^-1 = U^T U, so H = U^-1 U^-T = R R^T with R = U^-1
    // upper triangular: R = J L J for the lower Cholesky factor L of J H J (J reverses the order),
    // and U = R^-1 (one factorization and one triangular solve, instead of a factorization, an
    // inverse and a second factorization; the factor is unique, so it is the same U).
    Eigen::LLT<Eigen::MatrixXd> llt(damped.reverse());
    bool ok = llt.info() == Eigen::Success;
    if (ok) {
      const Eigen::MatrixXd r = Eigen::MatrixXd(llt.matrixL()).reverse();
      Eigen::MatrixXd upper = Eigen::MatrixXd::Identity(n, n);
      r.triangularView<Eigen::Upper>().solveInPlace(upper);
      ok = upper.allFinite() && (upper.diagonal().array() > 0.0).all();
      if (ok) {
        out.upper = upper.cast<float>();
        ok = out.upper.allFinite() && (out.upper.diagonal().array() > 0.0f).all();
      }
    }
    if (ok) {
      out.damping = lambda;
      out.retries = attempt;
      return out;
    }
    if (attempt >= max_retries)
      throw invalid_value("GPTQ: the damped Hessian is not positive definite after " +
                          std::to_string(attempt) +
                          " damping increases (lambda = " + std::to_string(lambda) + ")");
    lambda = lambda > 0.0 ? lambda * 10.0 : 0.01 * mean_diag;
  }
}

}  // namespace detail

/// GPTQ of weights [out, in] (rows = output channels) with the Hessian of the layer's inputs
/// [in, in] (only its lower triangle is read), over `grid`. See the top of this file.
/// Throws invalid_argument for mismatched shapes or act_order with non-static groups,
/// invalid_value for NaN/Inf or a Hessian that no damping makes positive definite.
inline GptqResult quantize_gptq(MatrixView<const float> weights, const Eigen::MatrixXd& hessian,
                                const GptqGrid& grid, const GptqOptions& options = {}) {
  const Scheme& scheme = grid.scheme();
  const std::size_t rows = weights.rows, cols = weights.cols;
  const auto erows = static_cast<Eigen::Index>(rows), ecols = static_cast<Eigen::Index>(cols);
  if (hessian.rows() != ecols || hessian.cols() != ecols)
    throw invalid_argument("GPTQ: a Hessian of [" + std::to_string(hessian.rows()) + ", " +
                           std::to_string(hessian.cols()) + "] for weights with " +
                           std::to_string(cols) + " columns");
  if (options.block == 0) throw invalid_argument("GPTQ: block must be at least 1");
  if (scheme.is_table_lookup() || scheme.vector_dim != 1)
    throw unsupported("GPTQ quantizes one weight per code, not " + scheme.to_string());
  const Granularity::Kind kind = scheme.granularity.kind;
  if (kind == Granularity::Kind::none) throw unsupported("GPTQ needs a scheme with scales");
  const bool grouped = kind == Granularity::Kind::group;
  if (options.act_order && grouped && !options.static_groups)
    throw invalid_argument(
        "GPTQ: act_order with groups needs static_groups (a QuantizedMatrix has no g_idx)");
  const bool static_groups = grouped && options.static_groups;
  detail::require_finite(weights, options.tensor_name);
  if (!hessian.allFinite()) throw invalid_value("GPTQ: the Hessian holds NaN or Inf");

  GptqResult result;
  result.weights = QuantizedMatrix(scheme, rows, cols);
  QuantizedMatrix& q = result.weights;
  if (rows == 0 || cols == 0) return result;

  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  // Column-major: a column of the weights (one input, every output) is contiguous.
  Eigen::MatrixXf w = Eigen::Map<const RowMajor, 0, Eigen::OuterStride<>>(
      weights.data, erows, ecols,
      Eigen::OuterStride<>(static_cast<Eigen::Index>(weights.row_stride)));
  Eigen::MatrixXd h = hessian.selfadjointView<Eigen::Lower>();

  // Parameters: table[g * rows + r] serves row r of parameter column g (a group of original
  // positions for static groups, the current group otherwise; one column per channel or tensor).
  const std::size_t group = grouped ? scheme.granularity.group_size : cols;
  const std::size_t groups = (cols + group - 1) / group;
  std::vector<GptqGroupParams> table(static_groups ? groups * rows : rows);
  std::vector<float> buffer(cols);
  auto fit_rows = [&](const auto& block, GptqGroupParams* out, std::size_t first_col) {
    // block: rows x length of current weights
    const auto length = static_cast<std::size_t>(block.cols());
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < length; ++c)
        buffer[c] = block(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c));
      out[r] = grid.fit(std::span<const float>(buffer.data(), length));
      grid.store(q, q.scale_index(r, first_col), out[r]);
    }
  };
  if (kind == Granularity::Kind::tensor) {
    std::vector<float> all(w.data(), w.data() + w.size());
    const GptqGroupParams p = grid.fit(all);
    grid.store(q, 0, p);
    std::fill(table.begin(), table.end(), p);
  } else if (kind == Granularity::Kind::channel) {
    fit_rows(w, table.data(), 0);
  }

  // 1. Dead inputs.
  for (Eigen::Index j = 0; j < ecols; ++j)
    if (h(j, j) == 0.0) {
      h(j, j) = 1.0;
      w.col(j).setZero();
    }
  if (static_groups)
    for (std::size_t g = 0; g < groups; ++g) {
      const std::size_t start = g * group, length = std::min(group, cols - start);
      fit_rows(w.middleCols(static_cast<Eigen::Index>(start), static_cast<Eigen::Index>(length)),
               table.data() + g * rows, start);
    }

  // 2. Act-order.
  std::vector<Eigen::Index> perm(cols);
  std::iota(perm.begin(), perm.end(), Eigen::Index{0});
  if (options.act_order) {
    std::stable_sort(perm.begin(), perm.end(),
                     [&](Eigen::Index a, Eigen::Index b) { return h(a, a) > h(b, b); });
    w = w(Eigen::all, perm).eval();  // column j of the permuted matrix is column perm[j]
    h = h(perm, perm).eval();
  }

  // 3. U = chol(H^-1)^T.
  detail::GptqFactor factor =
      detail::gptq_inverse_factor(h, options.percdamp, options.max_damping_retries);
  result.damping = factor.damping;
  result.retries = factor.retries;
  const Eigen::MatrixXf& u = factor.upper;
  h.resize(0, 0);

  // 4. Blocks.
  std::vector<std::uint8_t> codes(rows * cols);  // row-major, original positions
  std::vector<std::uint8_t> column_codes(rows);
  Eigen::VectorXf dequantized(erows), err(erows);
  Eigen::MatrixXf err_block(erows, static_cast<Eigen::Index>(std::min(options.block, cols)));
  double loss = 0.0;
  for (std::size_t i1 = 0; i1 < cols; i1 += options.block) {
    const std::size_t i2 = std::min(i1 + options.block, cols), count = i2 - i1;
    const auto e1 = static_cast<Eigen::Index>(i1), e2 = static_cast<Eigen::Index>(i2);
    const auto ecount = static_cast<Eigen::Index>(count);
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t col = i1 + i;
      const auto ecol = static_cast<Eigen::Index>(col), ei = static_cast<Eigen::Index>(i);
      const std::size_t original = static_cast<std::size_t>(perm[col]);
      const GptqGroupParams* params = table.data();
      if (static_groups) {
        params = table.data() + (original / group) * rows;
      } else if (grouped && col % group == 0) {
        // The next G columns as they stand now: in this block already updated, beyond it minus
        // the lazy update still pending from this block's quantized columns.
        const std::size_t end = std::min(col + group, cols);
        Eigen::MatrixXf current = w.middleCols(ecol, static_cast<Eigen::Index>(end - col));
        if (end > i2) {
          const auto beyond = static_cast<Eigen::Index>(end - i2);
          current.rightCols(beyond).noalias() -=
              err_block.leftCols(ei) * u.block(e1, e2, ei, beyond);
        }
        fit_rows(current, table.data(), col);
      }
      const float d = u(ecol, ecol);
      grid.quantize_column(w.col(ecol).data(), params, rows, column_codes.data(),
                           dequantized.data());
      for (std::size_t r = 0; r < rows; ++r) codes[r * cols + original] = column_codes[r];
      err = (w.col(ecol) - dequantized) / d;
      loss += 0.5 * static_cast<double>(err.squaredNorm());
      const Eigen::Index rest = ecount - ei - 1;
      if (rest > 0)
        w.middleCols(ecol + 1, rest).noalias() -= err * u.row(ecol).segment(ecol + 1, rest);
      err_block.col(ei) = err;
    }
    if (i2 < cols)
      w.rightCols(ecols - e2).noalias() -=
          err_block.leftCols(ecount) * u.block(e1, e2, ecount, ecols - e2);
  }
  result.proxy_loss = loss;

  for (std::size_t r = 0; r < rows; ++r)
    pack_words(std::span<const std::uint8_t>(codes.data() + r * cols, cols), scheme.bits,
               q.row_words(r), scheme.pack_order);
  return result;
}

/// GPTQ over the Scheme's own grid (make_gptq_grid).
inline GptqResult quantize_gptq(MatrixView<const float> weights, const Eigen::MatrixXd& hessian,
                                const Scheme& scheme, const GptqOptions& options = {}) {
  const std::unique_ptr<GptqGrid> grid = make_gptq_grid(scheme);
  return quantize_gptq(weights, hessian, *grid, options);
}

}  // namespace lowbit
