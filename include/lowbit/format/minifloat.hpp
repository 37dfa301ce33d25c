// Narrow floating-point element formats: OCP FP8 (E4M3, E5M2), OCP MX FP6/FP4 (E2M3, E3M2, E2M1),
// E1M2 and E3M0, and the OCP MX scale format E8M0. One template, `minifloat`, covers every
// sign | exponent | mantissa layout of up to 16 bits (half.hpp adds fp16 and bf16 with it).
//
// Conversions are bit-exact and constexpr: float32 -> code rounds to nearest, ties to even, in a
// single step from the float32 bits (subnormals included); code -> float32 is exact. They agree
// with ml_dtypes (float8_e4m3fn, float8_e5m2, float4_e2m1fn, float6_e2m3fn, float6_e3m2fn) bit for
// bit on non-NaN inputs, in the overflow mode ml_dtypes implements for each (see
// tests/python/check_formats.py). Everything but from_float compiles for CUDA devices too.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>

#include "lowbit/config.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/detail/minifloat_codec.hpp"

namespace lowbit {

/// What happens to a value beyond the largest finite value of a format (after rounding).
enum class Overflow : std::uint8_t {
  saturate,     ///< default: finite values beyond max, and +-Inf, become +-max finite
  to_nonfinite  ///< Inf where the format has Inf, else NaN where it has NaN; else saturate
};

/// The meaning of the all-ones exponent.
enum class NonFinite : std::uint8_t {
  ieee,      ///< Inf (mantissa 0) and NaN (mantissa != 0), as IEEE 754: E5M2, fp16, bf16
  nan_only,  ///< OCP "fn": no Inf, a single NaN pattern S.1111.111 per sign: E4M3
  none       ///< every code is finite (OCP MX FP4/FP6: E2M1, E2M3, E3M2; also E1M2, E3M0)
};

/// A code and whether it represents the input. ok is false only when the value has no
/// representation at all (NaN into a format without NaN; for E8M0 also zero and negatives).
template <class Code>
struct EncodeResult {
  Code code;
  bool ok;
};

namespace detail {

constexpr codec::specials to_codec_specials(NonFinite kind) noexcept {
  return kind == NonFinite::ieee       ? codec::specials::ieee
         : kind == NonFinite::nan_only ? codec::specials::nan_only
                                       : codec::specials::none;
}

/// A short compile-time string for format names.
struct format_name {
  char text[40]{};
  int size = 0;

  constexpr format_name& append(const char* s) {
    while (*s != '\0' && size < 39) text[size++] = *s++;
    return *this;
  }
  constexpr format_name& append(int n) {
    if (n < 0) {
      append("m");  // a minus sign would not survive as an identifier
      n = -n;
    }
    char digits[12]{};
    int count = 0;
    do {
      digits[count++] = static_cast<char>('0' + n % 10);
      n /= 10;
    } while (n != 0);
    while (count > 0 && size < 39) text[size++] = digits[--count];
    return *this;
  }
};

/// "float{bits}_e{E}m{M}", or "float16"/"bfloat16"; a bias other than 2^(E-1)-1 adds "_b{bias}",
/// and a NonFinite kind other than the usual one for the shape (none up to 6 bits, nan_only for
/// 8-bit E4M3, ieee otherwise) adds "_inf" (ieee), "_fn" (nan_only) or "_fin" (none).
constexpr format_name make_minifloat_name(int exponent_bits, int mantissa_bits, int bias,
                                          NonFinite kind) {
  const int bits = 1 + exponent_bits + mantissa_bits;
  format_name name;
  if (kind == NonFinite::ieee && exponent_bits == 5 && mantissa_bits == 10 && bias == 15)
    return name.append("float16");
  if (kind == NonFinite::ieee && exponent_bits == 8 && mantissa_bits == 7 && bias == 127)
    return name.append("bfloat16");
  name.append("float")
      .append(bits)
      .append("_e")
      .append(exponent_bits)
      .append("m")
      .append(mantissa_bits);
  if (bias != (1 << (exponent_bits - 1)) - 1) name.append("_b").append(bias);
  const NonFinite usual = bits <= 6                                    ? NonFinite::none
                          : (exponent_bits == 4 && mantissa_bits == 3) ? NonFinite::nan_only
                                                                       : NonFinite::ieee;
  if (kind != usual)
    name.append(kind == NonFinite::ieee ? "_inf" : kind == NonFinite::nan_only ? "_fn" : "_fin");
  return name;
}

template <int ExponentBits, int MantissaBits, int Bias, NonFinite Kind>
inline constexpr format_name minifloat_name = make_minifloat_name(ExponentBits, MantissaBits, Bias,
                                                                  Kind);

/// A float for an error message, with all the digits needed to read it back.
inline std::string describe_float(float x) {
  char text[48];
  std::snprintf(text, sizeof text, "%.9g", static_cast<double>(x));
  return text;
}

}  // namespace detail

/// A sign | exponent | mantissa float of 1 + ExponentBits + MantissaBits bits, stored in the low
/// bits of `code`. An aggregate (trivial, one byte or two) so that arrays of it can be memcpy'd
/// and used in device code; build one with from_bits, encode or from_float.
template <int ExponentBits, int MantissaBits, int Bias, NonFinite Kind>
struct minifloat {
 private:
  using layout =
      detail::codec::layout<ExponentBits, MantissaBits, Bias, detail::to_codec_specials(Kind)>;

