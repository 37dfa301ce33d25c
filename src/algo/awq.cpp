#include "lowbit/algo/awq.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <exception>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "detail/parallel_rows.hpp"
#include "lowbit/algo/rtn.hpp"
#include "lowbit/detail/parallel.hpp"
#include "lowbit/error.hpp"
#include "lowbit/quant/grid.hpp"
#include "lowbit/quant/linear.hpp"

namespace lowbit {

namespace detail {

namespace {

using AwqMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using AwqConstRef = Eigen::Ref<const AwqMatrix, 0, Eigen::OuterStride<>>;

Eigen::Map<const AwqMatrix, 0, Eigen::OuterStride<>> awq_map(MatrixView<const float> m) {
  return {m.data, static_cast<Eigen::Index>(m.rows), static_cast<Eigen::Index>(m.cols),
          Eigen::OuterStride<>(static_cast<Eigen::Index>(m.row_stride))};
}

ErrorContext awq_context(const std::string& tensor, MatrixView<const float> m) {
  return ErrorContext{"", tensor, {m.rows, m.cols}};
}

/// AWQ fake-quantizes scaled copies of the weights group by group, so its grid must fit a group
/// from the group alone: no tensor scale or codebook fixed for the whole matrix, and row-wise
/// groups (per tensor, per channel or groups of G).
void awq_check_grid(const Grid& grid) {
  const Scheme& scheme = grid.scheme();
  const Granularity::Kind kind = scheme.granularity.kind;
  if (grid.has_matrix_state() || !scheme.has_scales() ||
      (kind != Granularity::Kind::tensor && kind != Granularity::Kind::channel &&
       kind != Granularity::Kind::group)) {
    std::string message =
        "AWQ needs a grid with scales per tensor, channel or group and nothing fitted to the "
        "whole matrix (no tensor scale or codebook), not ";
    message.append(scheme.to_string());
    throw unsupported(message);
  }
}

std::unique_ptr<Grid> awq_make_grid(const Scheme& scheme) {
  std::unique_ptr<Grid> grid = make_grid(scheme);
  awq_check_grid(*grid);
  return grid;
}

void awq_check_options(const AwqOptions& options) {
  if (options.scale_grid < 1) throw invalid_argument("AWQ: scale_grid must be at least 1");
  if (options.clip_grid < 1) throw invalid_argument("AWQ: clip_grid must be at least 1");
  if (!(options.max_shrink >= 0.0f && options.max_shrink <= 1.0f))
    throw invalid_argument("AWQ: max_shrink must be in [0, 1]");
  if (options.clip_samples == 0) throw invalid_argument("AWQ: clip_samples must be at least 1");
}

/// Throws invalid_value naming the first NaN or Inf of `m` (`what` names the matrix).
void awq_require_finite(MatrixView<const float> m, const std::string& what,
                        const std::string& tensor) {
  for (std::size_t r = 0; r < m.rows; ++r) {
    bool finite = true;
    for (float v : m.row(r)) finite &= std::abs(v) <= std::numeric_limits<float>::max();
    if (finite) continue;
    for (std::size_t c = 0; c < m.cols; ++c) {
      const float v = m(r, c);
      if (std::isfinite(v)) continue;
      std::string message = "AWQ: ";
      message.append(what)
          .append(std::isnan(v) ? " holds NaN" : " holds Inf")
          .append(" at row ")
          .append(std::to_string(r))
          .append(", column ")
          .append(std::to_string(c));
      throw invalid_value(message, awq_context(tensor, m));
    }
  }
}

/// Inputs x [n, in] (n >= 1 when `need_samples`) against weights of `cols` columns.
void awq_check_inputs(MatrixView<const float> x, std::size_t cols, bool need_samples,
                      const std::string& tensor) {
  if (x.cols != cols) {
    std::string message = "AWQ: inputs of width ";
    message.append(std::to_string(x.cols))
        .append(" for weights with ")
        .append(std::to_string(cols))
        .append(" columns");
    throw invalid_argument(message, awq_context(tensor, x));
  }
  if (need_samples && x.rows == 0)
    throw invalid_argument("AWQ: no calibration samples (inputs with 0 rows)",
                           awq_context(tensor, x));
  awq_require_finite(x, "the input", tensor);
}

/// A layer group: at least one weight, every one with at least one row and the same positive
/// number of columns, all finite.
void awq_check_weights(std::span<const MatrixView<const float>> weights,
                       const std::string& tensor) {
  if (weights.empty()) throw invalid_argument("AWQ: a layer group needs at least one weight");
  const std::size_t cols = weights[0].cols;
  if (cols == 0) throw invalid_argument("AWQ: weights with no input channels");
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const MatrixView<const float>& w = weights[i];
    std::string name = "weight ";
    name.append(std::to_string(i));
    if (w.cols != cols) {
      std::string message = "AWQ: ";
      message.append(name)
          .append(" has ")
          .append(std::to_string(w.cols))
          .append(" columns, weight 0 has ")
          .append(std::to_string(cols));
      throw invalid_argument(message, awq_context(tensor, w));
    }
    if (w.rows == 0) {
      std::string message = "AWQ: ";
      message.append(name).append(" has no rows");
      throw invalid_argument(message, awq_context(tensor, w));
    }
    awq_require_finite(w, name, tensor);
  }
}

/// Columns per scheme group along a row of `cols` (the whole row for per-channel and per-tensor
/// schemes).
std::size_t awq_group_length(const Scheme& scheme, std::size_t cols) noexcept {
  return scheme.granularity.kind == Granularity::Kind::group ? scheme.granularity.group_size
                                                             : std::max<std::size_t>(cols, 1);
}

/// The range of every entry of w's scale grid (q.scale_index order); {0, 0} for the one entry of
/// an empty per-tensor matrix, as quantize_linear has it.
std::vector<ValueRange> awq_group_ranges(MatrixView<const float> w, const Scheme& scheme) {
  const ScaleGrid grid = scheme.scale_grid(w.rows, w.cols);
  std::vector<ValueRange> ranges(grid.size());
  for (std::size_t r = 0; r < w.rows; ++r)
    for (std::size_t c = 0; c < w.cols; ++c)
      ranges[grid_index(scheme.granularity, grid, r, c)].add(w(r, c));
  if (w.size() == 0)
    for (ValueRange& range : ranges) range = ValueRange{0.0f, 0.0f};
  return ranges;
}

float awq_absmax(const ValueRange& range) noexcept {
  return std::max(std::abs(range.lo), std::abs(range.hi));
}

}  // namespace

/// absmax of every entry of w's scale grid (q.scale_index order).
std::vector<float> awq_group_absmax(MatrixView<const float> w, const Scheme& scheme) {
  const std::vector<ValueRange> ranges = awq_group_ranges(w, scheme);
  std::vector<float> absmax(ranges.size());
  for (std::size_t k = 0; k < ranges.size(); ++k) absmax[k] = awq_absmax(ranges[k]);
  return absmax;
}

namespace {

float awq_clamp(float v, float m) noexcept { return std::min(std::max(v, -m), m); }

/// RTN of one row, group by group, into out: each group with the parameters the grid fits to it,
/// or all with *tensor for per-tensor schemes. `context` is an empty QuantizedMatrix of the grid's
/// Scheme: a grid without matrix state reads nothing else from it (awq_check_grid).
void awq_fake_quantize_row(const Grid& grid, const QuantizedMatrix& context,
                           std::span<const float> row, const GroupParams* tensor, float* out) {
  const std::size_t cols = row.size();
  const std::size_t group = awq_group_length(grid.scheme(), cols);
  for (std::size_t start = 0; start < cols; start += group) {
    const std::span<const float> part = row.subspan(start, std::min(group, cols - start));
    const GroupParams p = tensor != nullptr ? *tensor : grid.fit(part, context);
    grid.fake_quantize(context, 0, start, part, p, std::span<float>(out + start, part.size()));
  }
}

/// The parameters of a whole matrix, for per-tensor schemes.
GroupParams awq_tensor_params(const Grid& grid, const QuantizedMatrix& context,
                              MatrixView<const float> w) {
  std::vector<float> all;
  all.reserve(w.size());
  for (std::size_t r = 0; r < w.rows; ++r) all.insert(all.end(), w.row(r).begin(), w.row(r).end());
  return grid.fit(all, context);
}

}  // namespace

void awq_fake_quantize(const Grid& grid, MatrixView<const float> w,
                       std::span<const float> max_values, float* out) {
  awq_check_grid(grid);
  const Scheme& scheme = grid.scheme();
  const QuantizedMatrix context(scheme, 0, 0);
  std::vector<float> clamped;
  if (!max_values.empty()) {
    clamped.resize(w.size());
    const MatrixView<float> view(clamped.data(), w.rows, w.cols);
    for (std::size_t r = 0; r < w.rows; ++r)
      std::copy(w.row(r).begin(), w.row(r).end(), view.row(r).begin());
    apply_clip(view, max_values, scheme);
    w = MatrixView<const float>(clamped.data(), w.rows, w.cols);
  }
  const bool tensor = scheme.granularity.kind == Granularity::Kind::tensor;
  const GroupParams shared = tensor ? awq_tensor_params(grid, context, w) : GroupParams{};
  detail::for_each_row(
      w.rows, detail::worth_threads(w.size()), [] { return 0; },
      [&](std::size_t r, int) {
        awq_fake_quantize_row(grid, context, w.row(r), tensor ? &shared : nullptr,
                              out + r * w.cols);
      });
}

namespace {

/// R [min(n, cols), cols] with R^T R = X^T X for x [n, cols]: the R factor of x's QR when x has
/// more rows than columns, x itself otherwise. ||x d||^2 = ||R d||^2 for every d.
Eigen::MatrixXf awq_compress_samples(Eigen::MatrixXf x) {
  if (x.rows() <= x.cols()) return x;
  const Eigen::HouseholderQR<Eigen::MatrixXf> qr(x);
  const Eigen::Index cols = x.cols();
  return qr.matrixQR().topRows(cols).triangularView<Eigen::Upper>();
}

/// Rows per task of the searches' parallel loops: each task runs its own GEMM (single-threaded
/// inside the parallel region), so no thread waits on another inside a product.
inline constexpr std::size_t awq_block_rows = 128;

/// out[i] = ||r d_i||^2 for every row d_i of d [rows, cols], r [m, cols]: the products by one GEMM
/// in float (into p), the squares summed in double.
void awq_row_errors(AwqConstRef d, const Eigen::MatrixXf& r, AwqMatrix& p, double* out) {
  const Eigen::Index rows = d.rows(), m = r.rows();
  if (m == 0 || d.cols() == 0) {
    std::fill(out, out + rows, 0.0);
    return;
  }
  p.noalias() = d * r.transpose();
  for (Eigen::Index i = 0; i < rows; ++i) {
    double sum = 0.0;
    for (Eigen::Index k = 0; k < m; ++k) {
      const double v = static_cast<double>(p(i, k));
      sum += v * v;
    }
    out[i] = sum;
  }
}

/// Runs body(task, scratch) for task = 0 .. tasks - 1: in one OpenMP parallel region when
/// `threaded` and there are at least two tasks (handed out one at a time, each thread with its own
/// make_scratch()), in order on this thread otherwise. Inside an active region Eigen runs products
/// single-threaded (it does not nest). Callers decide `threaded` by the multiply-adds of all the
/// products (worth_threads: at least 2^16), below Eigen's own threshold for threading one product
/// (10^5), and split the work into at least two tasks whenever a product could be threaded (a
/// product of one row is a GEMV, which Eigen never threads).
template <class MakeScratch, class Body>
void awq_for_tasks(std::ptrdiff_t tasks, bool threaded, MakeScratch&& make_scratch, Body&& body) {
  if (!threaded || tasks < 2) {
    auto scratch = make_scratch();
    for (std::ptrdiff_t task = 0; task < tasks; ++task) body(task, scratch);
    return;
  }
  // A grid's fit may throw (a scale beyond its format): kept and rethrown outside the region.
  std::exception_ptr failure;
#pragma omp parallel
  {
    auto scratch = make_scratch();
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t task = 0; task < tasks; ++task) {
      try {
        body(task, scratch);
      } catch (...) {
#pragma omp critical(lowbit_awq_failure)
        if (!failure) failure = std::current_exception();
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
}

/// The largest |element| of W diag(s) the scale search quantizes: half of float's range, so that
/// a group's width hi - lo, and so its RTN scale, stays finite.
inline constexpr float awq_scaled_limit = std::numeric_limits<float>::max() / 2.0f;

/// The scale search's losses: for every candidate scale vector (an empty one means s = 1), the sum
/// over the layers of ||r (W - Q(W diag(s)) diag(s)^-1)^T||_F^2 / (samples * rows); +inf where an
/// element of W diag(s) exceeds awq_scaled_limit. All candidates, layers and blocks of rows are
/// the tasks of one parallel region; the block sums are added in order afterwards.
std::vector<double> awq_losses(const Grid& grid, std::span<const MatrixView<const float>> weights,
                               const std::vector<std::vector<float>>& candidates,
                               const Eigen::MatrixXf& r, double samples) {
  const std::size_t count_c = candidates.size(), layers = weights.size();
  const std::size_t cols = weights[0].cols;
  const bool tensor = grid.scheme().granularity.kind == Granularity::Kind::tensor;
  const QuantizedMatrix context(grid.scheme(), 0, 0);

  // Per tensor, the parameters of every (candidate, layer) come from the whole scaled matrix.
  std::vector<unsigned char> overflow(count_c * layers, 0);
  std::vector<GroupParams> shared(tensor ? count_c * layers : 0);
  if (tensor) {
    std::vector<float> scaled;
    for (std::size_t c = 0; c < count_c; ++c)
      for (std::size_t l = 0; l < layers; ++l) {
        const std::vector<float>& s = candidates[c];
        const MatrixView<const float>& w = weights[l];
        scaled.resize(w.size());
        bool finite = true;
        for (std::size_t i = 0; i < w.rows; ++i)
          for (std::size_t j = 0; j < cols; ++j) {
            const float v = s.empty() ? w(i, j) : w(i, j) * s[j];
            finite &= std::abs(v) <= awq_scaled_limit;
            scaled[i * cols + j] = v;
          }
        if (!finite)
          overflow[c * layers + l] = 1;
        else
          shared[c * layers + l] = grid.fit(scaled, context);
      }
  }

  std::vector<std::size_t> first_block(layers + 1, 0);
  std::size_t elements = 0;
  for (std::size_t l = 0; l < layers; ++l) {
    first_block[l + 1] = first_block[l] + (weights[l].rows + awq_block_rows - 1) / awq_block_rows;
    elements += weights[l].size();
  }
  const std::size_t blocks = first_block[layers];
  std::vector<double> partial(count_c * blocks, 0.0);
  std::vector<unsigned char> task_overflow(count_c * blocks, 0);

  struct Scratch {
    std::vector<float> scaled, q;
    std::vector<double> errors;
    AwqMatrix d, product;
  };
  const auto make_scratch = [&] {
    Scratch t;
    t.scaled.resize(cols);
    t.q.resize(cols);
    t.errors.resize(awq_block_rows);
    t.d.resize(static_cast<Eigen::Index>(awq_block_rows), static_cast<Eigen::Index>(cols));
    return t;
  };
  const auto run_task = [&](std::ptrdiff_t task, Scratch& t) {
    const auto index = static_cast<std::size_t>(task);
    const std::size_t c = index / blocks, block = index % blocks;
    const std::size_t l = static_cast<std::size_t>(
        std::upper_bound(first_block.begin(), first_block.end(), block) - first_block.begin() - 1);
    if (overflow[c * layers + l]) {
      task_overflow[index] = 1;
      return;
    }
    const std::vector<float>& s = candidates[c];
    const MatrixView<const float>& w = weights[l];
    const GroupParams* tensor_params = tensor ? &shared[c * layers + l] : nullptr;
    const std::size_t first = (block - first_block[l]) * awq_block_rows;
    const std::size_t count = std::min(awq_block_rows, w.rows - first);
    for (std::size_t i = 0; i < count; ++i) {
      const std::span<const float> row = w.row(first + i);
      std::span<const float> input = row;
      if (!s.empty()) {
        bool finite = true;
        for (std::size_t j = 0; j < cols; ++j) {
          t.scaled[j] = row[j] * s[j];
          finite &= std::abs(t.scaled[j]) <= awq_scaled_limit;
        }
        if (!finite) {
          task_overflow[index] = 1;
          return;
        }
        input = t.scaled;
      }
      awq_fake_quantize_row(grid, context, input, tensor_params, t.q.data());
      float* di = &t.d(static_cast<Eigen::Index>(i), 0);
      if (s.empty())
        for (std::size_t j = 0; j < cols; ++j) di[j] = row[j] - t.q[j];
      else
        for (std::size_t j = 0; j < cols; ++j) di[j] = row[j] - t.q[j] / s[j];
    }
    awq_row_errors(t.d.topRows(static_cast<Eigen::Index>(count)), r, t.product, t.errors.data());
    double sum = 0.0;
    for (std::size_t i = 0; i < count; ++i) sum += t.errors[i];
    partial[index] = sum;
  };
  // Threads by the work of the products, not the size of the weights (see awq_for_tasks).
  const std::size_t work = count_c * elements * static_cast<std::size_t>(r.rows());
  awq_for_tasks(static_cast<std::ptrdiff_t>(count_c * blocks), worth_threads(work), make_scratch,
                run_task);

  std::vector<double> losses(count_c, 0.0);
  for (std::size_t c = 0; c < count_c; ++c)
    for (std::size_t l = 0; l < layers; ++l) {
      double sum = 0.0;
      for (std::size_t b = first_block[l]; b < first_block[l + 1]; ++b) {
        if (task_overflow[c * blocks + b]) sum = std::numeric_limits<double>::infinity();
        sum += partial[c * blocks + b];
      }
      if (overflow[c * layers + l]) sum = std::numeric_limits<double>::infinity();
      losses[c] += sum / (samples * static_cast<double>(weights[l].rows));
    }
  return losses;
}

std::vector<float> awq_input_means_unchecked(MatrixView<const float> x) {
  std::vector<double> sum(x.cols, 0.0);
  for (std::size_t t = 0; t < x.rows; ++t) {
    const std::span<const float> row = x.row(t);
    for (std::size_t j = 0; j < x.cols; ++j) sum[j] += static_cast<double>(std::abs(row[j]));
  }
  std::vector<float> mean(x.cols);
  for (std::size_t j = 0; j < x.cols; ++j)
    mean[j] = static_cast<float>(sum[j] / static_cast<double>(x.rows));
  return mean;
}

std::vector<float> awq_weight_means_unchecked(std::span<const MatrixView<const float>> weights,
                                              const Scheme& scheme) {
  const std::size_t cols = weights[0].cols;
  std::vector<double> sum(cols, 0.0);
  std::size_t total_rows = 0;
  for (const MatrixView<const float>& w : weights) {
    const ScaleGrid grid = scheme.scale_grid(w.rows, w.cols);
    const std::vector<float> absmax = awq_group_absmax(w, scheme);
    for (std::size_t r = 0; r < w.rows; ++r)
      for (std::size_t c = 0; c < cols; ++c) {
        const double denominator =
            static_cast<double>(absmax[grid_index(scheme.granularity, grid, r, c)]) + 1e-6;
        sum[c] += static_cast<double>(std::abs(w(r, c))) / denominator;
      }
    total_rows += w.rows;
  }
  std::vector<float> mean(cols);
  for (std::size_t c = 0; c < cols; ++c)
    mean[c] = static_cast<float>(sum[c] / static_cast<double>(total_rows));
  return mean;
}

}  // namespace

}  // namespace detail

std::vector<float> awq_input_means(MatrixView<const float> x) {
  detail::awq_check_inputs(x, x.cols, true, "");
  return detail::awq_input_means_unchecked(x);
}

std::vector<float> awq_weight_means(std::span<const MatrixView<const float>> weights,
                                    const Scheme& scheme) {
  detail::awq_make_grid(scheme);
  detail::awq_check_weights(weights, "");
  return detail::awq_weight_means_unchecked(weights, scheme);
}

std::vector<float> awq_scales(std::span<const float> x_mean, std::span<const float> w_mean,
                              double ratio, bool duo_scaling) {
  if (x_mean.size() != w_mean.size()) {
    std::string message = "awq_scales: ";
    message.append(std::to_string(x_mean.size()))
        .append(" input means and ")
        .append(std::to_string(w_mean.size()))
        .append(" weight means");
    throw invalid_argument(message);
  }
  if (!(ratio >= 0.0 && ratio <= 1.0))
    throw invalid_argument("awq_scales: ratio must be in [0, 1]");
  const std::size_t n = x_mean.size();
  for (std::size_t j = 0; j < n; ++j)
    if (!(x_mean[j] >= 0.0f && x_mean[j] <= std::numeric_limits<float>::max() &&
          w_mean[j] >= 0.0f && w_mean[j] <= std::numeric_limits<float>::max())) {
      std::string message = "awq_scales: the means of channel ";
      message.append(std::to_string(j)).append(" must be finite and non-negative");
      throw invalid_value(message);
    }
  std::vector<double> raw(n, 0.0);
  double lo = std::numeric_limits<double>::infinity(), hi = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    if (x_mean[j] == 0.0f || w_mean[j] == 0.0f) continue;  // degenerate: s = 1 below
    double s = std::pow(static_cast<double>(x_mean[j]), ratio);
    if (duo_scaling) s /= std::pow(static_cast<double>(w_mean[j]), 1.0 - ratio) + 1e-4;
    s = std::max(s, 1e-4);
    raw[j] = s;
    lo = std::min(lo, s);
    hi = std::max(hi, s);
  }
  const double norm = hi > 0.0 ? std::sqrt(hi * lo) : 1.0;
  std::vector<float> scales(n, 1.0f);
  for (std::size_t j = 0; j < n; ++j) {
    if (raw[j] == 0.0) continue;
    const float s = static_cast<float>(raw[j] / norm);
    // Cannot fail for finite means (s lies in [sqrt(min/max), sqrt(max/min)]); kept as a guard.
    scales[j] = (s > 0.0f && s <= std::numeric_limits<float>::max()) ? s : 1.0f;
  }
  return scales;
}

AwqScaleResult awq_search_scales(std::span<const MatrixView<const float>> weights,
                                 MatrixView<const float> x, const Grid& grid,
                                 const AwqOptions& options) {
  detail::awq_check_grid(grid);
  const Scheme& scheme = grid.scheme();
  detail::awq_check_options(options);
  detail::awq_check_weights(weights, options.tensor_name);
  detail::awq_check_inputs(x, weights[0].cols, true, options.tensor_name);

  const std::vector<float> x_mean = detail::awq_input_means_unchecked(x);
  const std::vector<float> w_mean = detail::awq_weight_means_unchecked(weights, scheme);
  const Eigen::MatrixXf r = detail::awq_compress_samples(detail::awq_map(x));
  const double samples = static_cast<double>(x.rows);
  const std::size_t cols = x.cols;

  // Candidate 0 is s = 1 (plain RTN), candidate i + 1 the grid point i.
  std::vector<std::vector<float>> candidates(1);
  for (int i = 0; i < options.scale_grid; ++i)
    candidates.push_back(
        awq_scales(x_mean, w_mean, static_cast<double>(i) / static_cast<double>(options.scale_grid),
                   options.duo_scaling));
  const std::vector<double> losses = detail::awq_losses(grid, weights, candidates, r, samples);

  AwqScaleResult result;
  result.rtn_error = losses[0];
  result.grid_index = -1;
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < options.scale_grid; ++i) {
    const double error = losses[static_cast<std::size_t>(i) + 1];
    result.errors.push_back(error);
    if (error < best) {
      best = error;
      result.grid_index = i;
      result.ratio = static_cast<double>(i) / static_cast<double>(options.scale_grid);
      result.error = error;
    }
  }
  if (result.grid_index >= 0)
    result.scales = std::move(candidates[static_cast<std::size_t>(result.grid_index) + 1]);
  if (result.grid_index < 0) {
    result.scales.assign(cols, 1.0f);
    result.ratio = -1.0;
    result.error = result.rtn_error;
  }
  return result;
}

