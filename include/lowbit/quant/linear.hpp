// Linear (uniform) integer quantization: symmetric or with a zero point, per tensor, per output
// channel or per group of input elements, with an optional MSE-optimal clip search.
//
//   symmetric:   q = clamp(round(x / s), -2^(b-1), 2^(b-1) - 1),  s = absmax / (2^(b-1) - 1)
//   asymmetric:  q = clamp(round(x / s) + z, 0, 2^b - 1),         s = (hi - lo) / (2^b - 1),
//                z = round(-lo / s), over [lo, hi] = [min(x, 0), max(x, 0)]
//   dequantized: (q - z) * s
//
// Rounding is to nearest, ties to even (as torch.round in GPTQ/AWQ). The asymmetric range always
// includes 0 (as GPTQ's quantizer does), so 0 is exact and the integer zero point is itself a code,
// which is how GPTQ and AWQ checkpoints store it. Scales are rounded *up* to their storage format
// so the stored scale still covers the range: no element is off by more than half a step unless
// the clip search chose to clip it. A constant group stores its value as the scale and so
// reconstructs exactly (when the scale format holds that value).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/format/intn.hpp"
#include "lowbit/format/packing.hpp"
#include "lowbit/format/scalar_format.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/clipping.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

/// One group's parameters, already rounded to the Scheme's storage formats:
/// dequantized value = (q - zero) * scale.
struct LinearParams {
  float scale = 0.0f;
  float zero = 0.0f;
};

/// The smallest and largest element of a group.
struct ValueRange {
  float lo = std::numeric_limits<float>::infinity();
  float hi = -std::numeric_limits<float>::infinity();

  void add(float x) noexcept {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  void merge(const ValueRange& other) noexcept {
    lo = std::min(lo, other.lo);
    hi = std::max(hi, other.hi);
  }
  static ValueRange of(std::span<const float> values) noexcept {
    ValueRange range;
    for (float x : values) range.add(x);
    return range;
  }
};

namespace detail {

/// Round to nearest, ties to even, for |x| < 2^22: adding and removing 1.5 * 2^23 leaves the
/// float unit to do the rounding, which compilers vectorize (std::nearbyint is a libm call on
/// baseline x86-64). Do not build lowbit with -ffast-math, which would fold it away.
inline float round_half_even(float x) noexcept {
  constexpr float magic = 12582912.0f;  // 1.5 * 2^23
  return (x + magic) - magic;
}

/// A scale as its format stores it, rounded up; a zero scale (an all-zero group) is stored as
/// the format's smallest positive value where the format has no zero: the codes are all zero
/// points then, so the value does not matter. Throws invalid_value when the format's largest
/// finite value is below `scale` (f16 scales for weights beyond about 65504 times the largest
/// level): a saturated scale would clip the whole group, silently.
inline float storable_scale(ScalarFormat format, float scale) {
  if (scale == 0.0f && format == ScalarFormat::e8m0) return round_scalar_up(format, 0x1p-127f);
  const float stored = round_scalar_up(format, scale);
  if (!(stored >= scale)) {
    char text[128];
    std::snprintf(text, sizeof text, "a scale of %g is beyond the largest %s value (%g)",
                  static_cast<double>(scale), to_string(format), static_cast<double>(stored));
    throw invalid_value(std::string(text) + ": weights this large need f32 or bf16 scales");
  }
  return stored;
}

/// Runs fn() and returns what it returns; an invalid_value it throws without a tensor name or
/// shape is rethrown with `tensor_name` and the shape of `w`, so that an error raised deep in a
/// quantizer (a scale out of its format's range) names the tensor.
template <class Fn>
auto in_tensor(const std::string& tensor_name, MatrixView<const float> w, Fn&& fn)
    -> decltype(fn()) {
  try {
    return fn();
  } catch (const invalid_value& e) {
    if (!e.context().tensor.empty() || !e.context().shape.empty()) throw;
    throw invalid_value(e.reason(), ErrorContext{e.context().file, tensor_name, {w.rows, w.cols}});
  }
}

}  // namespace detail

/// The integer grid of a Scheme and the arithmetic on it.
class LinearGrid {
 public:
  explicit LinearGrid(const Scheme& scheme) : scheme_(scheme) {
    scheme_.validate();
    if (!scheme_.is_integer())
      throw unsupported("linear quantization needs integer elements, not " + scheme_.to_string());
    symmetric_ = !scheme_.has_zero_point();
    min_level_ = int_min(scheme_.bits, symmetric_);
    max_level_ = int_max(scheme_.bits, symmetric_);
  }

  const Scheme& scheme() const noexcept { return scheme_; }
  bool symmetric() const noexcept { return symmetric_; }
  int min_level() const noexcept { return min_level_; }
  int max_level() const noexcept { return max_level_; }

