// NF4 quantization as QLoRA's bitsandbytes quantize_4bit(quant_type="nf4") does it: each block of
// `block` consecutive elements of a row (64 by default) keeps its absolute maximum as an fp32
// scale, and each element x becomes nf4::encode_nearest(x * (1 / absmax)) (bitsandbytes'
// kQuantizeBlockwise multiplies by the reciprocal, and dQuantizeNF4's thresholds decide). The
// dequantized value is nf4_value(code) * absmax.
//
// Double quantization (QLoRA's compress_statistics=True): offset = mean of all absmax values;
// absmax - offset is quantized blockwise as quantize_blockwise does it, in blocks of
// `double_quant_block` (256) consecutive scales in row-major scale-grid order, each block keeping
// its own fp32 absmax and each scale the 8-bit code of the signed dynamic map nearest to
// (absmax - offset) * (1 / block absmax) (bitsandbytes' dQuantize binary search). The scale
// dequantizes as dynamic_map_signed()[code] * block absmax + offset. As in bitsandbytes, the
// 4-bit codes are computed against the fp32 absmax, before its double quantization; this is the
// one quantizer in lowbit whose codes are not rounded against the scale dequantize() reads.
//
// Where lowbit differs from bitsandbytes, and why:
//   - Blocks run along each row (a ragged last block when `block` does not divide the row);
//     bitsandbytes blocks the flattened tensor, which is the same when the row length is a multiple
//     of the block.
//   - An all-zero block stores absmax 0 and code 7 (the exact 0) everywhere; bitsandbytes' CUDA
//     kernel computes 0 * (1/0) = NaN and ends on code 0 (-1 * 0 = -0). Likewise a double-quant
//     block whose scales all equal the mean stores code 127 (0.0). Both reconstruct the same.
//   - When 1 / absmax overflows (absmax < 2^-128, subnormal inputs) elements are divided by
//     absmax instead, where bitsandbytes would produce infinities and NaNs.
//   - The mean is summed in double and rounded to float once; torch's float32 mean may differ from
//     it in the last bit, depending on the device's summation order.
//   - scale_format f16/bf16 (without double quantization; not a bitsandbytes option) stores the
//     absmax rounded up to the format and computes the codes against the stored value.
//
// Bits per weight, for rows that are multiples of the block: 4 + 32/64 = 4.5 (f32 scales, block
// 64), 4 + 16/64 = 4.25 (f16), and with double quantization 4 + 8/64 + 32/(64*256) = 4.127 (plus
// 32 bits for the mean per matrix).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/format/dynamic_map.hpp"
#include "lowbit/format/nf4.hpp"
#include "lowbit/format/scalar_format.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/linear.hpp"        // detail::require_finite
#include "lowbit/quant/microscaling.hpp"  // detail::quantize_rows, detail::max_abs
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

struct Nf4Options {
  std::size_t block = 64;
  bool double_quant = false;
  std::size_t double_quant_block = 256;
  ScalarFormat scale_format = ScalarFormat::f32;  // f32, f16 or bf16; f32 with double_quant
};

/// The Scheme quantize_nf4 produces for these options; invalid_argument for options that cannot
/// work (block 0, double quantization with a 0 block or non-f32 scales, e8m0/e4m3 scales).
inline Scheme nf4_scheme(const Nf4Options& options) {
  if (options.scale_format == ScalarFormat::e8m0 || options.scale_format == ScalarFormat::e4m3)
    throw invalid_argument("NF4 scales are stored as f32, f16 or bf16");
  if (options.double_quant && options.double_quant_block == 0)
    throw invalid_argument("NF4 double quantization needs a block of at least 1 scale");
  Scheme scheme{ElementFormat::nf4,
                4,
                Granularity::per_group(options.block),
                options.scale_format,
                ZeroFormat::code,
                PackOrder::low_first};
  scheme.double_quant_block = options.double_quant ? options.double_quant_block : 0;
  scheme.validate();
  return scheme;
}

namespace detail {

/// x / absmax as bitsandbytes computes it: times the reciprocal, unless that overflows.
inline float nf4_normalize(float x, float absmax, float inverse) noexcept {
  return std::isinf(inverse) ? x / absmax : x * inverse;
}

}  // namespace detail

/// NF4 quantization of a [rows, cols] matrix (rows = output channels); see the top of this file.
/// Throws invalid_value for NaN/Inf input, invalid_argument for invalid options.
inline QuantizedMatrix quantize_nf4(MatrixView<const float> weights,
                                    const Nf4Options& options = {}) {
  const Scheme scheme = nf4_scheme(options);
  detail::require_finite(weights, "");
  QuantizedMatrix q(scheme, weights.rows, weights.cols);
  const std::size_t block = options.block;
  const bool double_quant = options.double_quant;
  // Without double quantization the scales go straight into q; with it they are kept in fp32
  // here and compressed afterwards.
  std::vector<float> absmax(double_quant ? q.scale_grid().size() : 0);

  detail::quantize_rows(weights, q, [&](std::size_t row, std::span<std::uint8_t> codes) {
    const std::span<const float> values = weights.row(row);
    for (std::size_t start = 0; start < values.size(); start += block) {
      const std::size_t length = std::min(block, values.size() - start);
      const auto part = values.subspan(start, length);
      const std::size_t index = q.scale_index(row, start);
      float scale = detail::max_abs(part);
      if (double_quant)
        absmax[index] = scale;
      else
        scale = q.set_scale(index, detail::storable_scale(options.scale_format, scale));
      if (scale == 0.0f) {
        std::fill_n(codes.begin() + static_cast<std::ptrdiff_t>(start), length, std::uint8_t{7});
        continue;
      }
      const float inverse = 1.0f / scale;
      for (std::size_t i = 0; i < length; ++i)
        codes[start + i] = nf4::encode_nearest(detail::nf4_normalize(part[i], scale, inverse)).code;
    }
  });

  if (double_quant && !absmax.empty()) {
    double sum = 0.0;
    for (float a : absmax) sum += a;
    const float offset = static_cast<float>(sum / static_cast<double>(absmax.size()));
    q.set_scale_offset(offset);
    const std::size_t dq_block = options.double_quant_block;
    const std::span<float> block_absmax = q.scale_block_absmax();
    for (std::size_t b = 0; b < block_absmax.size(); ++b) {
      const std::size_t begin = b * dq_block;
      const std::size_t end = std::min(begin + dq_block, absmax.size());
      float amax = 0.0f;
      for (std::size_t i = begin; i < end; ++i) amax = std::max(amax, std::abs(absmax[i] - offset));
      block_absmax[b] = amax;
      const float inverse = 1.0f / amax;
      for (std::size_t i = begin; i < end; ++i) {
        const std::uint8_t code = amax == 0.0f ? std::uint8_t{127}
                                               : dynamic_map_signed_encode(detail::nf4_normalize(
                                                     absmax[i] - offset, amax, inverse));
        q.set_double_quantized_scale(i, code);
      }
    }
  }
  return q;
}

}  // namespace lowbit
