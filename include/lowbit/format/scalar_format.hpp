// The formats that scales and zero points are stored in, chosen at run time (a Scheme names one).
// Values are stored as little-endian bytes of the format's width.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "lowbit/detail/enum_table.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/format/minifloat.hpp"

namespace lowbit {

enum class ScalarFormat : std::uint8_t {
  f32,   // IEEE binary32
  f16,   // IEEE binary16
  bf16,  // bfloat16
  e8m0,  // OCP MX power-of-two scale (positive only)
  e4m3,  // OCP FP8 E4M3, as NVFP4 block scales use it
};

struct ScalarFormatTraits {
  ScalarFormat value;
  const char* name;  // as in Scheme descriptions and files
  int bits;
};

inline constexpr ScalarFormatTraits scalar_format_table[] = {
    {ScalarFormat::f32, "f32", 32},   {ScalarFormat::f16, "f16", 16},
    {ScalarFormat::bf16, "bf16", 16}, {ScalarFormat::e8m0, "e8m0", 8},
    {ScalarFormat::e4m3, "e4m3", 8},
};

constexpr int scalar_bits(ScalarFormat format) noexcept {
  return detail::field_of(scalar_format_table, format, &ScalarFormatTraits::bits, 0);
}

constexpr std::size_t scalar_bytes(ScalarFormat format) noexcept {
  return static_cast<std::size_t>(scalar_bits(format) / 8);
}

constexpr const char* to_string(ScalarFormat format) noexcept {
  return detail::name_of(scalar_format_table, format);
}

/// The format named `name` ("f16", ...), or nullopt.
constexpr std::optional<ScalarFormat> parse_scalar_format(std::string_view name) noexcept {
  return detail::value_named(scalar_format_table, name);
}

namespace detail {

/// The code of a scalar format, widened to 32 bits.
inline std::uint32_t encode_scalar_code(ScalarFormat format, float value) {
  auto checked = [&](auto result) -> std::uint32_t {
    if (!result.ok)
      throw invalid_value("cannot store " + std::to_string(value) + " as " + to_string(format));
    return result.code;
  };
  switch (format) {
    case ScalarFormat::f32:
      return std::bit_cast<std::uint32_t>(value);
    case ScalarFormat::f16:
      return checked(float16::encode(value));
    case ScalarFormat::bf16:
      return checked(bfloat16::encode(value));
    case ScalarFormat::e8m0:
      return checked(float8_e8m0::encode(value));
    case ScalarFormat::e4m3:
      return checked(float8_e4m3::encode(value));
  }
  return 0;
}

inline float decode_scalar_code(ScalarFormat format, std::uint32_t code) noexcept {
  switch (format) {
    case ScalarFormat::f32:
      return std::bit_cast<float>(code);
    case ScalarFormat::f16:
      return float16::from_bits(static_cast<std::uint16_t>(code)).to_float();
    case ScalarFormat::bf16:
      return bfloat16::from_bits(static_cast<std::uint16_t>(code)).to_float();
    case ScalarFormat::e8m0:
      return float8_e8m0::from_bits(static_cast<std::uint8_t>(code)).to_float();
    case ScalarFormat::e4m3:
      return float8_e4m3::from_bits(static_cast<std::uint8_t>(code)).to_float();
  }
  return 0.0f;
}

}  // namespace detail

/// Reads one value stored in `format` at `bytes` (little-endian).
inline float load_scalar(ScalarFormat format, const std::uint8_t* bytes) noexcept {
  std::uint32_t code = 0;
  for (std::size_t i = 0; i < scalar_bytes(format); ++i)
    code |= static_cast<std::uint32_t>(bytes[i]) << (8 * i);
  return detail::decode_scalar_code(format, code);
}

/// Writes `value` rounded to nearest (ties to even, saturating) into `format` at `bytes`.
/// Throws invalid_value for a value the format cannot hold (NaN, or a negative E8M0).
inline void store_scalar(ScalarFormat format, float value, std::uint8_t* bytes) {
  const std::uint32_t code = detail::encode_scalar_code(format, value);
  for (std::size_t i = 0; i < scalar_bytes(format); ++i)
    bytes[i] = static_cast<std::uint8_t>(code >> (8 * i));
}

/// `value` after a round trip through `format`.
inline float round_scalar(ScalarFormat format, float value) {
  return detail::decode_scalar_code(format, detail::encode_scalar_code(format, value));
}

/// The smallest value of `format` that is >= `value`, for a positive finite `value` (or the
/// format's largest finite value when none is). Scales are rounded this way so that the rounded
/// scale still covers the range it was computed for.
inline float round_scalar_up(ScalarFormat format, float value) {
  std::uint32_t code = detail::encode_scalar_code(format, value);
  float rounded = detail::decode_scalar_code(format, code);
  if (rounded >= value) return rounded;
  // Positive values of every scalar format are ordered like their codes, so the next code up is
  // the next value up; stop at the largest finite value.
  const float next = detail::decode_scalar_code(format, code + 1);
  return std::isfinite(next) ? next : rounded;
}

}  // namespace lowbit
