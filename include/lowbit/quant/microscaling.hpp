// Microscaling formats: blocks of consecutive elements along a row share a narrow scale.
//
// MXFP4 / MXFP8 (OCP Microscaling Formats (MX) Specification v1.0, section 6.3): blocks of 32
// share an E8M0 scale X = 2^(floor(log2(amax)) - emax_elem), emax_elem being the exponent of the
// element format's largest normal value (E2M1: 2, E4M3: 8, E5M2: 15); each element is the block
// value divided by X, converted to the element format with round-to-nearest-even and saturation
// (values beyond the largest finite value become +-max, as the spec's conversion clamps normals).
//   - The shared exponent is clamped to E8M0's range [-127, 127]; it can only fall below it (for
//     amax < 2^(emax_elem - 127)), and then X = 2^-127.
//   - An all-zero block has no log2(amax): it stores X = 2^-127 (E8M0 code 0) and zero codes, so it
//     reconstructs exactly. This is what Microsoft's microxcaling reference gives (it takes
//     log2 of FP32_MIN_NORMAL for amax = 0, -126 - emax_elem, clamped to -127).
//   - Rounding of the elements is ties-to-even (the OCP conversion, as ml_dtypes does);
//     microxcaling's default "nearest" rounds ties away from zero instead.
//
// NVFP4 (NVIDIA; as torchao's nvfp4_tensor.py `_nvfp4_quantize` with a per-tensor scale, and
// TensorRT-Model-Optimizer's NVFP4QTensor, define it): blocks of 16 E2M1 elements share an FP8
// E4M3 scale, and the matrix has an fp32 tensor scale:
//   tensor_scale = amax(|W|) / (6 * 448)                                  (fp32)
//   block scale  = e4m3(clamp(amax(|block|) / 6 / tensor_scale, 2^-6, 448))  (round to nearest
//   even) element      = e2m1(clamp(x / (block scale * tensor_scale), -6, 6))      (round to
//   nearest even) dequantized  = element * (block scale * tensor_scale)
// The lower clamp at 2^-6 (E4M3's smallest normal, torch.finfo(float8_e4m3fn).tiny) is torchao's;
// ModelOpt instead lets the scale go subnormal and sets the scales of all-zero blocks to 1.0. An
// all-zero matrix (where torchao would divide by zero) stores tensor scale 1, block scales 2^-6 and
// zero codes; a tensor scale that underflows to 0 in fp32 (amax < ~3.8e-42) is replaced by the
// smallest positive float, 2^-149.
//
// Both: the last block of a row is shorter when the block size does not divide the row (torchao and
// ModelOpt require whole blocks); NaN/Inf in the input is lowbit::invalid_value.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/format/detail/minifloat_codec.hpp"
#include "lowbit/format/minifloat.hpp"
#include "lowbit/format/packing.hpp"
#include "lowbit/format/scalar_format.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/linear.hpp"  // detail::require_finite
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

namespace detail {

/// floor(log2(|x|)) for a finite nonzero float (float32 subnormals included).
inline int floor_log2_abs(float x) noexcept {
  return codec::unpack_finite(codec::float_to_bits(x) & codec::f32_abs_mask).floor_log2;
}

/// The exponent of the largest normal value of an MX element format (OCP MX v1.0, table 1).
inline int mx_element_emax(ElementFormat element) {
  switch (element) {
    case ElementFormat::fp4_e2m1:
      return 2;
    case ElementFormat::fp8_e4m3:
      return 8;
    case ElementFormat::fp8_e5m2:
      return 15;
    default:
      throw invalid_argument(std::string("MX quantization needs e2m1, e4m3 or e5m2 elements, not ")
                                 .append(lowbit::to_string(element)));
  }
}

/// The element code nearest to a finite x (ties to even), saturating at +-max finite.
inline std::uint8_t encode_minifloat_element(ElementFormat element, float x) noexcept {
  switch (element) {
    case ElementFormat::fp4_e2m1:
      return float4_e2m1::encode(x).code;
    case ElementFormat::fp8_e4m3:
      return float8_e4m3::encode(x).code;
    case ElementFormat::fp8_e5m2:
      return float8_e5m2::encode(x).code;
    default:
      return 0;
  }
}

/// The E8M0 code of an MX block's shared scale: 2^(floor(log2(amax)) - emax) clamped to E8M0's
/// range; code 0 (2^-127) for an all-zero block.
inline std::uint8_t mx_scale_code(float amax, int emax) noexcept {
  if (amax == 0.0f) return 0;
  const int biased = floor_log2_abs(amax) - emax + float8_e8m0::bias;
  return static_cast<std::uint8_t>(std::clamp(biased, 0, 254));
}

inline float max_abs(std::span<const float> values) noexcept {
  float amax = 0.0f;
  for (float x : values) amax = std::max(amax, std::abs(x));
  return amax;
}

/// Runs `quantize_row(row, codes)` over the rows (in parallel for large matrices), then packs each
/// row's codes into q. An exception quantize_row throws on a thread is rethrown after the loop.
void quantize_rows(MatrixView<const float> w, QuantizedMatrix& q,
                   const std::function<void(std::size_t, std::span<std::uint8_t>)>& quantize_row);

}  // namespace detail

/// The Scheme of an MX format: 32-element blocks with E8M0 scales.
inline Scheme mx_scheme(ElementFormat element) {
  Scheme scheme{
      element,          fixed_element_bits(element), Granularity::per_group(32), ScalarFormat::e8m0,
      ZeroFormat::code, PackOrder::low_first};
  scheme.validate();
  return scheme;
}