AwqScaleResult awq_search_scales(std::span<const MatrixView<const float>> weights,
                                 MatrixView<const float> x, const Scheme& scheme,
                                 const AwqOptions& options) {
  const std::unique_ptr<Grid> grid = detail::awq_make_grid(scheme);
  if (weights.empty()) return awq_search_scales(weights, x, *grid, options);
  return detail::in_tensor(options.tensor_name, weights[0],
                           [&] { return awq_search_scales(weights, x, *grid, options); });
}

AwqScaleResult awq_search_scales(MatrixView<const float> weight, MatrixView<const float> x,
                                 const Scheme& scheme, const AwqOptions& options) {
  return awq_search_scales(std::span<const MatrixView<const float>>(&weight, 1), x, scheme,
                           options);
}

float awq_clip_candidate(float absmax, int i, int clip_grid) noexcept {
  return absmax * static_cast<float>(1.0 - static_cast<double>(i) / static_cast<double>(clip_grid));
}

std::vector<float> awq_search_clip(MatrixView<const float> w, MatrixView<const float> x,
                                   const Grid& grid, const AwqOptions& options) {
  detail::awq_check_grid(grid);
  const Scheme& scheme = grid.scheme();
  const QuantizedMatrix context(scheme, 0, 0);
  detail::awq_check_options(options);
  detail::awq_check_inputs(x, w.cols, true, options.tensor_name);
  detail::awq_require_finite(w, "the weight", options.tensor_name);

  const std::vector<ValueRange> ranges = detail::awq_group_ranges(w, scheme);
  std::vector<float> absmax(ranges.size());
  for (std::size_t k = 0; k < ranges.size(); ++k) absmax[k] = detail::awq_absmax(ranges[k]);
  std::vector<float> best = absmax;
  const std::size_t rows = w.rows, cols = w.cols;
  if (rows == 0 || cols == 0) return best;
  const ScaleGrid scale_grid = scheme.scale_grid(rows, cols);

  // Subsampled inputs, compressed per group of columns.
  const std::size_t step = std::max<std::size_t>(1, x.rows / options.clip_samples);
  const std::size_t samples = (x.rows + step - 1) / step;
  const std::size_t group = detail::awq_group_length(scheme, cols);
  const std::size_t groups = (cols + group - 1) / group;
  std::vector<Eigen::MatrixXf> compressed(groups);
  const auto compress_group = [&](std::ptrdiff_t task, int) {
    const std::size_t start = static_cast<std::size_t>(task) * group;
    const std::size_t length = std::min(group, cols - start);
    Eigen::MatrixXf xg(static_cast<Eigen::Index>(samples), static_cast<Eigen::Index>(length));
    for (std::size_t t = 0; t < samples; ++t)
      for (std::size_t c = 0; c < length; ++c)
        xg(static_cast<Eigen::Index>(t), static_cast<Eigen::Index>(c)) = x(t * step, start + c);
    compressed[static_cast<std::size_t>(task)] = detail::awq_compress_samples(std::move(xg));
  };
  detail::awq_for_tasks(
      static_cast<std::ptrdiff_t>(groups), detail::worth_threads(samples * cols * group),
      [] { return 0; }, compress_group);

  // Tasks: (group of columns, block of rows). Each (row, group) belongs to one task, which keeps
  // its best candidate; per tensor, the per-row errors of every candidate are summed afterwards.
  const auto candidates = static_cast<std::size_t>(static_cast<double>(options.max_shrink) *
                                                   static_cast<double>(options.clip_grid));
  const bool tensor = scheme.granularity.kind == Granularity::Kind::tensor;
  std::vector<double> best_error(ranges.size(), std::numeric_limits<double>::infinity());
  std::vector<double> tensor_errors(tensor ? candidates * rows : 0, 0.0);
  // With one group of columns, at least two blocks of rows (when there are two rows), so that a
  // threaded search has two tasks and Eigen never threads a product itself (see awq_for_tasks).
  const std::size_t block_rows =
      groups > 1 ? detail::awq_block_rows
                 : std::clamp<std::size_t>((rows + 1) / 2, 1, detail::awq_block_rows);
  const std::size_t row_blocks = (rows + block_rows - 1) / block_rows;
  const auto tasks = static_cast<std::ptrdiff_t>(groups * row_blocks);
  // Per tensor, the parameters of each candidate come from the whole clamped matrix.
  std::vector<GroupParams> tensor_params(tensor ? candidates : 0);
  if (tensor) {
    std::vector<float> clamped(w.size());
    for (std::size_t i = 0; i < candidates; ++i) {
      const float m = awq_clip_candidate(absmax[0], static_cast<int>(i), options.clip_grid);
      for (std::size_t row = 0; row < rows; ++row)
        for (std::size_t c = 0; c < cols; ++c)
          clamped[row * cols + c] = detail::awq_clamp(w(row, c), m);
      tensor_params[i] = grid.fit(clamped, context);
    }
  }
  struct Scratch {
    detail::AwqMatrix d, product;
    std::vector<double> errors;
    std::vector<float> clamped, fake;
  };
  const auto make_scratch = [&] {
    Scratch t;
    t.clamped.resize(std::min(group, cols));
    t.fake.resize(std::min(group, cols));
    t.d.resize(static_cast<Eigen::Index>(block_rows),
               static_cast<Eigen::Index>(std::min(group, cols)));
    t.errors.resize(block_rows);
    return t;
  };
  const auto run_task = [&](std::ptrdiff_t task, Scratch& t) {
    const std::size_t g = static_cast<std::size_t>(task) / row_blocks;
    const std::size_t first = (static_cast<std::size_t>(task) % row_blocks) * block_rows;
    const std::size_t count = std::min(block_rows, rows - first);
    const std::size_t start = g * group, length = std::min(group, cols - start);
    for (std::size_t i = 0; i < candidates; ++i) {
      const int candidate = static_cast<int>(i);
      for (std::size_t ii = 0; ii < count; ++ii) {
        const std::size_t row = first + ii;
        const std::size_t k = grid_index(scheme.granularity, scale_grid, row, start);
        const float m = awq_clip_candidate(absmax[k], candidate, options.clip_grid);
        for (std::size_t c = 0; c < length; ++c)
          t.clamped[c] = detail::awq_clamp(w(row, start + c), m);
        const std::span<const float> part(t.clamped.data(), length);
        const GroupParams p = tensor ? tensor_params[i] : grid.fit(part, context);
        grid.fake_quantize(context, 0, start, part, p, std::span<float>(t.fake.data(), length));
        for (std::size_t c = 0; c < length; ++c)
          t.d(static_cast<Eigen::Index>(ii), static_cast<Eigen::Index>(c)) =
              w(row, start + c) - t.fake[c];
      }
      detail::awq_row_errors(
          t.d.topLeftCorner(static_cast<Eigen::Index>(count), static_cast<Eigen::Index>(length)),
          compressed[g], t.product, t.errors.data());
      for (std::size_t ii = 0; ii < count; ++ii) {
        const std::size_t row = first + ii;
        const double error = t.errors[ii] / static_cast<double>(samples);
        if (tensor) {
          tensor_errors[i * rows + row] = error;
          continue;
        }
        const std::size_t k = grid_index(scheme.granularity, scale_grid, row, start);
        if (error < best_error[k]) {
          best_error[k] = error;
          best[k] = awq_clip_candidate(absmax[k], candidate, options.clip_grid);
        }
      }
    }
  };
  std::size_t depth = 0;
  for (const Eigen::MatrixXf& c : compressed)
    depth = std::max(depth, static_cast<std::size_t>(c.rows()));
  const std::size_t work = w.size() * depth * std::max<std::size_t>(candidates, 1);
  detail::awq_for_tasks(tasks, detail::worth_threads(work), make_scratch, run_task);
  if (tensor) {
    double least = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < candidates; ++i) {
      double total = 0.0;
      for (std::size_t row = 0; row < rows; ++row) total += tensor_errors[i * rows + row];
      if (total < least) {
        least = total;
        best[0] = awq_clip_candidate(absmax[0], static_cast<int>(i), options.clip_grid);
      }
    }
  }
  return best;
}

