// The one rounding routine behind every minifloat format: float32 bits in, target code out, and
// back. Integer arithmetic on the bit patterns only (no <cmath>, no float arithmetic), so that it
// is constexpr, exact, independent of the FPU's rounding and flush-to-zero modes, and compiles for
// CUDA devices.
#pragma once

#include <cstdint>

#if !defined(__CUDACC__)
#include <bit>
#endif

#include "lowbit/config.hpp"

namespace lowbit::detail::codec {

// std::bit_cast is a host-only constexpr function as far as nvcc is concerned (calling it from
// device code needs --expt-relaxed-constexpr); the builtin it wraps works on both sides.
LOWBIT_HOST_DEVICE constexpr std::uint32_t float_to_bits(float x) noexcept {
#if defined(__CUDACC__)
  return __builtin_bit_cast(std::uint32_t, x);
#else
  return std::bit_cast<std::uint32_t>(x);
#endif
}

LOWBIT_HOST_DEVICE constexpr float bits_to_float(std::uint32_t bits) noexcept {
#if defined(__CUDACC__)
  return __builtin_bit_cast(float, bits);
#else
  return std::bit_cast<float>(bits);
#endif
}

// float32 layout.
inline constexpr std::uint32_t f32_sign_mask = 0x8000'0000u;
inline constexpr std::uint32_t f32_abs_mask = 0x7FFF'FFFFu;
inline constexpr std::uint32_t f32_inf_bits = 0x7F80'0000u;
inline constexpr std::uint32_t f32_quiet_nan_bits = 0x7FC0'0000u;
inline constexpr std::uint32_t f32_mantissa_mask = 0x007F'FFFFu;
inline constexpr int f32_mantissa_bits = 23;
inline constexpr int f32_bias = 127;
inline constexpr int f32_min_normal_exponent = -126;
inline constexpr int f32_min_subnormal_exponent = -149;  // 2^-149 is the smallest float32

/// Number of bits needed to write `x` (0 for 0); std::bit_width is not usable in device code.
LOWBIT_HOST_DEVICE constexpr int bit_width(std::uint32_t x) noexcept {
  int width = 0;
  while (x != 0) {
    x >>= 1;
    ++width;
  }
  return width;
}

/// x / 2^shift rounded to nearest, ties to even, for shift >= 0.
LOWBIT_HOST_DEVICE constexpr std::uint32_t shift_right_round_even(std::uint32_t x,
                                                                  int shift) noexcept {
  if (shift == 0) return x;
  if (shift >= 32) return 0;  // callers pass x < 2^24, so x / 2^shift < 1/2 here
  const std::uint32_t kept = x >> shift;
  const std::uint32_t dropped = x & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1);
  const bool round_up = dropped > half || (dropped == half && (kept & 1u) != 0);
  return kept + (round_up ? 1u : 0u);
}

/// |x| as integer significand * 2^exponent, with floor(log2|x|), for a finite nonzero float32.
struct unpacked_f32 {
  std::uint32_t significand;  // < 2^24
  int exponent;               // of the significand's unit bit
  int floor_log2;             // exponent of the leading bit
};

LOWBIT_HOST_DEVICE constexpr unpacked_f32 unpack_finite(std::uint32_t abs_bits) noexcept {
  const std::uint32_t biased_exponent = abs_bits >> f32_mantissa_bits;
  const std::uint32_t fraction = abs_bits & f32_mantissa_mask;
  if (biased_exponent == 0)  // float32 subnormal: fraction * 2^-149
    return {fraction, f32_min_subnormal_exponent,
            f32_min_subnormal_exponent + bit_width(fraction) - 1};
  const int floor_log2 = static_cast<int>(biased_exponent) - f32_bias;
  return {fraction | (1u << f32_mantissa_bits), floor_log2 - f32_mantissa_bits, floor_log2};
}

