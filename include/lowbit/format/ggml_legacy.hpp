// llama.cpp's "legacy" ggml blocks of 32 weights, Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0, and its 16-bit
// float types F16 and BF16 (as blocks of one weight): the byte layout of one block (as
// ggml/src/ggml-common.h defines it), its dequantization bit for bit as ggml's dequantize_row_*
// computes it, and its level form (to_levels, ggml_types.hpp).
//
//   Q4_0  18 bytes: fp16 d, 16 bytes of nibbles; byte j holds weight j in its low nibble and
//         weight j + 16 in its high nibble.                     value = (q - 8) * d
//   Q4_1  20 bytes: fp16 d, fp16 m, nibbles as Q4_0.            value = q * d + m
//   Q5_0  22 bytes: fp16 d, 4 bytes qh (a little-endian uint32 whose bit j is the fifth bit of
//         weight j), nibbles as Q4_0.                           value = (q - 16) * d
//   Q5_1  24 bytes: fp16 d, fp16 m, qh as Q5_0, nibbles.        value = q * d + m
//   Q8_0  34 bytes: fp16 d, then 32 int8.                       value = q * d
//   F16   1 weight, 2 bytes: IEEE binary16.   BF16  1 weight, 2 bytes: the top half of a float32.
//
// All arithmetic is float32, one rounding per operation, in ggml's order (q * d + m is a product
// and a sum: lowbit is built as ISO C++, so the compiler does not contract it into a fused
// multiply-add). The fp16 fields are IEEE binary16 bits, little-endian as in GGUF files; the
// structs hold them in host order, the same on the little-endian hosts lowbit supports. Every
// struct has ggml's size and an alignment of 2, so a row of blocks may be read in place from a
// buffer that starts on an even address.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lowbit/config.hpp"
#include "lowbit/format/detail/minifloat_codec.hpp"
#include "lowbit/format/ggml_types.hpp"

namespace lowbit::ggml {

struct block_q4_0 {
  std::uint16_t d;             // fp16 bits
  std::uint8_t qs[qk4_0 / 2];  // nibbles: weight j low, weight j + 16 high
};
static_assert(sizeof(block_q4_0) == 18 && alignof(block_q4_0) == 2);

struct block_q4_1 {
  std::uint16_t d;  // fp16 bits: the scale
  std::uint16_t m;  // fp16 bits: the minimum (the value of code 0)
  std::uint8_t qs[qk4_0 / 2];
};
static_assert(sizeof(block_q4_1) == 20 && alignof(block_q4_1) == 2);

struct block_q5_0 {
  std::uint16_t d;
  std::uint8_t qh[4];  // the fifth bits: bit j of the little-endian uint32 for weight j
  std::uint8_t qs[qk4_0 / 2];
};
static_assert(sizeof(block_q5_0) == 22 && alignof(block_q5_0) == 2);

struct block_q5_1 {
  std::uint16_t d;
  std::uint16_t m;
  std::uint8_t qh[4];
  std::uint8_t qs[qk4_0 / 2];
};
static_assert(sizeof(block_q5_1) == 24 && alignof(block_q5_1) == 2);

struct block_q8_0 {
  std::uint16_t d;  // fp16 bits
  std::int8_t qs[qk8_0];
};
static_assert(sizeof(block_q8_0) == 34 && alignof(block_q8_0) == 2);

/// F16 and BF16: one weight each (ggml_fp16_t, ggml_bf16_t).
struct block_f16 {
  std::uint16_t bits;
};
struct block_bf16 {
  std::uint16_t bits;
};
static_assert(sizeof(block_f16) == 2 && sizeof(block_bf16) == 2);

/// The 4-bit code of weight j (0..31) of a Q4_0/Q4_1/Q5_x block's nibbles.
LOWBIT_HOST_DEVICE constexpr int nibble(const std::uint8_t* qs, std::size_t j) noexcept {
  return j < 16 ? qs[j] & 0x0F : qs[j - 16] >> 4;
}
/// The 5-bit code of weight j of a Q5_0 or Q5_1 block: its nibble and bit j of qh.
LOWBIT_HOST_DEVICE constexpr int five_bit_code(const std::uint8_t* qh, const std::uint8_t* qs,
                                               std::size_t j) noexcept {
  return nibble(qs, j) | (((qh[j / 8] >> (j % 8)) & 1) << 4);
}

/// The 32 weights of a Q4_0 block, as dequantize_row_q4_0.
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_q4_0& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < qk4_0; ++j) y[j] = static_cast<float>(nibble(b.qs, j) - 8) * d;
}

