// NF4, QLoRA's 4-bit NormalFloat: 16 fixed values in [-1, 1] (quantiles of a normal distribution,
// with an exact zero), applied to weights divided by their block's absolute maximum. The table and
// the rounding are bitsandbytes' own, bit for bit. Everything but from_float compiles for CUDA
// devices too.
#pragma once

#include <array>
#include <cstdint>

#include "lowbit/config.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/detail/minifloat_codec.hpp"
#include "lowbit/format/minifloat.hpp"  // detail::describe_float

namespace lowbit {

namespace detail {

// The tables live in functions, as local arrays, because device code cannot index a host
// namespace-scope array at run time.

/// bitsandbytes' NF4 table (each literal is exactly a float32).
LOWBIT_HOST_DEVICE constexpr float nf4_value(unsigned code) noexcept {
  constexpr float table[16] = {
      -1.0f,
      -0.6961928009986877f,
      -0.5250730514526367f,
      -0.39491748809814453f,
      -0.28444138169288635f,
      -0.18477343022823334f,
      -0.09105003625154495f,
      0.0f,
      0.07958029955625534f,
      0.16093020141124725f,
      0.24611230194568634f,
      0.33791524171829224f,
      0.44070982933044434f,
      0.5626170039176941f,
      0.7229568362236023f,
      1.0f,
  };
  return table[code & 0xFu];
}

/// Thresholds of bitsandbytes' dQuantizeNF4 decision tree: threshold i separates codes i and i+1,
/// and x goes up iff x > threshold. bitsandbytes writes each as the decimal of the double midpoint
/// of two adjacent values; read as a float literal, that is one of the two floats nearest the
/// midpoint. Where the midpoint is itself a float (i = 2, 6, 7, 9, 11, 13), a tie goes to the
/// lower code. For i = 1, 3, 4, 8 the literal lies just above the midpoint, so x == threshold
/// goes to the lower code although the upper value is nearer. We keep bitsandbytes' thresholds, to
/// produce its codes bit for bit.
LOWBIT_HOST_DEVICE constexpr float nf4_threshold(unsigned index) noexcept {
  constexpr float thresholds[15] = {
      -0.8480964004993439f,  -0.6106329262256622f,  -0.4599952697753906f,   -0.33967943489551544f,
      -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
      0.1202552504837513f,   0.2035212516784668f,   0.2920137718319893f,    0.3893125355243683f,
      0.5016634166240692f,   0.6427869200706482f,   0.8614784181118011f,
  };
  return thresholds[index];
}

constexpr std::array<float, 16> make_nf4_values() noexcept {
  std::array<float, 16> values{};
  for (unsigned code = 0; code < 16; ++code) values[code] = nf4_value(code);
  return values;
}

}  // namespace detail

/// One NF4 code (0..15) in the low bits of a byte; its value is values[code].
struct nf4 {
  static constexpr int bits = 4;
  using storage_type = std::uint8_t;

  /// bitsandbytes' NF4 table, ascending; values[7] == 0.
  static constexpr std::array<float, 16> values = detail::make_nf4_values();

  std::uint8_t code;

  /// Reinterprets a code; bits above the low four are dropped.
  LOWBIT_HOST_DEVICE static constexpr nf4 from_bits(std::uint8_t raw) noexcept {
    return nf4{static_cast<std::uint8_t>(raw & 0xFu)};
  }

  /// The code bitsandbytes' dQuantizeNF4 gives: the nearest table value, with its thresholds
  /// (see detail::nf4_threshold). Values outside [-1, 1] saturate. The caller guarantees x is not
  /// NaN (a NaN gives code 0, as in bitsandbytes).
  LOWBIT_HOST_DEVICE static constexpr nf4 encode_nearest(float x) noexcept {
    // bitsandbytes' tree, written as a branch-light binary search over the sorted thresholds.
    unsigned code = 0;
    if (x > detail::nf4_threshold(code + 7)) code += 8;
    if (x > detail::nf4_threshold(code + 3)) code += 4;
    if (x > detail::nf4_threshold(code + 1)) code += 2;
    if (x > detail::nf4_threshold(code)) code += 1;
    return nf4{static_cast<std::uint8_t>(code)};
  }

  /// encode_nearest, or lowbit::invalid_value for NaN. Host only.
  static nf4 from_float(float x) {
    const bool is_nan = (detail::codec::float_to_bits(x) & detail::codec::f32_abs_mask) >
                        detail::codec::f32_inf_bits;
    if (is_nan) throw invalid_value("cannot encode " + detail::describe_float(x) + " as nf4");
    return encode_nearest(x);
  }

  LOWBIT_HOST_DEVICE constexpr float to_float() const noexcept { return detail::nf4_value(code); }

  static constexpr const char* name() noexcept { return "nf4"; }

  /// Compares codes.
  friend constexpr bool operator==(nf4, nf4) = default;
};

}  // namespace lowbit
