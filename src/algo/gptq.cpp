// The body of algo/gptq.hpp: the GPTQ loop, over Eigen.
#include "lowbit/algo/gptq.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Dense>

#include "lowbit/error.hpp"
#include "lowbit/format/packing.hpp"
#include "lowbit/quant/linear.hpp"

namespace lowbit {

namespace {

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Eigen::Map<const Eigen::MatrixXd> eigen_view(const SymmetricMatrix& m) {
  const auto n = static_cast<Eigen::Index>(m.rows());
  return {m.data(), n, n};
}

SymmetricMatrix symmetric_from(const Eigen::MatrixXd& m) {
  const auto n = static_cast<std::size_t>(m.rows());
  return SymmetricMatrix(n, std::vector<double>(m.data(), m.data() + m.size()));
}

void check_hessian(const SymmetricMatrix& hessian, std::size_t cols) {
  if (hessian.rows() != cols)
    throw invalid_argument("GPTQ: a Hessian of [" + std::to_string(hessian.rows()) + ", " +
                           std::to_string(hessian.cols()) + "] for weights with " +
                           std::to_string(cols) + " columns");
  const std::span<const double> values = hessian.values();
  if (!std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); }))
    throw invalid_value("GPTQ: the Hessian holds NaN or Inf");
  // Every input dead: GPTQ would zero every column (a layer that saw no calibration signal).
  bool any_input = cols == 0;
  for (std::size_t j = 0; j < cols && !any_input; ++j) any_input = hessian(j, j) != 0.0;
  if (!any_input)
    throw invalid_value(
        "GPTQ: the Hessian is zero (the layer saw no non-zero calibration input); every column "
        "would be quantized to 0");
}

void check_options(const GptqOptions& options) {
  if (options.block == 0) throw invalid_argument("GPTQ: block must be at least 1");
  if (!(options.percdamp >= 0.0 && std::isfinite(options.percdamp)))
    throw invalid_argument("GPTQ: percdamp must be finite and at least 0, not " +
                           std::to_string(options.percdamp));
  if (options.max_damping_retries < 0)
    throw invalid_argument("GPTQ: max_damping_retries must be at least 0");
}

struct InverseFactor {
  Eigen::MatrixXf upper;  // U, upper Cholesky factor of (H + lambda I)^-1
  double damping = 0.0;
  int retries = 0;
};

/// In place: the inverse of the upper triangular matrix `r` (its strictly lower part is ignored
/// and left as it was). Recursive on 2x2 blocks, [A B; 0 C]^-1 = [A^-1, -A^-1 B C^-1; 0, C^-1],
/// so nearly all the work is triangular-times-dense products (n^3 / 3 flops in all, a third of a
/// triangular solve against the identity).
void invert_upper_triangular(Eigen::Ref<Eigen::MatrixXf> r) {
  const Eigen::Index n = r.rows();
  constexpr Eigen::Index leaf = 64;
  if (n <= leaf) {
    Eigen::MatrixXf inverse = Eigen::MatrixXf::Identity(n, n);
    r.triangularView<Eigen::Upper>().solveInPlace(inverse);
    r.triangularView<Eigen::Upper>() = inverse;
    return;
  }
  const Eigen::Index half = n / 2, rest = n - half;
  invert_upper_triangular(r.topLeftCorner(half, half));
  invert_upper_triangular(r.bottomRightCorner(rest, rest));
  const Eigen::MatrixXf a_inverse_b =
      r.topLeftCorner(half, half).triangularView<Eigen::Upper>() * r.topRightCorner(half, rest);
  r.topRightCorner(half, rest).noalias() =
      -(a_inverse_b * r.bottomRightCorner(rest, rest).triangularView<Eigen::Upper>());
}