/// The Scheme of NVFP4: E2M1 elements, 16-element blocks with E4M3 scales, an fp32 tensor scale.
inline Scheme nvfp4_scheme() {
  Scheme scheme{ElementFormat::fp4_e2m1,    4,
                Granularity::per_group(16), ScalarFormat::e4m3,
                ZeroFormat::code,           PackOrder::low_first};
  scheme.tensor_scale = true;
  scheme.validate();
  return scheme;
}

/// OCP MX quantization of a [rows, cols] matrix (rows = output channels) with e2m1, e4m3 or e5m2
/// elements; see the top of this file. Throws invalid_value for NaN/Inf, invalid_argument for
/// another element format.
inline QuantizedMatrix quantize_mx(MatrixView<const float> weights, ElementFormat element) {
  const int emax = detail::mx_element_emax(element);
  detail::require_finite(weights, "");
  QuantizedMatrix q(mx_scheme(element), weights.rows, weights.cols);
  constexpr std::size_t block = 32;
  detail::quantize_rows(weights, q, [&](std::size_t row, std::span<std::uint8_t> codes) {
    const std::span<const float> values = weights.row(row);
    for (std::size_t start = 0; start < values.size(); start += block) {
      const std::size_t length = std::min(block, values.size() - start);
      const auto part = values.subspan(start, length);
      const std::uint8_t scale_code = detail::mx_scale_code(detail::max_abs(part), emax);
      q.scale_bytes()[q.scale_index(row, start)] = scale_code;
      // 1 / X is a power of two that float holds exactly, so multiplying by it gives the same
      // correctly rounded result as dividing by X.
      const float inverse = std::ldexp(1.0f, float8_e8m0::bias - static_cast<int>(scale_code));
      for (std::size_t i = 0; i < length; ++i)
        codes[start + i] = detail::encode_minifloat_element(element, part[i] * inverse);
    }
  });
  return q;
}

/// MXFP4: E2M1 elements in blocks of 32 with E8M0 scales (4.25 bits per weight).
inline QuantizedMatrix quantize_mxfp4(MatrixView<const float> weights) {
  return quantize_mx(weights, ElementFormat::fp4_e2m1);
}

/// MXFP8: E4M3 (default) or E5M2 elements in blocks of 32 with E8M0 scales (8.25 bits per weight).
inline QuantizedMatrix quantize_mxfp8(MatrixView<const float> weights,
                                      ElementFormat element = ElementFormat::fp8_e4m3) {
  if (element != ElementFormat::fp8_e4m3 && element != ElementFormat::fp8_e5m2)
    throw invalid_argument(
        std::string("MXFP8 elements are e4m3 or e5m2, not ").append(lowbit::to_string(element)));
  return quantize_mx(weights, element);
}

namespace detail {

/// NVFP4's tensor scale for a matrix whose largest magnitude is `amax`.
inline float nvfp4_tensor_scale(float amax) noexcept {
  if (amax == 0.0f) return 1.0f;
  const float scale = amax / (6.0f * 448.0f);
  return scale > 0.0f ? scale : 0x1p-149f;
}

/// NVFP4's E4M3 block scale code for a block whose largest magnitude is `amax`.
inline std::uint8_t nvfp4_block_scale_code(float amax, float tensor_scale) noexcept {
  const float scaled = std::clamp(amax / 6.0f / tensor_scale, 0x1p-6f, 448.0f);
  return float8_e4m3::encode(scaled).code;
}

}  // namespace detail

/// NVFP4 quantization of a [rows, cols] matrix; see the top of this file (4.5 bits per weight plus
/// 32 bits for the tensor scale). Throws invalid_value for NaN/Inf.
inline QuantizedMatrix quantize_nvfp4(MatrixView<const float> weights) {
  detail::require_finite(weights, "");
  QuantizedMatrix q(nvfp4_scheme(), weights.rows, weights.cols);
  float amax = 0.0f;
  for (std::size_t r = 0; r < weights.rows; ++r)
    amax = std::max(amax, detail::max_abs(weights.row(r)));
  const float tensor_scale = detail::nvfp4_tensor_scale(amax);
  q.set_tensor_scale(tensor_scale);
  constexpr std::size_t block = 16;
  detail::quantize_rows(weights, q, [&](std::size_t row, std::span<std::uint8_t> codes) {
    const std::span<const float> values = weights.row(row);
    for (std::size_t start = 0; start < values.size(); start += block) {
      const std::size_t length = std::min(block, values.size() - start);
      const auto part = values.subspan(start, length);
      const std::uint8_t scale_code =
          detail::nvfp4_block_scale_code(detail::max_abs(part), tensor_scale);
      q.scale_bytes()[q.scale_index(row, start)] = scale_code;
      // The product dequantize() multiplies by (block scale first, as QuantizedMatrix does).
      const float total = float8_e4m3::from_bits(scale_code).to_float() * tensor_scale;
      // total is 0 only when the tensor scale is near float's smallest value and the product
      // underflows; the block then dequantizes to 0 whatever its codes.
      for (std::size_t i = 0; i < length; ++i)
        codes[start + i] = total > 0.0f
                               ? float4_e2m1::encode(std::clamp(part[i] / total, -6.0f, 6.0f)).code
                               : std::uint8_t{0};
    }
  });
  return q;
}

}  // namespace lowbit