  /// Parameters for a group whose elements span `range`, with that range shrunk by `shrink`
  /// (1 = no clipping).
  LinearParams params(ValueRange range, float shrink = 1.0f) const {
    LinearParams p;
    if (range.lo == range.hi && shrink == 1.0f) {
      // Constant (or all-zero) group: the value itself is the scale, the level is +-1 (or 0).
      const float c = range.lo;
      p.scale = detail::storable_scale(scheme_.scale_format, std::abs(c));
      p.zero = (!symmetric_ && c < 0.0f) ? 1.0f : 0.0f;
      return p;
    }
    if (symmetric_) {
      const float absmax = std::max(std::abs(range.lo), std::abs(range.hi)) * shrink;
      p.scale =
          detail::storable_scale(scheme_.scale_format, absmax / static_cast<float>(max_level_));
      return p;
    }
    const float lo = std::min(range.lo, 0.0f) * shrink;
    const float hi = std::max(range.hi, 0.0f) * shrink;
    // hi - lo can overflow float near FLT_MAX; the scale itself cannot.
    const double width = static_cast<double>(hi) - static_cast<double>(lo);
    p.scale = detail::storable_scale(scheme_.scale_format, static_cast<float>(width / max_level_));
    // An integer code, so exact in every zero format.
    if (p.scale > 0.0f)
      p.zero =
          detail::round_half_even(std::clamp(-lo / p.scale, 0.0f, static_cast<float>(max_level_)));
    // The rounded zero point shifts the levels by up to half a step: for weights within a step of
    // float's largest value the lowest or highest level can lie beyond it (it would dequantize to
    // Inf).
    const double largest = std::numeric_limits<float>::max();
    if (static_cast<double>(p.zero) * p.scale > largest ||
        (max_level_ - static_cast<double>(p.zero)) * p.scale > largest)
      throw invalid_value(
          "weights this close to float's largest value put an asymmetric grid's end level beyond "
          "float's range: quantize them symmetrically");
    return p;
  }

  /// The level (a signed integer when symmetric, else an unsigned code) nearest to x.
  int quantize(float x, const LinearParams& p) const noexcept {
    if (!(p.scale > 0.0f)) return static_cast<int>(p.zero);
    return static_cast<int>(nearest_level(x, p));
  }
  /// The codes of `values`: code(quantize(x)) over a span, in a loop compilers vectorize.
  void quantize_codes(std::span<const float> values, const LinearParams& p,
                      std::span<std::uint8_t> codes) const noexcept {
    if (!(p.scale > 0.0f)) {
      std::fill(codes.begin(), codes.end(), code(static_cast<int>(p.zero)));
      return;
    }
    const auto mask = static_cast<std::int32_t>((1u << scheme_.bits) - 1u);
    for (std::size_t i = 0; i < values.size(); ++i)
      codes[i] =
          static_cast<std::uint8_t>(static_cast<std::int32_t>(nearest_level(values[i], p)) & mask);
  }
  float dequantize(int level, const LinearParams& p) const noexcept {
    return (static_cast<float>(level) - p.zero) * p.scale;
  }
  std::uint8_t code(int level) const noexcept { return to_code(level, scheme_.bits); }

  /// Sum of clip.penalty(x - dequantize(quantize(x))) over `values`.
  double error(std::span<const float> values, const LinearParams& p, const ClipSearch& clip) const {
    double total = 0.0;
    for (float x : values) total += clip.penalty(x - dequantize(quantize(x, p), p));
    return total;
  }

  /// Parameters for one group, with the clip search when `clip` is enabled.
  LinearParams choose_params(std::span<const float> values, const ClipSearch& clip) const {
    const ValueRange range = ValueRange::of(values);
    if (!clip.enabled || range.lo == range.hi) return params(range);
    const float shrink =
        clip.best_factor([&](float f) { return error(values, params(range, f), clip); });
    return params(range, shrink);
  }

 private:
  // round(clamp(x / s + z)): clamping first keeps the rounding trick in its range and equals
  // clamping after, the bounds being integers. Needs p.scale > 0.
  float nearest_level(float x, const LinearParams& p) const noexcept {
    const float level = std::min(std::max(x / p.scale + p.zero, static_cast<float>(min_level_)),
                                 static_cast<float>(max_level_));
    return detail::round_half_even(level);
  }

  Scheme scheme_;
  bool symmetric_ = true;
  int min_level_ = 0;
  int max_level_ = 0;
};

struct LinearQuantizeOptions {
  ClipSearch clip = ClipSearch::none();
  std::string tensor_name;  // named in error messages
};

namespace detail {

/// Throws invalid_value naming the first NaN or Inf in row-major order.
void require_finite(MatrixView<const float> w, const std::string& tensor_name);

/// Quantizes one row with the given parameters per group and packs it into `q`.
template <class ParamsOf>
void quantize_row(const LinearGrid& grid, std::span<const float> row, std::size_t row_index,
                  QuantizedMatrix& q, std::vector<std::uint8_t>& codes, ParamsOf&& params_of) {
  const Scheme& scheme = grid.scheme();
  const std::size_t cols = row.size();
  const std::size_t group = scheme.granularity.row_span(cols);
  for (std::size_t start = 0; start < cols; start += group) {
    const std::size_t length = std::min(group, cols - start);
    const LinearParams p = params_of(row.subspan(start, length), q.scale_index(row_index, start));
    grid.quantize_codes(row.subspan(start, length), p, std::span(codes).subspan(start, length));
  }
  pack_words(codes, scheme.bits, q.row_words(row_index), scheme.pack_order);
}

}  // namespace detail

/// Quantizes a [rows, cols] float matrix (rows = output channels) with an integer Scheme.
/// Throws invalid_value for NaN/Inf input (naming the position), unsupported for a non-integer
/// Scheme, invalid_argument for an invalid one.
QuantizedMatrix quantize_linear(MatrixView<const float> weights, const Scheme& scheme,
                                const LinearQuantizeOptions& options = {});

}  // namespace lowbit
