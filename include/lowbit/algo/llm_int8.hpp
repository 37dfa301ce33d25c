// LLM.int8() (Dettmers et al., "LLM.int8(): 8-bit Matrix Multiplication for Transformers at
// Scale", 2022). Vector-wise int8 (int8 weights per output channel, int8 activations per token)
// fails beyond ~6.7B parameters because a few input feature dimensions carry outliers of
// magnitude 20-100 in most tokens. The mixed-precision decomposition splits the matmul by input
// column: the columns where some activation exceeds a threshold (6.0) are multiplied in 16-bit
// float, the rest (99.9% of them) in int8 with int32 accumulation, and the two parts are added.
//
// What lowbit does (as bitsandbytes' MatMul8bitLt at inference, where only int8 weights exist):
//  * Weights: quantize_llm_int8_weights = quantize_w8a8_weights (smoothquant.hpp): signed int8 per
//    output channel, scale = absmax / 127, f32 scales.
//  * Outlier columns are chosen per call (per batch): every input column k where some row b has
//    |x[b, k]| > threshold (bitsandbytes tests >=; the paper says "larger than").
//  * Float part: sum over outlier k of x[b, k] * wdq[o, k], where wdq = code * scale are the
//    *dequantized int8* weights, not the original float ones: bitsandbytes' inference path keeps
//    only the int8 weights and dequantizes those columns (int8_vectorwise_dequant of CB[:, cols]).
//    The products are accumulated in double (bitsandbytes uses fp16 addmm).
//  * Int8 part: each row of x with its outlier columns set to zero is quantized as
//    quantize_per_token_int8 does (scale = absmax / 127 over the non-outlier columns, round half to
//    even, clamp to [-127, 127]); integer dot products with the int8 weights, int32 accumulation.
//    (bitsandbytes zeroes only the outlier *elements* before taking the row absmax and then the
//    whole outlier columns of the codes; here the row scale comes from the non-outlier columns
//    alone, which is never larger.)
//  * y[b, o] = float(double(acc) * x_scale[b] * w_scale[o] + float part). With no outlier column
//    (threshold = +inf, or a batch without large values) this is exactly w8a8_gemm.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lowbit/algo/detail/int8_matmul.hpp"
#include "lowbit/algo/smoothquant.hpp"
#include "lowbit/detail/parallel.hpp"
#include "lowbit/error.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quantized_matrix.hpp"

namespace lowbit {

struct LlmInt8Options {
  float threshold = 6.0f;  // |x| above this makes a column an outlier column; > 0, +inf = none
};

/// What one llm_int8_gemm call did.
struct LlmInt8Stats {
  std::vector<std::size_t> outlier_columns;  // ascending input column indices

  std::size_t outlier_count() const noexcept { return outlier_columns.size(); }
};

/// Vector-wise int8 weights for LLM.int8(): quantize_w8a8_weights(w).
inline QuantizedMatrix quantize_llm_int8_weights(MatrixView<const float> w,
                                                 const LinearQuantizeOptions& options = {}) {
  return quantize_w8a8_weights(w, options);
}

namespace detail {

inline void check_llm_int8_threshold(float threshold, const char* who) {
  if (!(threshold > 0.0f)) {
    std::string message = who;
    message.append(": the outlier threshold must be positive (+inf for none), not ")
        .append(std::to_string(threshold));
    throw invalid_argument(message);
  }
}

inline std::vector<std::size_t> outlier_columns(MatrixView<const float> x, float threshold) {
  std::vector<bool> outlier(x.cols, false);
  for (std::size_t r = 0; r < x.rows; ++r)
    for (std::size_t c = 0; c < x.cols; ++c)
      if (std::abs(x(r, c)) > threshold) outlier[c] = true;
  std::vector<std::size_t> columns;
  for (std::size_t c = 0; c < x.cols; ++c)
    if (outlier[c]) columns.push_back(c);
  return columns;
}

}  // namespace detail

/// The input columns of x [batch, in] that LLM.int8() multiplies in float: those where some row
/// has |x| > options.threshold, ascending. Throws invalid_argument for a threshold that is not
/// positive (or NaN), invalid_value for NaN/Inf in x.
inline std::vector<std::size_t> llm_int8_outlier_columns(MatrixView<const float> x,
                                                         const LlmInt8Options& options = {}) {
  constexpr const char* who = "llm_int8_outlier_columns";
  detail::check_llm_int8_threshold(options.threshold, who);
  detail::require_finite_input(x, who);
  return detail::outlier_columns(x, options.threshold);
}

/// The reference LLM.int8() GEMM: y = x w^T with w int8 per output channel (as w8a8_gemm takes it)
/// and x [batch, in] decomposed into outlier columns (float, against the dequantized int8 weights)
/// and the rest (per-token int8, int32 accumulation); see the top of this file. y is [batch, out]
/// and must not overlap x. Throws unsupported for any other weight scheme or more than 2^17 input
/// features, invalid_argument for shapes that do not fit or a threshold that is not positive,
/// invalid_value for NaN/Inf in x.
inline LlmInt8Stats llm_int8_gemm(const QuantizedMatrix& w, MatrixView<const float> x,
                                  MatrixView<float> y, const LlmInt8Options& options = {}) {
  constexpr const char* who = "llm_int8_gemm";
  detail::check_llm_int8_threshold(options.threshold, who);
  detail::require_int8_per_channel(w, who);
  detail::check_int8_gemm_shapes(w, x, y, who);
  detail::require_finite_input(x, who);

  LlmInt8Stats stats;
  stats.outlier_columns = detail::outlier_columns(x, options.threshold);
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
