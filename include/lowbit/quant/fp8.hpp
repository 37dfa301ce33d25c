// FP8 weights with float scales: per tensor, per channel, per group along the rows, or in 2-D
// blocks (DeepSeek-V3's 128 x 128 tiles), as FP8 checkpoints store them (DeepSeek-V3's
// `weight_scale_inv`, vLLM / llm-compressor's per-tensor and per-channel FP8).
//
// For the weights that share a scale:
//   scale = amax(|weights|) / max_finite(element)   (E4M3: 448, E5M2: 57344), rounded up to the
//                                                    scale format (so that, up to the rounding of
//                                                    the division, it covers amax)
//   code  = element(x / scale)                       round to nearest even, saturating at +-max
//   value = element value(code) * scale
// An all-zero set stores scale 1 and zero codes. The division uses the stored scale, so the codes
// are those of the matrix that dequantization multiplies out. NaN/Inf input is
// lowbit::invalid_value. (MX's power-of-two E8M0 scales are quantize_mxfp8, in microscaling.hpp.)
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
#include "lowbit/format/minifloat.hpp"
#include "lowbit/format/scalar_format.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/linear.hpp"        // detail::require_finite
#include "lowbit/quant/microscaling.hpp"  // detail::quantize_rows, encode_minifloat_element
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

struct Fp8Options {
  ElementFormat element = ElementFormat::fp8_e4m3;  // or fp8_e5m2
  /// Per tensor, per channel, per group, or Granularity::per_block(128, 128).
  Granularity granularity = Granularity::per_channel();
  ScalarFormat scale_format = ScalarFormat::f32;  // f32, f16 or bf16
  std::string tensor_name = {};                   // for error messages
};

/// The Scheme quantize_fp8 makes. Throws invalid_argument for a non-FP8 element, E8M0/E4M3
/// scales (those are MX and NVFP4) or no scales.
inline Scheme fp8_scheme(const Fp8Options& options = {}) {
  if (options.element != ElementFormat::fp8_e4m3 && options.element != ElementFormat::fp8_e5m2)
    throw invalid_argument(std::string("quantize_fp8: elements are e4m3 or e5m2, not ")
                               .append(to_string(options.element)));
  if (options.scale_format == ScalarFormat::e8m0 || options.scale_format == ScalarFormat::e4m3)
    throw invalid_argument(
        "quantize_fp8: scales are f32, f16 or bf16 (E8M0 scales are MXFP8: quantize_mxfp8)");
  if (options.granularity.kind == Granularity::Kind::none)
    throw invalid_argument("quantize_fp8: FP8 weights need scales");
  Scheme scheme;
  scheme.element = options.element;
  scheme.bits = 8;
  scheme.granularity = options.granularity;
  scheme.scale_format = options.scale_format;
  scheme.validate();
  return scheme;
}

/// Quantizes a [rows, cols] float matrix (rows = output channels) to FP8 with float scales; see
/// the top of this file.
inline QuantizedMatrix quantize_fp8(MatrixView<const float> weights,
                                    const Fp8Options& options = {}) {
  const Scheme scheme = fp8_scheme(options);
  detail::require_finite(weights, options.tensor_name);
  QuantizedMatrix q(scheme, weights.rows, weights.cols);
  const float element_max = scheme.element == ElementFormat::fp8_e4m3 ? float8_e4m3::max_finite()
                                                                      : float8_e5m2::max_finite();
  const std::size_t span = scheme.granularity.row_span(weights.cols);

  // amax of each set of weights sharing a scale; serial, as a 2-D block spans rows.
  std::vector<float> amax(q.scale_grid().size(), 0.0f);
  for (std::size_t r = 0; r < weights.rows; ++r)
    for (std::size_t start = 0; start < weights.cols; start += span) {
      const std::size_t length = std::min(span, weights.cols - start);
      float& m = amax[q.scale_index(r, start)];
      m = std::max(m, detail::max_abs(weights.row(r).subspan(start, length)));
    }
  // (At least the smallest positive float: amax / 448 underflows for float32 subnormals.)
  // (A scale beyond its format, f16 for weights above about 2.9e7, is an error naming the tensor.)
  detail::in_tensor(options.tensor_name, weights, [&] {
    for (std::size_t i = 0; i < amax.size(); ++i)
      q.set_scale(i, amax[i] > 0.0f ? detail::storable_scale(
                                          scheme.scale_format,
                                          std::max(amax[i] / element_max,
                                                   std::numeric_limits<float>::denorm_min()))
                                    : 1.0f);
    return 0;
  });

  detail::quantize_rows(weights, q, [&](std::size_t r, std::span<std::uint8_t> codes) {
    const std::span<const float> row = weights.row(r);
    for (std::size_t start = 0; start < row.size(); start += span) {
      const float scale = q.scale(q.scale_index(r, start));
      const std::size_t end = std::min(row.size(), start + span);
      for (std::size_t c = start; c < end; ++c)
        codes[c] = detail::encode_minifloat_element(scheme.element, row[c] / scale);
    }
  });
  return q;
}

}  // namespace lowbit