 public:
  static constexpr int exponent_bits = ExponentBits;
  static constexpr int mantissa_bits = MantissaBits;
  static constexpr int bias = Bias;
  static constexpr int bits = 1 + ExponentBits + MantissaBits;
  static constexpr NonFinite non_finite = Kind;
  static constexpr bool has_inf = Kind == NonFinite::ieee;
  static constexpr bool has_nan = Kind != NonFinite::none;
  using storage_type = std::conditional_t<(bits <= 8), std::uint8_t, std::uint16_t>;

  /// sign | exponent | mantissa in the low `bits` bits; the bits above are zero.
  storage_type code;

  /// Reinterprets a code; bits above `bits` are dropped.
  LOWBIT_HOST_DEVICE static constexpr minifloat from_bits(storage_type raw) noexcept {
    return minifloat{static_cast<storage_type>(raw & layout::code_mask)};
  }

  /// The code nearest to x (ties to even). NaN keeps its sign (and, for ieee formats, the top
  /// payload bits with the quiet bit set); ok is false for NaN into a format without NaN.
  LOWBIT_HOST_DEVICE static constexpr EncodeResult<storage_type> encode(
      float x, Overflow overflow = Overflow::saturate) noexcept {
    const auto result = layout::encode(x, overflow == Overflow::to_nonfinite);
    return {static_cast<storage_type>(result.code), result.ok};
  }

  /// encode, or lowbit::invalid_value when the value has no representation (NaN into a format
  /// without NaN). Host only.
  static constexpr minifloat from_float(float x, Overflow overflow = Overflow::saturate) {
    const auto result = encode(x, overflow);
    if (!result.ok)
      throw invalid_value("cannot encode " + detail::describe_float(x) + " as " + name() +
                          ", which has no NaN");
    return minifloat{result.code};
  }

  /// The exact value; NaN codes give a quiet NaN of the same sign.
  LOWBIT_HOST_DEVICE constexpr float to_float() const noexcept { return layout::decode(code); }

  LOWBIT_HOST_DEVICE constexpr bool is_nan() const noexcept { return layout::is_nan(code); }
  LOWBIT_HOST_DEVICE constexpr bool is_inf() const noexcept { return layout::is_inf(code); }

  /// Largest finite value.
  LOWBIT_HOST_DEVICE static constexpr float max_finite() noexcept {
    return layout::decode(layout::max_finite_magnitude);
  }
  /// Smallest positive normal value (exponent field 1).
  LOWBIT_HOST_DEVICE static constexpr float min_normal() noexcept {
    return layout::decode(1u << MantissaBits);
  }
  /// Smallest positive value (denorm_min); equals min_normal() when there is no mantissa.
  LOWBIT_HOST_DEVICE static constexpr float min_subnormal() noexcept { return layout::decode(1u); }

  /// e.g. "float8_e4m3", "float4_e2m1", "float16", "bfloat16".
  static constexpr const char* name() noexcept {
    return detail::minifloat_name<ExponentBits, MantissaBits, Bias, Kind>.text;
  }

  /// Compares codes (bit patterns), not values: +0 != -0 and a NaN equals itself.
  friend constexpr bool operator==(minifloat, minifloat) = default;
};

/// OCP FP8 E4M3 ("E4M3FN"): no Inf, NaN = S.1111.111, max 448.
using float8_e4m3 = minifloat<4, 3, 7, NonFinite::nan_only>;
/// OCP FP8 E5M2: IEEE-style Inf and NaN, max 57344.
using float8_e5m2 = minifloat<5, 2, 15, NonFinite::ieee>;
/// OCP MX FP4 E2M1: 0, 0.5, 1, 1.5, 2, 3, 4, 6.
using float4_e2m1 = minifloat<2, 1, 1, NonFinite::none>;
/// E1M2: with the default bias 0, the integer-like grid 0, 0.5, ..., 3.5.
template <int Bias = 0>
using float4_e1m2 = minifloat<1, 2, Bias, NonFinite::none>;
/// E3M0: powers of two (and zero); with the default bias 3, 0.25 ... 16.
template <int Bias = 3>
using float4_e3m0 = minifloat<3, 0, Bias, NonFinite::none>;
/// OCP MX FP6 E2M3: max 7.5.
using float6_e2m3 = minifloat<2, 3, 1, NonFinite::none>;
/// OCP MX FP6 E3M2: max 28.
using float6_e3m2 = minifloat<3, 2, 3, NonFinite::none>;

/// OCP MX E8M0 scale: the value 2^(code - 127) for codes 0..254, code 0xFF is NaN. No sign, no
/// zero. Conversions follow ml_dtypes' float8_e8m0fnu: nearest power of two, a tie (1.5 * 2^k)
/// going up; positive values below 2^-127 give 2^-127; zero and negatives have no code (NaN in
/// ml_dtypes, ok == false here). One deliberate difference, for inputs in (2^-127, 1.5 * 2^-127)
/// (float32 subnormals): ml_dtypes gives 2^-126, here they give the nearer 2^-127.
struct float8_e8m0 {
  static constexpr int exponent_bits = 8;
  static constexpr int mantissa_bits = 0;
  static constexpr int bias = 127;
  static constexpr int bits = 8;
  static constexpr NonFinite non_finite = NonFinite::nan_only;
  static constexpr bool has_inf = false;
  static constexpr bool has_nan = true;
  using storage_type = std::uint8_t;
  static constexpr std::uint8_t nan_code = 0xFF;

