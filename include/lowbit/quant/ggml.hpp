// Quantizers for llama.cpp's ggml block types Q4_0, Q8_0 and Q4_K, and its conversions to F16
// and BF16 (the layouts, of these and of the types lowbit only reads, are in
// format/ggml_blocks.hpp). They compute what ggml's reference
// quantizers quantize_row_q4_0_ref, quantize_row_q8_0_ref and quantize_row_q4_K_ref
// (ggml/src/ggml-quants.c) compute, byte for byte:
//
//   Q4_0  max = the first weight of largest |x| (with its sign), d = max / -8, id = 1/d (0 when
//         d = 0), q = min(15, trunc(x * id + 8.5)); d stored as fp16 (nearest, ties to even).
//   Q8_0  d = max|x| / 127, id = 1/d (0 when d = 0), q = round(x * id) (halves away from zero).
//   Q4_K  each sub-block of 32: weights av + |x| (av = sqrt(mean x^2)), then ggml's
//         make_qkx2_quants (nmax 15, rmin -1, rdelta 0.1, 20 steps, squared error): the scale and
//         min of 21 candidate grids fit by weighted least squares, the best one kept. The 8 scales
//         and mins become 6-bit codes against the largest of each (d = max scale / 63, dmin =
//         max min / 63, fp16), and every weight is requantized against its rounded sub-block
//         scale and min: q = clamp(nearest((x + dmin * m) / (d * sc)), 0, 15). A sub-block whose
//         rounded scale is 0 keeps the codes make_qkx2_quants gave it, as ggml does.
//   F16   nearest, ties to even (ggml's GGML_FP32_TO_FP16).
//   BF16  ggml_compute_fp32_to_bf16: the float's bits plus 0x7FFF plus the lowest kept bit, the
//         top 16 bits of that (nearest, ties to even; subnormals kept).
//
// Every operation is float32 with one rounding, in ggml's order; nothing is contracted into a fused
// multiply-add (lowbit is built as ISO C++). That is what ggml computes where its compiler does not
// contract either (ISO C, or a target without FMA such as baseline x86-64). A build that contracts
// x * id + 8.5f or iscale * (x - min) + 12582912.f into an FMA rounds some codes differently
// (measured against ggml's C built both ways: 2 of 24,000 tie-heavy Q4_0 blocks, 7% of Q4_K
// super-blocks). gguf-py 0.19.0, the reference of tests/python/check_ggml.py, agrees with lowbit on
// Q4_0 and Q8_0 bit for bit (its development version emulates the FMA for Q4_0); it has no Q4_K
// quantizer.
//
// Where ggml's behaviour is undefined or unhelpful, lowbit decides:
//   - NaN or Inf in the input is lowbit::invalid_value naming its row and column.
//   - A block whose fp16 scale would overflow is invalid_value too (Q4_0: |x| above about 5.2e5;
//     Q8_0: above 8.3e6; Q4_K: a sub-block scale or min above 4.1e6); ggml would store Inf.
//   - When 1/d overflows float (|max| below about 2^-125 for Q4_0, 2^-121 for Q8_0), x * id is
//     +-Inf or NaN and ggml's conversion to int8 is undefined; lowbit stores code 0, as ggml does
//     on x86-64 (the conversion gives 0x80000000, whose low byte is 0) and as gguf-py does. The
//     fp16 scale of such a block is +-0, so it dequantizes to zeros either way.
//   - An all-zero Q4_0 block stores d = -0 (bits 0x8000) and nibbles 8, as ggml (which starts from
//     max = +0); gguf-py starts from the block's first element and stores +0 when that is -0.0.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/format/ggml_blocks.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/linear.hpp"  // detail::require_finite
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {
namespace ggml {

namespace detail {

/// ggml's nearest_int: round to nearest, ties to even, by adding 1.5 * 2^23 and reading the low
/// mantissa bits. Exact for |x| <= 2^22 - 1; beyond, the same bits as ggml's.
inline int nearest_int(float x) noexcept {
  const auto bits = std::bit_cast<std::int32_t>(x + 12582912.0f);
  return (bits & 0x007fffff) - 0x00400000;
}

/// fp16 bits of x, nearest with ties to even; Inf when x overflows (as ggml's conversion).
inline std::uint16_t to_fp16(float x) noexcept {
  return float16::encode(x, Overflow::to_nonfinite).code;
}
inline bool fp16_is_finite(std::uint16_t bits) noexcept { return (bits & 0x7C00u) != 0x7C00u; }

/// C's conversion of a float to int8_t as x86-64 performs it: truncation to int32 (0x80000000
/// for NaN, Inf and values out of range), then the low byte.
inline std::int8_t to_int8_x86(float x) noexcept {
  const bool in_range = std::abs(x) < 2147483648.0f;  // false for NaN
  const std::int32_t wide =
      in_range ? static_cast<std::int32_t>(x) : std::numeric_limits<std::int32_t>::min();
  return static_cast<std::int8_t>(wide);
}

/// make_qkx2_quants for 32 weights with nmax 15, rmin -1, rdelta 0.1, 20 steps and squared error:
/// codes into L, the (positive) min into *min_out; returns the scale.
inline float make_qkx2_quants_q4k(const float* x, const float* weights, std::uint8_t* L,
                                  float* min_out) noexcept {
  constexpr int n = 32, nmax = 15, nstep = 20;
  constexpr float rmin = -1.0f, rdelta = 0.1f;
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *min_out = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<std::uint8_t>(std::max(0, std::min(nmax, l)));
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = diff * diff;
    best_error += weights[i] * diff;
  }
  std::uint8_t Laux[n];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
      Laux[i] = static_cast<std::uint8_t>(l);
      const float w = weights[i], fl = static_cast<float>(l);
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
        diff = diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *min_out = -min;
  return scale;
}

}  // namespace detail

// Block quantizers: x holds the block's 32 (Q4_0, Q8_0) or 256 (Q4_K) weights, all finite. They
// return false when a scale overflowed fp16 (it is then stored as Inf, as ggml would).

/// quantize_row_q4_0_ref for one block.
inline bool quantize_block(const float* x, block_q4_0& out) noexcept {
  float amax = 0.0f, max = 0.0f;
  for (std::size_t j = 0; j < qk4_0; ++j) {
    if (amax < std::abs(x[j])) {
      amax = std::abs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  out.d = detail::to_fp16(d);
  const auto code = [id](float v) {
    return static_cast<std::uint8_t>(std::min<int>(15, detail::to_int8_x86(v * id + 8.5f)));
  };
  for (std::size_t j = 0; j < qk4_0 / 2; ++j)
    out.qs[j] = static_cast<std::uint8_t>(code(x[j]) | (code(x[j + qk4_0 / 2]) << 4));
  return detail::fp16_is_finite(out.d);
}

/// quantize_row_q8_0_ref for one block.
inline bool quantize_block(const float* x, block_q8_0& out) noexcept {
  float amax = 0.0f;
  for (std::size_t j = 0; j < qk8_0; ++j) amax = std::max(amax, std::abs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  out.d = detail::to_fp16(d);
  for (std::size_t j = 0; j < qk8_0; ++j) out.qs[j] = detail::to_int8_x86(std::round(x[j] * id));
  return detail::fp16_is_finite(out.d);
}

/// One weight to F16 or BF16 (false when it overflows to Inf, as ggml would store it).
inline bool quantize_block(const float* x, block_f16& out) noexcept {
  out.bits = detail::to_fp16(x[0]);
  return detail::fp16_is_finite(out.bits);
}
inline bool quantize_block(const float* x, block_bf16& out) noexcept {
  const auto u = std::bit_cast<std::uint32_t>(x[0]);  // finite: no NaN to quieten
  out.bits = static_cast<std::uint16_t>((u + (0x7FFFu + ((u >> 16) & 1u))) >> 16);
  return (out.bits & 0x7F80u) != 0x7F80u;
}

/// quantize_row_q4_K_ref for one super-block.
inline bool quantize_block(const float* x, block_q4_k& out) noexcept {
  std::uint8_t L[qk_k];
  float weights[32], mins[8], scales[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::abs(xs[l]);
    scales[j] = detail::make_qkx2_quants_q4k(xs, weights, L + 32 * j, &mins[j]);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  for (int j = 0; j < 8; ++j) {
    // ggml converts to uint8_t before the min: a negative result wraps, then saturates to 63.
    const auto ls = std::min<std::uint8_t>(
        63, static_cast<std::uint8_t>(detail::nearest_int(inv_scale * scales[j])));
    const auto lm = std::min<std::uint8_t>(
        63, static_cast<std::uint8_t>(detail::nearest_int(inv_min * mins[j])));
    if (j < 4) {
      out.scales[j] = ls;
      out.scales[j + 4] = lm;
    } else {
      out.scales[j + 4] = static_cast<std::uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      out.scales[j - 4] = static_cast<std::uint8_t>(out.scales[j - 4] | ((ls >> 4) << 6));
      out.scales[j] = static_cast<std::uint8_t>(out.scales[j] | ((lm >> 4) << 6));
    }
  }
  out.d = detail::to_fp16(max_scale / 63.0f);
  out.dmin = detail::to_fp16(max_min / 63.0f);
  for (int j = 0; j < 8; ++j) {
    const ScaleMin sm = scale_min_k4(j, out.scales);
    const float d = fp16_to_float(out.d) * static_cast<float>(sm.scale);
    if (d == 0.0f) continue;
    const float dm = fp16_to_float(out.dmin) * static_cast<float>(sm.min);
    for (int i = 0; i < 32; ++i) {
      const int l = detail::nearest_int((x[32 * j + i] + dm) / d);
      L[32 * j + i] = static_cast<std::uint8_t>(std::max(0, std::min(15, l)));
    }
  }
  for (std::size_t j = 0; j < qk_k; j += 64)
    for (std::size_t l = 0; l < 32; ++l)
      out.qs[j / 2 + l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  return detail::fp16_is_finite(out.d) && detail::fp16_is_finite(out.dmin);
}

}  // namespace ggml

/// The Scheme of a ggml block type.
inline Scheme ggml_scheme(GgmlType type) noexcept { return Scheme::ggml_blocks(type); }

/// Whether quantize_ggml writes blocks of `type`: Q4_0, Q8_0, Q4_K, F16 and BF16. The other types
/// of ggml_type_table are read and dequantized, not written (yet).
constexpr bool has_ggml_quantizer(GgmlType type) noexcept {
  return type == GgmlType::q4_0 || type == GgmlType::q8_0 || type == GgmlType::q4_k ||
         type == GgmlType::f16 || type == GgmlType::bf16;
}

/// Quantizes a [rows, cols] matrix (rows = output channels) into ggml blocks of `type`, as ggml's
/// reference quantizer does; see the top of this file. cols must be a multiple of 32 (Q4_0, Q8_0)
/// or 256 (Q4_K), else invalid_argument (any cols for F16, BF16); NaN/Inf weights, and scales or
/// values that overflow the 16-bit format, are invalid_value; a type without a quantizer
/// (has_ggml_quantizer) is unsupported.
QuantizedMatrix quantize_ggml(MatrixView<const float> weights, GgmlType type);

/// Rounds a row of activations, in place, to what llama.cpp multiplies a weight of `weight_type`
/// with: ggml quantizes the activations to the weight type's vec_dot type and multiplies integer
/// codes. Q4_0, Q5_0, Q8_0, IQ4_NL: Q8_0 blocks of 32 (d = amax / 127 stored as fp16, codes
/// round(x * 127 / amax), ties to even, as ggml's x86 quantize_row_q8_0); Q4_1, Q5_1: Q8_1, the
/// same codes and scale; K-quants and IQ4_XS: Q8_K blocks of 256 (quantize_row_q8_K_ref: float d,
/// codes nearest_int(-127 / max * x) at most 127); F16, BF16: the activations in that format.
/// Each value becomes code * d: multiplied by float weights, that is ggml's dot product up to the
/// order of the float sums. The row's length must be a whole number of blocks (as the weight's).
void round_activations_as_ggml(GgmlType weight_type, std::span<float> row);

}  // namespace lowbit