/// The 32 weights of a Q4_1 block, as dequantize_row_q4_1.
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_q4_1& b, float* y) noexcept {
  const float d = fp16_to_float(b.d), m = fp16_to_float(b.m);
  for (std::size_t j = 0; j < qk4_0; ++j) y[j] = static_cast<float>(nibble(b.qs, j)) * d + m;
}

/// The 32 weights of a Q5_0 block, as dequantize_row_q5_0.
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_q5_0& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < qk4_0; ++j)
    y[j] = static_cast<float>(five_bit_code(b.qh, b.qs, j) - 16) * d;
}

/// The 32 weights of a Q5_1 block, as dequantize_row_q5_1.
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_q5_1& b, float* y) noexcept {
  const float d = fp16_to_float(b.d), m = fp16_to_float(b.m);
  for (std::size_t j = 0; j < qk4_0; ++j)
    y[j] = static_cast<float>(five_bit_code(b.qh, b.qs, j)) * d + m;
}

/// The 32 weights of a Q8_0 block, as dequantize_row_q8_0.
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_q8_0& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < qk8_0; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
}

/// One F16 or BF16 weight (both exact in float32; an F16 NaN comes out quiet, as F16C converts it).
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_f16& b, float* y) noexcept {
  y[0] = fp16_to_float(b.bits);
}
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_bf16& b, float* y) noexcept {
  // ggml_compute_bf16_to_fp32: the bits moved up, so a signaling NaN stays one.
  y[0] = lowbit::detail::codec::bits_to_float(static_cast<std::uint32_t>(b.bits) << 16);
}

// Level forms (LevelGroup, ggml_types.hpp): one group of 32 per block.

/// Q4_0: u = nibble, s = d, b = -8 d.
inline void to_levels(const block_q4_0& b, std::uint8_t* levels, LevelGroup* groups) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < qk4_0; ++j) levels[j] = static_cast<std::uint8_t>(nibble(b.qs, j));
  groups[0] = {d, -8.0f * d};
}
/// Q4_1: u = nibble, s = d, b = m.
inline void to_levels(const block_q4_1& b, std::uint8_t* levels, LevelGroup* groups) noexcept {
  for (std::size_t j = 0; j < qk4_0; ++j) levels[j] = static_cast<std::uint8_t>(nibble(b.qs, j));
  groups[0] = {fp16_to_float(b.d), fp16_to_float(b.m)};
}
/// Q5_0: u = the 5-bit code, s = d, b = -16 d.
inline void to_levels(const block_q5_0& b, std::uint8_t* levels, LevelGroup* groups) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < qk4_0; ++j)
    levels[j] = static_cast<std::uint8_t>(five_bit_code(b.qh, b.qs, j));
  groups[0] = {d, -16.0f * d};
}
/// Q5_1: u = the 5-bit code, s = d, b = m.
inline void to_levels(const block_q5_1& b, std::uint8_t* levels, LevelGroup* groups) noexcept {
  for (std::size_t j = 0; j < qk4_0; ++j)
    levels[j] = static_cast<std::uint8_t>(five_bit_code(b.qh, b.qs, j));
  groups[0] = {fp16_to_float(b.d), fp16_to_float(b.m)};
}
/// Q8_0: u = q + 128, s = d, b = -128 d.
inline void to_levels(const block_q8_0& b, std::uint8_t* levels, LevelGroup* groups) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < qk8_0; ++j) levels[j] = static_cast<std::uint8_t>(b.qs[j] + 128);
  groups[0] = {d, -128.0f * d};
}

}  // namespace lowbit::ggml