  std::uint8_t code;

  LOWBIT_HOST_DEVICE static constexpr float8_e8m0 from_bits(std::uint8_t raw) noexcept {
    return float8_e8m0{raw};
  }

  /// The nearest power of two. NaN gives the NaN code (ok); zero and negative values give the
  /// NaN code with ok == false. Overflow (x >= 1.5 * 2^127, or +Inf) gives 2^127 (saturate) or
  /// NaN (to_nonfinite, as ml_dtypes does).
  LOWBIT_HOST_DEVICE static constexpr EncodeResult<std::uint8_t> encode(
      float x, Overflow overflow = Overflow::saturate) noexcept {
    namespace codec = detail::codec;
    const std::uint32_t x_bits = codec::float_to_bits(x);
    const std::uint32_t abs_bits = x_bits & codec::f32_abs_mask;
    if (abs_bits > codec::f32_inf_bits) return {nan_code, true};
    if ((x_bits & codec::f32_sign_mask) != 0 || abs_bits == 0) return {nan_code, false};
    const std::uint8_t overflow_code =
        overflow == Overflow::to_nonfinite ? nan_code : std::uint8_t{0xFE};
    if (abs_bits == codec::f32_inf_bits) return {overflow_code, true};

    const std::uint32_t biased_exponent = abs_bits >> codec::f32_mantissa_bits;
    const std::uint32_t fraction = abs_bits & codec::f32_mantissa_mask;
    if (biased_exponent == 0) {
      // float32 subnormal, below 2^-126: 2^-126 from 1.5 * 2^-127 (fraction 0x600000) up,
      // else 2^-127, the smallest code (there is no zero to round down to).
      return {static_cast<std::uint8_t>(fraction >= 0x60'0000u ? 1 : 0), true};
    }
    // x = 1.f * 2^(biased_exponent - 127) and code c means 2^(c - 127): the code is the float32
    // exponent field, plus one from 1.5 (fraction 0x400000) up. There is only the implicit
    // significand bit, which is odd, so ties to even round up.
    const std::uint32_t rounded = biased_exponent + (fraction >= 0x40'0000u ? 1u : 0u);
    if (rounded > 0xFEu) return {overflow_code, true};
    return {static_cast<std::uint8_t>(rounded), true};
  }

  /// encode, or lowbit::invalid_value for NaN, zero and negative values: a scale must be a
  /// positive number. Host only.
  static constexpr float8_e8m0 from_float(float x, Overflow overflow = Overflow::saturate) {
    const auto result = encode(x, overflow);
    const bool is_nan = (detail::codec::float_to_bits(x) & detail::codec::f32_abs_mask) >
                        detail::codec::f32_inf_bits;
    if (!result.ok || is_nan)
      throw invalid_value("cannot encode " + detail::describe_float(x) + " as " + name() +
                          ", which holds positive powers of two only");
    return float8_e8m0{result.code};
  }

  /// 2^(code - 127); NaN for code 0xFF.
  LOWBIT_HOST_DEVICE constexpr float to_float() const noexcept {
    namespace codec = detail::codec;
    if (code == nan_code) return codec::bits_to_float(codec::f32_quiet_nan_bits);
    if (code == 0) return codec::bits_to_float(0x40'0000u);  // 2^-127 is a float32 subnormal
    return codec::bits_to_float(static_cast<std::uint32_t>(code) << codec::f32_mantissa_bits);
  }

  LOWBIT_HOST_DEVICE constexpr bool is_nan() const noexcept { return code == nan_code; }
  LOWBIT_HOST_DEVICE constexpr bool is_inf() const noexcept { return false; }

  /// 2^127.
  LOWBIT_HOST_DEVICE static constexpr float max_finite() noexcept {
    return from_bits(0xFE).to_float();
  }
  /// 2^-127, the smallest value; min_normal and min_subnormal are the same (for generic code).
  LOWBIT_HOST_DEVICE static constexpr float min() noexcept { return from_bits(0).to_float(); }
  LOWBIT_HOST_DEVICE static constexpr float min_normal() noexcept { return min(); }
  LOWBIT_HOST_DEVICE static constexpr float min_subnormal() noexcept { return min(); }

  static constexpr const char* name() noexcept { return "float8_e8m0"; }

  /// Compares codes, not values.
  friend constexpr bool operator==(float8_e8m0, float8_e8m0) = default;
};

}  // namespace lowbit
