// The reference backend's arithmetic (kernels/reference.hpp): simple loops in double, the oracle.
#include "lowbit/kernels/reference.hpp"

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>

#include "kernels/int8_matmul.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/intn.hpp"
#include "lowbit/kernels/int8_reference.hpp"

namespace lowbit::kernels {

namespace detail {

void check_gemm_shapes(std::size_t rows, std::size_t cols, MatrixView<const float> x,
                       MatrixView<float> y, const char* who) {
  if (x.cols != cols || y.cols != rows || x.rows != y.rows) {
    std::string message = who;
    message.append(": X is ")
        .append(lowbit::detail::shape_text(x.rows, x.cols))
        .append(" and Y ")
        .append(lowbit::detail::shape_text(y.rows, y.cols))
        .append(" for a weight of ")
        .append(lowbit::detail::shape_text(rows, cols))
        .append(" (X must be [batch, in], Y [batch, out])");
    throw invalid_argument(message);
  }
}

std::vector<float> rotated_inputs(const QuantizedMatrix& w, MatrixView<const float> x) {
  std::vector<float> out(x.rows * x.cols);
  for (std::size_t r = 0; r < x.rows; ++r) {
    const std::span<float> row(out.data() + r * x.cols, x.cols);
    std::copy(x.row(r).begin(), x.row(r).end(), row.begin());
    w.rotate_input(row);
  }
  return out;
}

void require_integer_weights(const Scheme& scheme, const char* who) {
  if (scheme.is_integer() && scheme.has_scales() && scheme.double_quant_block == 0) return;
  std::string message = who;
  message.append(": int8 activations need integer weights with plain scales, not ")
      .append(scheme.to_string());
  throw unsupported(message);
}

std::vector<std::int32_t> integer_levels(const Scheme& scheme) {
  std::vector<std::int32_t> levels(std::size_t{1} << scheme.bits);
  for (std::size_t c = 0; c < levels.size(); ++c)
    levels[c] = scheme.element == ElementFormat::int_signed
                    ? from_code(static_cast<std::uint8_t>(c), scheme.bits, true)
                    : static_cast<std::int32_t>(c);
  return levels;
}

}  // namespace detail

void reference_gemm_dequantized(MatrixView<const float> w, MatrixView<const float> x,
                                MatrixView<float> y) {
  for (std::size_t b = 0; b < x.rows; ++b)
    for (std::size_t o = 0; o < w.rows; ++o) {
      double sum = 0.0;
      for (std::size_t k = 0; k < w.cols; ++k)
        sum += static_cast<double>(x(b, k)) * static_cast<double>(w(o, k));
      y(b, o) = static_cast<float>(sum);
    }
}

void reference_gemm_int8(const QuantizedMatrix& w, MatrixView<const float> x, MatrixView<float> y) {
  constexpr const char* who = "reference_gemm";
  const Scheme& scheme = w.scheme();
  detail::require_integer_weights(scheme, who);
  if (w.cols() > lowbit::detail::int8_max_inner)
    throw unsupported(std::string(who).append(": more than 2^17 inputs would overflow int32"));
  const Int8Rows xq = quantize_per_token_int8(x);
  const std::vector<std::int32_t> levels = detail::integer_levels(scheme);
  const std::size_t group = scheme.granularity.row_span(w.cols());
  const double tensor_scale = w.tensor_scale();
  for (std::size_t b = 0; b < x.rows; ++b) {
    const std::span<const std::int8_t> xrow = xq.row(b);
    for (std::size_t o = 0; o < w.rows(); ++o) {
      double sum = 0.0;
      for (std::size_t start = 0; start < w.cols(); start += group) {
        const std::size_t end = std::min(w.cols(), start + group);
        std::int32_t acc = 0, xsum = 0;
        for (std::size_t k = start; k < end; ++k) {
          acc += static_cast<std::int32_t>(xrow[k]) * levels[w.code(o, k)];
          xsum += xrow[k];
        }
        const std::size_t index = w.scale_index(o, start);
        const double zero = w.zero(index);
        sum += static_cast<double>(w.scale(index)) * tensor_scale *
               (static_cast<double>(acc) - zero * static_cast<double>(xsum));
      }
      y(b, o) = static_cast<float>(static_cast<double>(xq.scales[b]) * sum);
    }
  }
}

void reference_gemm(const QuantizedMatrix& w, MatrixView<const float> x, MatrixView<float> y,
                    const PrepareOptions& options) {
  detail::check_gemm_shapes(w.rows(), w.cols(), x, y, "reference_gemm");
  const std::vector<float> rotated = detail::rotated_inputs(w, x);
  const MatrixView<const float> xr(rotated.data(), x.rows, x.cols);
  switch (options.activations) {
    case ActivationQuantization::none: {
      const std::vector<float> weights = w.dequantize();
      reference_gemm_dequantized(MatrixView<const float>(weights.data(), w.rows(), w.cols()), xr,
                                 y);
      return;
    }
    case ActivationQuantization::int8_per_token:
      reference_gemm_int8(w, xr, y);
      return;
    case ActivationQuantization::llm_int8:
      llm_int8_gemm(w, xr, y, LlmInt8Options{options.outlier_threshold});
      return;
  }
}

}  // namespace lowbit::kernels