/// Step 3 of gptq.hpp: damping, H^-1, its upper Cholesky factor, with retries. The damping is
/// added in double; the factorization runs in float, as the references run it on the GPU.
InverseFactor inverse_factor(const Eigen::MatrixXd& h, double percdamp, int max_retries) {
  const Eigen::Index n = h.rows();
  InverseFactor out;
  if (n == 0) return out;
  const double mean_diag = h.diagonal().mean();
  if (!(mean_diag > 0.0) || !std::isfinite(mean_diag))
    throw invalid_value("GPTQ: the Hessian's mean diagonal is " + std::to_string(mean_diag) +
                        "; it must be positive");
  double lambda = percdamp * mean_diag;
  Eigen::MatrixXf damped(n, n);
  for (int attempt = 0;; ++attempt) {
    // U is the upper Cholesky factor of H^-1 = U^T U, so H = U^-1 U^-T = R R^T with R = U^-1
    // upper triangular: R = J L J for the lower Cholesky factor L of J H J (J reverses the order),
    // and U = R^-1 (one factorization and one triangular inverse, instead of a factorization, an
    // inverse and a second factorization; the factor is unique, so it is the same U).
    damped = h.reverse().cast<float>();
    damped.diagonal().array() += static_cast<float>(lambda);
    Eigen::LLT<Eigen::Ref<Eigen::MatrixXf>> llt(damped);  // in place: damped holds L
    bool ok = llt.info() == Eigen::Success;
    if (ok) {
      out.upper = damped.triangularView<Eigen::Lower>();
      out.upper = out.upper.reverse().eval();  // R, upper triangular
      invert_upper_triangular(out.upper);
      ok = out.upper.allFinite() && (out.upper.diagonal().array() > 0.0f).all();
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

GptqResult quantize_gptq_unrotated(MatrixView<const float> weights, const SymmetricMatrix& hessian,
                                   const Grid& grid, const GptqOptions& options) {
  const Scheme& scheme = grid.scheme();
  const std::size_t rows = weights.rows, cols = weights.cols;
  const auto erows = static_cast<Eigen::Index>(rows), ecols = static_cast<Eigen::Index>(cols);
  check_hessian(hessian, cols);
  check_options(options);
  if (scheme.element == ElementFormat::higgs || scheme.vector_dim != 1)
    throw unsupported("GPTQ quantizes one weight per code, not " + scheme.to_string());
  Granularity::Kind kind = scheme.granularity.kind;
  if (kind == Granularity::Kind::block)  // its columns' scales would depend on rows not yet seen
    throw unsupported("GPTQ quantizes with per-row scales, not 2-D blocks (" + scheme.to_string() +
                      ")");
  if (kind == Granularity::Kind::none) {
    if (!scheme.is_codebook()) throw unsupported("GPTQ needs a scheme with scales");
    kind = Granularity::Kind::tensor;  // one (unit) parameter for the whole matrix
  }
  const bool grouped = kind == Granularity::Kind::group;
  if (options.act_order && grouped && !options.static_groups)
    throw invalid_argument(
        "GPTQ: act_order with groups needs static_groups (a QuantizedMatrix has no g_idx)");
  const bool static_groups = grouped && options.static_groups;
  const bool groups_in_loop = grouped && !static_groups;
  detail::require_finite(weights, options.tensor_name);

  GptqResult result;
  result.weights = QuantizedMatrix(scheme, rows, cols);
  QuantizedMatrix& q = result.weights;
  if (rows == 0 || cols == 0) return result;

  // Column-major: a column of the weights (one input, every output) is contiguous.
  Eigen::MatrixXf w = Eigen::Map<const RowMajorF, 0, Eigen::OuterStride<>>(
      weights.data, erows, ecols,
      Eigen::OuterStride<>(static_cast<Eigen::Index>(weights.row_stride)));
  Eigen::MatrixXd h = eigen_view(hessian);
  grid.prepare(weights, q);

  // Parameters: table[g * rows + r] serves row r of parameter column g (a group of original
  // positions for static groups, the current group otherwise; one column per channel or tensor).
  const std::size_t group = grouped ? scheme.granularity.group_size : cols;
  const std::size_t groups = (cols + group - 1) / group;
  std::vector<GroupParams> table(static_groups ? groups * rows : rows);
  std::vector<float> buffer(cols);
  auto fit_rows = [&](const auto& block, GroupParams* out, std::size_t first_col) {
    // block: rows x length of current weights
    const auto length = static_cast<std::size_t>(block.cols());
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < length; ++c)
        buffer[c] = block(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c));
      out[r] = grid.store(q, q.scale_index(r, first_col),
                          grid.fit(std::span<const float>(buffer.data(), length), q));
    }
  };
  if (kind == Granularity::Kind::tensor) {
    std::vector<float> all(w.data(), w.data() + w.size());
    const GroupParams p = grid.store(q, 0, grid.fit(all, q));
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
  InverseFactor factor = inverse_factor(h, options.percdamp, options.max_damping_retries);
  result.damping = factor.damping;
  result.retries = factor.retries;
  const Eigen::MatrixXf& u = factor.upper;
  h.resize(0, 0);

  // 4. Blocks.
  std::vector<std::uint8_t> codes(rows * cols);  // row-major, original positions
  std::vector<std::uint8_t> column_codes(rows);
  Eigen::VectorXf dequantized(erows), err(erows);
  Eigen::MatrixXf err_block(erows, static_cast<Eigen::Index>(std::min(options.block, cols)));
  // The block's columns as they stood at its start: where the references fit a group that
  // starts inside the block (their find_params reads the outer W, which the block's updates
  // reach only at its end).
  const bool fit_at_block_start = groups_in_loop && options.group_fit == GptqGroupFit::reference;
  Eigen::MatrixXf block_start;
  double loss = 0.0;
  for (std::size_t i1 = 0; i1 < cols; i1 += options.block) {
    const std::size_t i2 = std::min(i1 + options.block, cols), count = i2 - i1;
    const auto e1 = static_cast<Eigen::Index>(i1), e2 = static_cast<Eigen::Index>(i2);
    const auto ecount = static_cast<Eigen::Index>(count);
    if (fit_at_block_start) block_start = w.middleCols(e1, ecount);
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t col = i1 + i;
      const auto ecol = static_cast<Eigen::Index>(col), ei = static_cast<Eigen::Index>(i);
      const std::size_t original = static_cast<std::size_t>(perm[col]);
      const GroupParams* params = table.data();
      if (static_groups) {
        params = table.data() + (original / group) * rows;
      } else if (groups_in_loop && col % group == 0) {
        const std::size_t end = std::min(col + group, cols);
        const auto inside = static_cast<Eigen::Index>(std::min(end, i2) - col);
        const auto beyond = static_cast<Eigen::Index>(end - col) - inside;
        Eigen::MatrixXf current(erows, inside + beyond);
        if (fit_at_block_start) {
          // Inside this block as the block began; beyond it, w as it stands (this block's lazy
          // update has not reached it yet, as in the references).
          current.leftCols(inside) = block_start.middleCols(ei, inside);
          current.rightCols(beyond) = w.middleCols(e2, beyond);
        } else {
          // Inside this block w is up to date; beyond it, minus the lazy update still pending
          // from this block's quantized columns.
          current = w.middleCols(ecol, inside + beyond);
          current.rightCols(beyond).noalias() -=
              err_block.leftCols(ei) * u.block(e1, e2, ei, beyond);
        }
        fit_rows(current, table.data(), col);
      }
      const float d = u(ecol, ecol);
      grid.quantize_column(q, original, w.col(ecol).data(), params, rows, column_codes.data(),
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

}  // namespace

namespace detail {

GptqInverseFactor gptq_inverse_factor(const SymmetricMatrix& hessian, double percdamp,
                                      int max_retries) {
  const InverseFactor factor = inverse_factor(eigen_view(hessian), percdamp, max_retries);
  GptqInverseFactor out;
  out.n = hessian.rows();
  out.upper.resize(out.n * out.n);
  const auto n = static_cast<Eigen::Index>(out.n);
  Eigen::Map<RowMajorF>(out.upper.data(), n, n) = factor.upper.triangularView<Eigen::Upper>();
  out.damping = factor.damping;
  out.retries = factor.retries;
  return out;
}

SymmetricMatrix rotate_hessian(const SymmetricMatrix& hessian, const HadamardRotation& rotation) {
  const std::size_t n = hessian.rows();
  Eigen::MatrixXf h = eigen_view(hessian).cast<float>();
  for (int pass = 0; pass < 2; ++pass) {
    // Column-major storage read as row-major is the transpose: rotating its rows gives H R^T
    // (H symmetric); the transpose of the result, rotated again, is R H R^T.
    for (std::size_t start = 0; start < n; start += rotation.size)
      rotate_input_side(MatrixView<float>(h.data() + start, n, rotation.size, n), rotation);
    h.transposeInPlace();
  }
  const Eigen::MatrixXd out = h.cast<double>();
  return symmetric_from((out + out.transpose()) * 0.5);  // exactly symmetric
}

}  // namespace detail

namespace {

/// quantize_gptq, whose errors in_tensor names.
GptqResult quantize_gptq_unnamed(MatrixView<const float> weights, const SymmetricMatrix& hessian,
                                 const Grid& grid, const GptqOptions& options) {
  if (!options.hadamard) return quantize_gptq_unrotated(weights, hessian, grid, options);
  check_hessian(hessian, weights.cols);
  check_options(options);
  detail::require_finite(weights, options.tensor_name);
  const HadamardRotation rotation = incoherence_rotation(weights.cols, *options.hadamard);
  const std::vector<float> rotated = rotated_copy(weights, rotation);
  GptqOptions plain = options;
  plain.hadamard.reset();
  GptqResult result =
      quantize_gptq_unrotated(MatrixView<const float>(rotated.data(), weights.rows, weights.cols),
                              detail::rotate_hessian(hessian, rotation), grid, plain);
  result.weights.set_input_rotation(rotation);
  return result;
}

}  // namespace

GptqResult quantize_gptq(MatrixView<const float> weights, const SymmetricMatrix& hessian,
                         const Grid& grid, const GptqOptions& options) {
  return detail::in_tensor(options.tensor_name, weights,
                           [&] { return quantize_gptq_unnamed(weights, hessian, grid, options); });
}

GptqResult quantize_gptq(MatrixView<const float> weights, const SymmetricMatrix& hessian,
                         const Scheme& scheme, const GptqOptions& options) {
  const std::unique_ptr<Grid> grid = make_grid(scheme);
  return quantize_gptq(weights, hessian, *grid, options);
}

}  // namespace lowbit
