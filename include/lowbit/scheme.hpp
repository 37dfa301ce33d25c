// Scheme: everything needed to interpret a QuantizedMatrix: element format and width, granularity
// of the scales, whether there is a zero point, the formats scales and zeros are stored in, and the
// packing order of the codes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "lowbit/error.hpp"
#include "lowbit/format/packing.hpp"
#include "lowbit/format/scalar_format.hpp"

namespace lowbit {

/// What one stored code means before scaling.
enum class ElementFormat : std::uint8_t {
  int_signed,    // two's complement integer of `bits` bits; symmetric, no zero point
  int_unsigned,  // unsigned integer of `bits` bits with a zero point: value = (q - zero) * scale
  fp8_e4m3,      // OCP FP8 E4M3
  fp8_e5m2,      // OCP FP8 E5M2
  fp4_e2m1,      // OCP FP4 E2M1
  nf4,           // QLoRA's NormalFloat4 table
};

constexpr const char* to_string(ElementFormat format) noexcept {
  switch (format) {
    case ElementFormat::int_signed:
      return "int";
    case ElementFormat::int_unsigned:
      return "uint";
    case ElementFormat::fp8_e4m3:
      return "e4m3";
    case ElementFormat::fp8_e5m2:
      return "e5m2";
    case ElementFormat::fp4_e2m1:
      return "e2m1";
    case ElementFormat::nf4:
      return "nf4";
  }
  return "?";
}

/// The code width a non-integer element format always has; 0 for the integers (any of 2..8).
constexpr int fixed_element_bits(ElementFormat format) noexcept {
  switch (format) {
    case ElementFormat::fp8_e4m3:
    case ElementFormat::fp8_e5m2:
      return 8;
    case ElementFormat::fp4_e2m1:
    case ElementFormat::nf4:
      return 4;
    default:
      return 0;
  }
}

/// How zero points are stored. Integer zero points (what the linear quantizer makes) are packed as
/// codes of the element's own width, as GPTQ and AWQ checkpoints store them; fractional zero points
/// (HQQ's) need a float format.
enum class ZeroFormat : std::uint8_t { code, f32, f16, bf16 };

constexpr const char* to_string(ZeroFormat format) noexcept {
  switch (format) {
    case ZeroFormat::code:
      return "code";
    case ZeroFormat::f32:
      return "f32";
    case ZeroFormat::f16:
      return "f16";
    case ZeroFormat::bf16:
      return "bf16";
  }
  return "?";
}

/// The float format of a non-code zero format.
constexpr ScalarFormat zero_scalar_format(ZeroFormat format) noexcept {
  switch (format) {
    case ZeroFormat::f32:
      return ScalarFormat::f32;
    case ZeroFormat::bf16:
      return ScalarFormat::bf16;
    default:
      return ScalarFormat::f16;
  }
}

/// Which elements share one scale (and zero point). Groups run along the input dimension (a row
/// of the [out, in] weight matrix); the last group of a row is shorter when group_size does not
/// divide the row.
struct Granularity {
  enum class Kind : std::uint8_t { tensor, channel, group };
  Kind kind = Kind::group;
  std::size_t group_size = 128;  // only for Kind::group

  static constexpr Granularity per_tensor() noexcept { return {Kind::tensor, 0}; }
  static constexpr Granularity per_channel() noexcept { return {Kind::channel, 0}; }
  static constexpr Granularity per_group(std::size_t size) noexcept { return {Kind::group, size}; }

  friend constexpr bool operator==(const Granularity&, const Granularity&) = default;
};

/// The shape of the grid of scales for a [rows, cols] matrix: scale (i, j) serves row i (or all
/// rows when there is one scale row) and group j of that row.
struct ScaleGrid {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::size_t size() const noexcept { return rows * cols; }
};

struct Scheme {
  ElementFormat element = ElementFormat::int_signed;
  int bits = 4;
  Granularity granularity = Granularity::per_group(128);
  ScalarFormat scale_format = ScalarFormat::f16;
  ZeroFormat zero_format = ZeroFormat::code;  // only read when has_zero_point()
  PackOrder pack_order = PackOrder::low_first;

