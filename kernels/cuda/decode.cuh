// Device code shared by the CUDA kernels: the activation types, and decoding the packed codes of
// packed_layout.hpp into levels, as fp32 pairs (GEMV) or as mma A-fragment registers (fp16/bf16
// pairs, bit patterns in a uint32).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "packed_layout.hpp"

namespace lowbit::kernels::cuda {

/// fp16 and bf16 activations: conversions to and from fp32.
template <class T>
struct Act;
template <>
struct Act<__half> {
  static __device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half from_float(float v) { return __float2half_rn(v); }
  static __device__ __forceinline__ float2 to_float2(std::uint32_t bits) {
    __half2 h;
    std::memcpy(&h, &bits, sizeof h);
    return __half22float2(h);
  }
  static __device__ __forceinline__ std::uint32_t pack(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    std::uint32_t bits;
    std::memcpy(&bits, &h, sizeof bits);
    return bits;
  }
};
template <>
struct Act<__nv_bfloat16> {
  static __device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 from_float(float v) {
    return __float2bfloat16_rn(v);
  }
  static __device__ __forceinline__ float2 to_float2(std::uint32_t bits) {
    __nv_bfloat162 h;
    std::memcpy(&h, &bits, sizeof h);
    return __bfloat1622float2(h);
  }
  static __device__ __forceinline__ std::uint32_t pack(float lo, float hi) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    std::uint32_t bits;
    std::memcpy(&bits, &h, sizeof bits);
    return bits;
  }
};

/// 2^23 + n as a float, for an integer n < 2^23: subtracting 2^23 gives n exactly, with two
/// integer operations and one add instead of a (quarter-rate) integer-to-float conversion.
__device__ __forceinline__ float small_uint_to_float(std::uint32_t n) {
  return __uint_as_float(n | 0x4B000000u) - 8388608.0f;
}

/// An E4M3 code as 2^-8 times its value: its bits placed in an fp32's exponent and mantissa give
/// 2^-120 times the value (subnormals included), exact; 2^112 brings it to 2^-8.
__device__ __forceinline__ float e4m3_level(std::uint32_t code) {
  const float scaled = __uint_as_float((code & 0x80u) << 24 | (code & 0x7Fu) << 20);
  return scaled * 5.192296858534828e33f;  // 2^112
}

/// The levels of A-fragment register i (0..3) of one k-tile as fp32: words[0..1] are the lane's
/// words of the tile (one for 4-bit codes), table the lut4 table.
template <Decode D>
__device__ __forceinline__ float2 level_pair(const std::uint32_t (&words)[2], int i,
                                             const float* table) {
  if constexpr (D == Decode::int4 || D == Decode::lut4) {
    const std::uint32_t n = words[0] >> (4 * i);  // nibbles i and i + 4
    const std::uint32_t lo = n & 0xFu, hi = (n >> 16) & 0xFu;
    if constexpr (D == Decode::lut4) return make_float2(table[lo], table[hi]);
    return make_float2(small_uint_to_float(lo), small_uint_to_float(hi));
  } else {
    const std::uint32_t pair = words[i / 2] >> (16 * (i % 2));  // bytes 2i, 2i + 1
    const std::uint32_t lo = pair & 0xFFu, hi = (pair >> 8) & 0xFFu;
    if constexpr (D == Decode::e4m3) return make_float2(e4m3_level(lo), e4m3_level(hi));
    return make_float2(small_uint_to_float(lo), small_uint_to_float(hi));
  }
}

/// The same register as the mma reads it: two levels of type T. Integer levels and E4M3 levels
/// are exact in fp16 and bf16 (table values are rounded to T). fp16 takes bit tricks: a nibble or
/// byte u under the exponent of 1024 is 1024 + u; an E4M3 code's bits moved into an fp16 are 2^-8
/// times its value.
template <Decode D, class T>
__device__ __forceinline__ std::uint32_t fragment_register(const std::uint32_t (&words)[2], int i,
                                                           const float* table) {
  if constexpr (std::is_same_v<T, __half> && D == Decode::int4) {
    constexpr std::uint32_t magic = 0x64006400u;  // (1024, 1024)
    const std::uint32_t biased = ((words[0] >> (4 * i)) & 0x000F000Fu) | magic;
    __half2 v, m;
    std::memcpy(&v, &biased, sizeof v);
    std::memcpy(&m, &magic, sizeof m);
    const __half2 levels = __hsub2(v, m);
    std::uint32_t bits;
    std::memcpy(&bits, &levels, sizeof bits);
    return bits;
  } else if constexpr (std::is_same_v<T, __half> && D == Decode::e4m3) {
    // Bytes 2i, 2i + 1 into the low bytes of two 16-bit lanes, then into fp16 positions.
    const std::uint32_t spread = __byte_perm(words[i / 2], 0u, i % 2 == 0 ? 0x4140u : 0x4342u);
    return (spread & 0x00800080u) << 8 | (spread & 0x007F007Fu) << 7;
  } else {
    const float2 v = level_pair<D>(words, i, table);
    return Act<T>::pack(v.x, v.y);
  }
}

}  // namespace lowbit::kernels::cuda