void apply_clip(MatrixView<float> w, std::span<const float> max_values, const Scheme& scheme) {
  scheme.validate();
  if (!scheme.has_scales()) {
    std::string message = "apply_clip: scheme ";
    message.append(scheme.to_string()).append(" has no scale grid");
    throw unsupported(message);
  }
  const ScaleGrid grid = scheme.scale_grid(w.rows, w.cols);
  if (max_values.size() != grid.size()) {
    std::string message = "apply_clip: ";
    message.append(std::to_string(max_values.size()))
        .append(" max values for a scale grid of ")
        .append(std::to_string(grid.size()));
    throw invalid_argument(message);
  }
  for (std::size_t k = 0; k < max_values.size(); ++k)
    if (!(max_values[k] >= 0.0f)) {
      std::string message = "apply_clip: max value ";
      message.append(std::to_string(k)).append(" is negative or NaN");
      throw invalid_value(message);
    }
  detail::awq_require_finite(w, "the weight", "");
  for (std::size_t r = 0; r < w.rows; ++r) {
    const std::span<float> row = w.row(r);
    for (std::size_t c = 0; c < w.cols; ++c) {
      const float m = max_values[grid_index(scheme.granularity, grid, r, c)];
      row[c] = std::min(std::max(row[c], -m), m);
    }
  }
}