  /// Signed integers, scale = absmax / (2^(bits-1) - 1), no zero point.
  static Scheme symmetric_int(int bits, Granularity granularity,
                              ScalarFormat scale_format = ScalarFormat::f16) {
    Scheme scheme{ElementFormat::int_signed, bits, granularity, scale_format, ZeroFormat::code,
                  PackOrder::low_first};
    scheme.validate();
    return scheme;
  }
  /// Unsigned integers with an integer zero point, over a range that always includes 0.
  static Scheme asymmetric_int(int bits, Granularity granularity,
                               ScalarFormat scale_format = ScalarFormat::f16,
                               ZeroFormat zero_format = ZeroFormat::code) {
    Scheme scheme{ElementFormat::int_unsigned, bits, granularity, scale_format, zero_format,
                  PackOrder::low_first};
    scheme.validate();
    return scheme;
  }

  bool has_zero_point() const noexcept { return element == ElementFormat::int_unsigned; }
  bool is_integer() const noexcept {
    return element == ElementFormat::int_signed || element == ElementFormat::int_unsigned;
  }

  /// Bits one zero point takes.
  int zero_bits() const noexcept {
    return zero_format == ZeroFormat::code ? bits : scalar_bits(zero_scalar_format(zero_format));
  }

  /// Throws invalid_argument, saying what is wrong, for a Scheme that cannot be stored.
  void validate() const {
    auto fail = [this](const std::string& reason) {
      throw invalid_argument("scheme " + to_string() + ": " + reason);
    };
    if (is_integer()) {
      if (bits < 2 || bits > 8) fail("integer elements must have 2 to 8 bits");
    } else if (bits != fixed_element_bits(element)) {
      fail(std::string(lowbit::to_string(element)) + " elements have " +
           std::to_string(fixed_element_bits(element)) + " bits");
    }
    if (granularity.kind == Granularity::Kind::group && granularity.group_size == 0)
      fail("group size must be at least 1");
    if (pack_order == PackOrder::awq_interleaved && bits != 4)
      fail("the AWQ interleaved packing order is defined for 4-bit codes only");
  }

  ScaleGrid scale_grid(std::size_t rows, std::size_t cols) const noexcept {
    switch (granularity.kind) {
      case Granularity::Kind::tensor:
        return {1, 1};
      case Granularity::Kind::channel:
        return {rows, 1};
      case Granularity::Kind::group:
        return {rows, (cols + granularity.group_size - 1) / granularity.group_size};
    }
    return {};
  }

  /// Storage per weight of a [rows, cols] matrix, in bits: codes plus scales plus zero points
  /// (row padding of the packed codes is not counted; it is at most 31 bits a row).
  double bits_per_weight(std::size_t rows, std::size_t cols) const noexcept {
    if (rows == 0 || cols == 0) return 0.0;
    const double weights = static_cast<double>(rows) * static_cast<double>(cols);
    const double groups = static_cast<double>(scale_grid(rows, cols).size());
    double total = weights * bits + groups * scalar_bits(scale_format);
    if (has_zero_point()) total += groups * zero_bits();
    return total / weights;
  }

  /// A short, stable description, e.g. "int4 sym g128 scale=f16" or "uint4 asym channel
  /// scale=f16 zero=code".
  std::string to_string() const {
    std::string text = lowbit::to_string(element);
    if (is_integer()) text += std::to_string(bits);
    text += has_zero_point() ? " asym " : (is_integer() ? " sym " : " ");
    switch (granularity.kind) {
      case Granularity::Kind::tensor:
        text += "tensor";
        break;
      case Granularity::Kind::channel:
        text += "channel";
        break;
      case Granularity::Kind::group:
        text += 'g';
        text += std::to_string(granularity.group_size);
        break;
    }
    text += " scale=";
    text += lowbit::to_string(scale_format);
    if (has_zero_point()) {
      text += " zero=";
      text += lowbit::to_string(zero_format);
    }
    if (pack_order == PackOrder::awq_interleaved) text += " pack=awq";
    return text;
  }

  friend bool operator==(const Scheme&, const Scheme&) = default;
};

}  // namespace lowbit