/// The float32 bits of significand * 2^exponent, which the caller guarantees is exactly
/// representable (significand < 2^24, result within the float32 range).
LOWBIT_HOST_DEVICE constexpr std::uint32_t pack_exact(std::uint32_t significand,
                                                      int exponent) noexcept {
  if (significand == 0) return 0;
  const int leading = bit_width(significand) - 1;
  const int floor_log2 = exponent + leading;
  if (floor_log2 <
      f32_min_normal_exponent)  // a float32 subnormal: the bits are the multiple of 2^-149
    return significand << (exponent - f32_min_subnormal_exponent);
  const std::uint32_t fraction = (significand << (f32_mantissa_bits - leading)) & f32_mantissa_mask;
  return (static_cast<std::uint32_t>(floor_log2 + f32_bias) << f32_mantissa_bits) | fraction;
}

/// What the all-ones exponent means; mirrors lowbit::NonFinite without depending on it.
enum class specials : std::uint8_t { ieee, nan_only, none };

/// A sign | exponent | mantissa format with `exponent_bits`, `mantissa_bits`, `bias`, whose finite
/// values all lie within float32's range, and its exact conversions from and to float32.
template <int ExponentBits, int MantissaBits, int Bias, specials Specials>
struct layout {
  static constexpr int exponent_bits = ExponentBits;
  static constexpr int mantissa_bits = MantissaBits;
  static constexpr int bits = 1 + ExponentBits + MantissaBits;

  static constexpr std::uint32_t mantissa_mask = (1u << MantissaBits) - 1u;
  static constexpr std::uint32_t exponent_all_ones = (1u << ExponentBits) - 1u;
  static constexpr std::uint32_t sign_mask = 1u << (ExponentBits + MantissaBits);
  static constexpr std::uint32_t magnitude_mask = sign_mask - 1u;
  static constexpr std::uint32_t code_mask = (sign_mask << 1) - 1u;
  /// ieee: +Inf; the NaNs lie above it.
  static constexpr std::uint32_t inf_magnitude = exponent_all_ones << MantissaBits;
  /// nan_only: the single NaN magnitude (all ones).
  static constexpr std::uint32_t nan_magnitude = magnitude_mask;
  static constexpr std::uint32_t max_finite_magnitude =
      Specials == specials::ieee       ? inf_magnitude - 1u
      : Specials == specials::nan_only ? magnitude_mask - 1u
                                       : magnitude_mask;

  /// Exponent of the smallest normal (exponent field 1); subnormals share it.
  static constexpr int min_exponent = 1 - Bias;
  static constexpr int max_exponent = static_cast<int>(max_finite_magnitude >> MantissaBits) - Bias;

  static_assert(ExponentBits >= 1 && MantissaBits >= 0 && bits <= 16,
                "a minifloat has 1 to 15 exponent and mantissa bits, 16 bits at most");
  static_assert(Specials != specials::ieee || (ExponentBits >= 2 && MantissaBits >= 1),
                "IEEE-style Inf/NaN needs a mantissa bit (to tell NaN from Inf) and a normal "
                "exponent below the all-ones one");
  static_assert(max_exponent <= 127 && min_exponent - MantissaBits >= f32_min_subnormal_exponent,
                "every value of the format must be exactly representable as a float32");

  struct encoded {
    std::uint32_t code;
    bool ok;
  };

  /// The code of a non-NaN magnitude that does not fit (beyond max finite after rounding, or Inf).
  LOWBIT_HOST_DEVICE static constexpr std::uint32_t overflow_magnitude(bool to_nonfinite) noexcept {
    if (!to_nonfinite) return max_finite_magnitude;
    if constexpr (Specials == specials::ieee) return inf_magnitude;
    if constexpr (Specials == specials::nan_only) return nan_magnitude;
    return max_finite_magnitude;  // no Inf, no NaN: saturation is the only choice
  }

