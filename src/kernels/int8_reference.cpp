// The reference int8 products (kernels/int8_reference.hpp).
#include "lowbit/kernels/int8_reference.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/int8_matmul.hpp"
#include "lowbit/detail/parallel.hpp"
#include "lowbit/error.hpp"

namespace lowbit {

namespace {

void check_llm_int8_threshold(float threshold, const char* who) {
  if (!(threshold > 0.0f)) {
    std::string message = who;
    message.append(": the outlier threshold must be positive (+inf for none), not ")
        .append(std::to_string(threshold));
    throw invalid_argument(message);
  }
}

std::vector<std::size_t> outlier_columns(MatrixView<const float> x, float threshold) {
  std::vector<bool> outlier(x.cols, false);
  for (std::size_t r = 0; r < x.rows; ++r)
    for (std::size_t c = 0; c < x.cols; ++c)
      if (std::abs(x(r, c)) > threshold) outlier[c] = true;
  std::vector<std::size_t> columns;
  for (std::size_t c = 0; c < x.cols; ++c)
    if (outlier[c]) columns.push_back(c);
  return columns;
}

}  // namespace

Int8Rows quantize_per_token_int8(MatrixView<const float> x) {
  detail::require_finite_input(x, "quantize_per_token_int8");
  Int8Rows out;
  out.rows = x.rows;
  out.cols = x.cols;
  out.codes.resize(x.rows * x.cols);
  out.scales.resize(x.rows);
  for (std::size_t r = 0; r < x.rows; ++r)
    out.scales[r] = detail::quantize_int8_row(
        x.row(r), std::span<std::int8_t>(out.codes.data() + r * x.cols, x.cols));
  return out;
}

void w8a8_gemm(const QuantizedMatrix& w, MatrixView<const float> x, MatrixView<float> y) {
  constexpr const char* who = "w8a8_gemm";
  detail::require_int8_per_channel(w, who);
  detail::check_int8_gemm_shapes(w, x, y, who);
  detail::require_finite_input(x, who);
  const Int8Rows xq = quantize_per_token_int8(x);
  const detail::Int8Weights wq = detail::unpack_int8_weights(w);
  const auto batch = static_cast<std::ptrdiff_t>(x.rows);
#pragma omp parallel for schedule(static) if (detail::worth_threads(x.rows * w.rows() * w.cols()))
  for (std::ptrdiff_t b = 0; b < batch; ++b) {
    const auto row = static_cast<std::size_t>(b);
    const std::int8_t* xrow = xq.codes.data() + row * xq.cols;
    for (std::size_t o = 0; o < wq.rows; ++o)
      y(row, o) = detail::int8_output(detail::dot_int8(xrow, wq.row(o), wq.cols), xq.scales[row],
                                      wq.scales[o]);
  }
}

std::vector<std::size_t> llm_int8_outlier_columns(MatrixView<const float> x,
                                                  const LlmInt8Options& options) {
  constexpr const char* who = "llm_int8_outlier_columns";
  check_llm_int8_threshold(options.threshold, who);
  detail::require_finite_input(x, who);
  return outlier_columns(x, options.threshold);
}

LlmInt8Stats llm_int8_gemm(const QuantizedMatrix& w, MatrixView<const float> x, MatrixView<float> y,
                           const LlmInt8Options& options) {
  constexpr const char* who = "llm_int8_gemm";
  check_llm_int8_threshold(options.threshold, who);
  detail::require_int8_per_channel(w, who);
  detail::check_int8_gemm_shapes(w, x, y, who);
  detail::require_finite_input(x, who);

  LlmInt8Stats stats;
  stats.outlier_columns = outlier_columns(x, options.threshold);
  const std::vector<std::size_t>& outliers = stats.outlier_columns;
  const std::size_t n_out = outliers.size();

  // The int8 part: x with its outlier columns zeroed, quantized per token.
  std::vector<float> inliers(x.rows * x.cols);
  for (std::size_t r = 0; r < x.rows; ++r) {
    std::copy(x.row(r).begin(), x.row(r).end(), inliers.begin() + r * x.cols);
    for (std::size_t c : outliers) inliers[r * x.cols + c] = 0.0f;
  }
  const Int8Rows xq =
      quantize_per_token_int8(MatrixView<const float>(inliers.data(), x.rows, x.cols));
  const detail::Int8Weights wq = detail::unpack_int8_weights(w);

  // The float part's weights: the outlier columns of the dequantized int8 matrix, [out, n_out],
  // each code * scale in float as QuantizedMatrix::dequantize computes it.
  std::vector<float> w_outliers(wq.rows * n_out);
  for (std::size_t o = 0; o < wq.rows; ++o)
    for (std::size_t j = 0; j < n_out; ++j)
      w_outliers[o * n_out + j] = static_cast<float>(wq.row(o)[outliers[j]]) * wq.scales[o];

  const auto batch = static_cast<std::ptrdiff_t>(x.rows);
#pragma omp parallel for schedule(static) if (detail::worth_threads(x.rows * w.rows() * w.cols()))
  for (std::ptrdiff_t b = 0; b < batch; ++b) {
    const auto row = static_cast<std::size_t>(b);
    const std::int8_t* xrow = xq.codes.data() + row * xq.cols;
    for (std::size_t o = 0; o < wq.rows; ++o) {
      double float_part = 0.0;
      for (std::size_t j = 0; j < n_out; ++j)
        float_part += static_cast<double>(x(row, outliers[j])) *
                      static_cast<double>(w_outliers[o * n_out + j]);
      y(row, o) = detail::int8_output(detail::dot_int8(xrow, wq.row(o), wq.cols), xq.scales[row],
                                      wq.scales[o], float_part);
    }
  }
  return stats;
}

}  // namespace lowbit
