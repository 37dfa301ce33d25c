// Sub-byte and byte integers (2 to 8 bits, signed or unsigned), after CUTLASS's
// integer_subbyte<Bits, Signed>: a value type that holds the two's complement code of a narrow
// integer in the low bits of a byte, plus runtime-width helpers for quantizers that choose the
// width at run time. Everything but `checked` compiles for CUDA devices too.
#pragma once

#include <cstdint>
#include <string>

#include "lowbit/config.hpp"
#include "lowbit/error.hpp"

namespace lowbit {

// ---- Runtime-width helpers; `bits` must be in [1, 8] (codes live in one byte). -----------------

/// Smallest value of a `bits`-wide integer: -2^(bits-1) when signed, 0 when unsigned.
LOWBIT_HOST_DEVICE constexpr int int_min(int bits, bool is_signed) noexcept {
  return is_signed ? -(1 << (bits - 1)) : 0;
}

/// Largest value of a `bits`-wide integer: 2^(bits-1) - 1 when signed, 2^bits - 1 when unsigned.
LOWBIT_HOST_DEVICE constexpr int int_max(int bits, bool is_signed) noexcept {
  return is_signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
}

/// The code of `value` (which must lie in the range of the width): its two's complement,
/// truncated to the low `bits` bits. The same code serves signed and unsigned values.
LOWBIT_HOST_DEVICE constexpr std::uint8_t to_code(int value, int bits) noexcept {
  return static_cast<std::uint8_t>(static_cast<unsigned>(value) & ((1u << bits) - 1u));
}

/// The value of a `bits`-wide code; bits above `bits` are ignored. Sign-extends when signed.
LOWBIT_HOST_DEVICE constexpr int from_code(std::uint8_t code, int bits, bool is_signed) noexcept {
  const int magnitude = static_cast<int>(code & ((1u << bits) - 1u));
  const bool negative = is_signed && ((magnitude >> (bits - 1)) & 1) != 0;
  return negative ? magnitude - (1 << bits) : magnitude;
}

// ---- Compile-time-width integers. --------------------------------------------------------------

/// A `Bits`-wide integer stored as its code in the low bits of one byte (the other bits are zero).
/// An aggregate without constructors, so that it stays trivial for arrays, memcpy and device code;
/// build one with from_bits, saturating or checked.
template <int Bits, bool Signed>
struct integer_subbyte {
  static_assert(Bits >= 2 && Bits <= 8, "integer_subbyte holds 2 to 8 bits");

  static constexpr int bits = Bits;
  static constexpr bool is_signed = Signed;
  static constexpr int min_value = int_min(Bits, Signed);
  static constexpr int max_value = int_max(Bits, Signed);

  /// The low `Bits` bits: two's complement for signed types.
  std::uint8_t code;

  /// Reinterprets a code; bits above `Bits` are dropped.
  LOWBIT_HOST_DEVICE static constexpr integer_subbyte from_bits(std::uint8_t raw) noexcept {
    return integer_subbyte{static_cast<std::uint8_t>(raw & ((1u << Bits) - 1u))};
  }

  /// The nearest representable value: out-of-range values clamp to min_value or max_value.
  LOWBIT_HOST_DEVICE static constexpr integer_subbyte saturating(int value) noexcept {
    const int clamped = value < min_value ? min_value : (value > max_value ? max_value : value);
    return integer_subbyte{to_code(clamped, Bits)};
  }

  /// `value` exactly; throws lowbit::invalid_argument when it is out of range. Host only.
  static constexpr integer_subbyte checked(int value) {
    if (value < min_value || value > max_value)
      throw invalid_argument(std::string(Signed ? "int" : "uint") + std::to_string(Bits) +
                             ": value " + std::to_string(value) + " is outside [" +
                             std::to_string(min_value) + ", " + std::to_string(max_value) + "]");
    return integer_subbyte{to_code(value, Bits)};
  }

  /// The value the code stands for, sign-extended for signed types.
  LOWBIT_HOST_DEVICE constexpr int value() const noexcept { return from_code(code, Bits, Signed); }

  /// Codes are canonical (high bits zero), so equal codes mean equal values.
  LOWBIT_HOST_DEVICE friend constexpr bool operator==(integer_subbyte a,
                                                      integer_subbyte b) noexcept {
    return a.code == b.code;
  }
};

// The aliases carry a `b` suffix, as CUTLASS's int4b_t does: plain int2/int3/int4/uint2/uint3/uint4
// are CUDA's built-in vector types, and would turn ambiguous in any .cu file that says
// `using namespace lowbit;`.
using int2b = integer_subbyte<2, true>;
using uint2b = integer_subbyte<2, false>;
using int3b = integer_subbyte<3, true>;
using uint3b = integer_subbyte<3, false>;
using int4b = integer_subbyte<4, true>;
using uint4b = integer_subbyte<4, false>;
using int5b = integer_subbyte<5, true>;
using uint5b = integer_subbyte<5, false>;
using int6b = integer_subbyte<6, true>;
using uint6b = integer_subbyte<6, false>;
using int7b = integer_subbyte<7, true>;
using uint7b = integer_subbyte<7, false>;
using int8b = integer_subbyte<8, true>;
using uint8b = integer_subbyte<8, false>;

}  // namespace lowbit