std::vector<float> awq_search_clip(MatrixView<const float> w, MatrixView<const float> x,
                                   const Scheme& scheme, const AwqOptions& options) {
  const std::unique_ptr<Grid> grid = detail::awq_make_grid(scheme);
  return detail::in_tensor(options.tensor_name, w,
                           [&] { return awq_search_clip(w, x, *grid, options); });
}

QuantizedMatrix quantize_awq(MatrixView<const float> scaled_weights,
                             MatrixView<const float> scaled_inputs, const Grid& grid,
                             const AwqOptions& options) {
  detail::awq_check_grid(grid);
  detail::awq_check_options(options);
  detail::awq_check_inputs(scaled_inputs, scaled_weights.cols, options.clip, options.tensor_name);
  detail::awq_require_finite(scaled_weights, "the weight", options.tensor_name);
  RtnOptions rtn;
  rtn.tensor_name = options.tensor_name;
  if (!options.clip) return quantize_rtn(scaled_weights, grid, rtn);
  const std::vector<float> max_values =
      awq_search_clip(scaled_weights, scaled_inputs, grid, options);
  std::vector<float> clipped(scaled_weights.size());
  const MatrixView<float> view(clipped.data(), scaled_weights.rows, scaled_weights.cols);
  for (std::size_t r = 0; r < view.rows; ++r)
    std::copy(scaled_weights.row(r).begin(), scaled_weights.row(r).end(), view.row(r).begin());
  apply_clip(view, max_values, grid.scheme());
  return quantize_rtn(view, grid, rtn);
}

QuantizedMatrix quantize_awq(MatrixView<const float> scaled_weights,
                             MatrixView<const float> scaled_inputs, const Scheme& scheme,
                             const AwqOptions& options) {
  const std::unique_ptr<Grid> grid = detail::awq_make_grid(scheme);
  return detail::in_tensor(options.tensor_name, scaled_weights, [&] {
    return quantize_awq(scaled_weights, scaled_inputs, *grid, options);
  });
}

}  // namespace lowbit