  /// Round to nearest, ties to even, in one step from the float32 bits.
  LOWBIT_HOST_DEVICE static constexpr encoded encode(float x, bool to_nonfinite) noexcept {
    const std::uint32_t x_bits = float_to_bits(x);
    const std::uint32_t sign = (x_bits & f32_sign_mask) != 0 ? sign_mask : 0u;
    const std::uint32_t abs_bits = x_bits & f32_abs_mask;

    if (abs_bits > f32_inf_bits) {  // NaN
      if constexpr (Specials == specials::ieee) {
        // Keep the payload's top bits and set the quiet bit (IEEE 754-2019 6.2.3), which also
        // keeps the result from reading as Inf.
        const std::uint32_t payload =
            (abs_bits & f32_mantissa_mask) >> (f32_mantissa_bits - MantissaBits);
        return {sign | inf_magnitude | (1u << (MantissaBits - 1)) | payload, true};
      } else if constexpr (Specials == specials::nan_only) {
        return {sign | nan_magnitude, true};
      } else {
        return {0u, false};
      }
    }
    if (abs_bits == f32_inf_bits) return {sign | overflow_magnitude(to_nonfinite), true};
    if (abs_bits == 0) return {sign, true};

    // Quantum of the target near x: 2^(e - M) where e is x's binade, or the subnormal binade.
    const unpacked_f32 v = unpack_finite(abs_bits);
    const int target_exponent = v.floor_log2 > min_exponent ? v.floor_log2 : min_exponent;
    const int shift = target_exponent - MantissaBits - v.exponent;  // >= 0: the target is narrower
    // `steps` counts quanta, implicit bit included, so a normal has steps in [2^M, 2^(M+1)] and
    // (binade offset << M) + steps is the code: a carry out of the mantissa bumps the exponent,
    // and a subnormal that rounds up to 2^M becomes the smallest normal, with no special case.
    const std::uint32_t steps = shift_right_round_even(v.significand, shift);
    const std::uint32_t magnitude =
        (static_cast<std::uint32_t>(target_exponent - min_exponent) << MantissaBits) + steps;
    if (magnitude > max_finite_magnitude)  // decided after rounding, as IEEE 754 does
      return {sign | overflow_magnitude(to_nonfinite), true};
    return {sign | magnitude, true};
  }

  LOWBIT_HOST_DEVICE static constexpr bool is_nan(std::uint32_t code) noexcept {
    const std::uint32_t magnitude = code & magnitude_mask;
    if constexpr (Specials == specials::ieee) return magnitude > inf_magnitude;
    if constexpr (Specials == specials::nan_only) return magnitude == nan_magnitude;
    return false;
  }

  LOWBIT_HOST_DEVICE static constexpr bool is_inf(std::uint32_t code) noexcept {
    if constexpr (Specials == specials::ieee) return (code & magnitude_mask) == inf_magnitude;
    return false;
  }

  /// Exact value; NaN codes give a quiet float32 NaN with the sign and the payload's bits.
  LOWBIT_HOST_DEVICE static constexpr float decode(std::uint32_t code) noexcept {
    code &= code_mask;
    const std::uint32_t sign = (code & sign_mask) != 0 ? f32_sign_mask : 0u;
    const std::uint32_t magnitude = code & magnitude_mask;
    const std::uint32_t exponent_field = magnitude >> MantissaBits;
    const std::uint32_t mantissa = magnitude & mantissa_mask;

    if constexpr (Specials == specials::ieee) {
      if (exponent_field == exponent_all_ones) {
        if (mantissa == 0) return bits_to_float(sign | f32_inf_bits);
        return bits_to_float(sign | f32_quiet_nan_bits |
                             (mantissa << (f32_mantissa_bits - MantissaBits)));
      }
    } else if constexpr (Specials == specials::nan_only) {
      if (magnitude == nan_magnitude) return bits_to_float(sign | f32_quiet_nan_bits);
    }
    if (exponent_field == 0)  // zero or subnormal: mantissa * 2^(min_exponent - M)
      return bits_to_float(sign | pack_exact(mantissa, min_exponent - MantissaBits));
    return bits_to_float(sign | pack_exact(mantissa | (1u << MantissaBits),
                                           static_cast<int>(exponent_field) - Bias - MantissaBits));
  }
};

}  // namespace lowbit::detail::codec
