// (Private to src/kernels/.) The pieces the reference W8A8 and LLM.int8() GEMMs share: the
// symmetric int8 quantizer of one activation row, the int32 dot product of two int8 rows, the int8
// weights of a QuantizedMatrix unpacked with their per-channel scales, and the argument checks.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/format/intn.hpp"
#include "lowbit/format/packing.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit::detail {

/// The largest inner dimension whose int32 accumulation cannot overflow: activation codes lie in
/// [-127, 127] and weight codes in [-128, 127] (the clip search, or a file, may use -128), so
/// |sum| <= in * 127 * 128 = 2^17 * 16256 < 2^31 - 1.
inline constexpr std::size_t int8_max_inner = std::size_t{1} << 17;

/// Throws invalid_value naming the first NaN or Inf of `x` (row-major order).
inline void require_finite_input(MatrixView<const float> x, const char* who) {
  for (std::size_t r = 0; r < x.rows; ++r)
    for (std::size_t c = 0; c < x.cols; ++c) {
      const float v = x(r, c);
      if (std::isfinite(v)) continue;
      std::string message = who;
      message.append(": ")
          .append(std::isnan(v) ? "NaN" : "Inf")
          .append(" in the input at row ")
          .append(std::to_string(r))
          .append(", column ")
          .append(std::to_string(c));
      throw invalid_value(message);
    }
}

/// Symmetric int8 quantization of one row (finite values): scale = absmax / 127, code =
/// clamp(round_half_even(x / scale), -127, 127). Returns the scale. An all-zero row has scale 0 and
/// codes 0. A row so tiny that absmax / 127 underflows to 0 (absmax < 63.5 * 2^-149) gets the
/// smallest subnormal as its scale, so that no nonzero row is flushed to zero.
inline float quantize_int8_row(std::span<const float> row, std::span<std::int8_t> codes) noexcept {
  float absmax = 0.0f;
  for (float v : row) absmax = std::max(absmax, std::abs(v));
  if (absmax == 0.0f) {
    std::fill(codes.begin(), codes.end(), std::int8_t{0});
    return 0.0f;
  }
  float scale = absmax / 127.0f;
  if (scale == 0.0f) scale = std::numeric_limits<float>::denorm_min();
  for (std::size_t i = 0; i < row.size(); ++i) {
    // Clamping first keeps the rounding trick in its range and equals clamping after.
    const float level = std::min(std::max(row[i] / scale, -127.0f), 127.0f);
    codes[i] = static_cast<std::int8_t>(round_half_even(level));
  }
  return scale;
}

/// sum_k int32(a[k]) * int32(b[k]), accumulated in int32 (n <= int8_max_inner cannot overflow).
inline std::int32_t dot_int8(const std::int8_t* a, const std::int8_t* b, std::size_t n) noexcept {
  std::int32_t sum = 0;
  for (std::size_t k = 0; k < n; ++k)
    sum += static_cast<std::int32_t>(a[k]) * static_cast<std::int32_t>(b[k]);
  return sum;
}

/// One output of an int8 GEMM: acc * x_scale * w_scale (+ a float part), evaluated in double and
/// rounded once to float.
inline float int8_output(std::int32_t acc, float x_scale, float w_scale,
                         double float_part = 0.0) noexcept {
  return static_cast<float>(static_cast<double>(acc) * static_cast<double>(x_scale) *
                                static_cast<double>(w_scale) +
                            float_part);
}

/// The signed int8 codes of a QuantizedMatrix, [rows, cols] row-major, with one scale per row.
struct Int8Weights {
  std::vector<std::int8_t> codes;
  std::vector<float> scales;
  std::size_t rows = 0;
  std::size_t cols = 0;

  const std::int8_t* row(std::size_t r) const noexcept { return codes.data() + r * cols; }
};

/// Throws unsupported unless `w` holds signed int8 codes with plain per-channel scales: no zero
/// point, no double quantization, no tensor scale, no input rotation.
inline void require_int8_per_channel(const QuantizedMatrix& w, const char* who) {
  const Scheme& scheme = w.scheme();
  const bool ok = scheme.element == ElementFormat::int_signed && scheme.bits == 8 &&
                  scheme.granularity.kind == Granularity::Kind::channel &&
                  scheme.double_quant_block == 0 && !scheme.tensor_scale;
  if (!ok) {
    std::string message = who;
    message
        .append(
            ": the weights must be signed int8 with one plain scale per output channel and no "
            "zero point (e.g. ")
        .append(Scheme::symmetric_int(8, Granularity::per_channel(), ScalarFormat::f32).to_string())
        .append("), not ")
        .append(scheme.to_string());
    throw unsupported(message);
  }
  if (w.input_rotation()) {
    std::string message = who;
    message.append(": weights with an input rotation are not supported (scheme ")
        .append(scheme.to_string())
        .append(")");
    throw unsupported(message);
  }
}

/// Checks x [batch, in], y [batch, out] against w [out, in] (invalid_argument) and the inner
/// dimension against int8_max_inner (unsupported).
inline void check_int8_gemm_shapes(const QuantizedMatrix& w, MatrixView<const float> x,
                                   MatrixView<const float> y, const char* who) {
  if (x.cols != w.cols() || y.rows != x.rows || y.cols != w.rows()) {
    std::string message = who;
    message.append(": x is ")
        .append(shape_text(x.rows, x.cols))
        .append(" and y is ")
        .append(shape_text(y.rows, y.cols))
        .append(" for weights of ")
        .append(shape_text(w.rows(), w.cols()))
        .append(" [out, in]; x must be [batch, in] and y [batch, out]");
    throw invalid_argument(message);
  }
  if (w.cols() > int8_max_inner) {
    std::string message = who;
    message.append(": ")
        .append(std::to_string(w.cols()))
        .append(" input features; int32 accumulation is exact only up to ")
        .append(std::to_string(int8_max_inner));
    throw unsupported(message);
  }
}

/// The codes and scales of an int8 per-channel matrix (require_int8_per_channel first).
inline Int8Weights unpack_int8_weights(const QuantizedMatrix& w) {
  Int8Weights out;
  out.rows = w.rows();
  out.cols = w.cols();
  out.codes.resize(out.rows * out.cols);
  out.scales.resize(out.rows);
  std::vector<std::uint8_t> codes(out.cols);
  for (std::size_t r = 0; r < out.rows; ++r) {
    unpack_words(w.row_words(r), 8, codes, w.scheme().pack_order);
    for (std::size_t c = 0; c < out.cols; ++c)
      out.codes[r * out.cols + c] = static_cast<std::int8_t>(from_code(codes[c], 8, true));
    out.scales[r] = w.scale(w.scale_index(r, 0));
  }
  return out;
}

}  // namespace lowbit::detail
