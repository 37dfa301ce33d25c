// llama.cpp's K-quants: super-blocks of 256 weights in sub-blocks of 16 or 32, each sub-block with
// its own scale (and min) coded against the super-block's fp16 d (and dmin). The byte layout of
// one block (as ggml/src/ggml-common.h defines it), its dequantization bit for bit as ggml's
// dequantize_row_q2_K .. _q6_K computes it, and its level form (to_levels, ggml_types.hpp).
//
//   Q2_K  84 bytes: 16 bytes of scales (sub-block j of 16: scale sc = low nibble, min m = high
//         nibble of scales[j]), 64 bytes of 2-bit codes, fp16 d, fp16 dmin. Each half of 128
//         weights takes 32 bytes: weight 32 i + l (i = 0..3, l = 0..31) is bits 2i..2i+1 of byte l.
//                                                      value = (d * sc) * q - dmin * m
//   Q3_K  110 bytes: 32 bytes hmask, 64 bytes of 2-bit low codes (as Q2_K), 12 bytes of 6-bit
//         scales (16 of them, scale_q3k below), fp16 d. Weight 128 h + 32 i + l takes its high
//         bit from bit 4 h + i of hmask[l]; the code is low - 4 where that bit is clear.
//         value = (d * (sc - 32)) * (low - (hbit ? 0 : 4))
//   Q4_K  144 bytes: fp16 d, fp16 dmin, 12 bytes of 6-bit sub-block scales sc and mins m
//         (scale_min_k4 below), then 128 bytes of nibbles: each 64 weights take 32 bytes, the low
//         nibbles the first 32 weights, the high nibbles the next 32.
//                                                      value = (d * sc) * q - dmin * m
//   Q5_K  176 bytes: fp16 d, fp16 dmin, 12 bytes of scales and mins as Q4_K, 32 bytes qh, 128 bytes
//         of nibbles as Q4_K. Weight 64 c + l takes its fifth bit from bit 2 c of qh[l], weight
//         64 c + 32 + l from bit 2 c + 1.           value = (d * sc) * q - dmin * m
//   Q6_K  210 bytes: 128 bytes ql (low nibbles), 64 bytes qh (2 high bits), 16 int8 scales, fp16 d.
//         Each half h of 128 weights takes ql[64 h ..], qh[32 h ..]: weight 128 h + 32 i + l has
//         the low (i < 2) or high (i >= 2) nibble of ql[64 h + 32 (i % 2) + l] and bits 2i..2i+1
//         of qh[32 h + l].                             value = (d * sc) * (q - 32)
// Sub-block j of 16 is weights 16 j .. 16 j + 15 (Q2_K, Q3_K, Q6_K); of 32, 32 j .. 32 j + 31.
// All arithmetic is float32, one rounding per operation, in ggml's order (see ggml_legacy.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "lowbit/config.hpp"
#include "lowbit/format/ggml_types.hpp"

namespace lowbit::ggml {

struct block_q2_k {
  std::uint8_t scales[qk_k / 16];  // per sub-block of 16: scale in the low, min in the high nibble
  std::uint8_t qs[qk_k / 4];       // 2-bit codes
  std::uint16_t d;                 // fp16 bits: the scale of the sub-block scales
  std::uint16_t dmin;              // fp16 bits: the scale of the sub-block mins
};
static_assert(sizeof(block_q2_k) == 84 && alignof(block_q2_k) == 2);

struct block_q3_k {
  std::uint8_t hmask[qk_k / 8];       // the high bits of the 3-bit codes
  std::uint8_t qs[qk_k / 4];          // the low 2 bits, as Q2_K
  std::uint8_t scales[k_scale_size];  // 16 scales of 6 bits (scale_q3k)
  std::uint16_t d;                    // fp16 bits
};
static_assert(sizeof(block_q3_k) == 110 && alignof(block_q3_k) == 2);

struct block_q4_k {
  std::uint16_t d;                    // fp16 bits: the scale of the sub-block scales
  std::uint16_t dmin;                 // fp16 bits: the scale of the sub-block mins
  std::uint8_t scales[k_scale_size];  // 8 scales and 8 mins of 6 bits (scale_min_k4)
  std::uint8_t qs[qk_k / 2];          // nibbles, 32 bytes per 64 weights
};
static_assert(sizeof(block_q4_k) == 144 && alignof(block_q4_k) == 2);

struct block_q5_k {
  std::uint16_t d;
  std::uint16_t dmin;
  std::uint8_t scales[k_scale_size];  // as Q4_K
  std::uint8_t qh[qk_k / 8];          // the fifth bits
  std::uint8_t qs[qk_k / 2];          // the low nibbles, as Q4_K
};
static_assert(sizeof(block_q5_k) == 176 && alignof(block_q5_k) == 2);

struct block_q6_k {
  std::uint8_t ql[qk_k / 2];      // the low 4 bits
  std::uint8_t qh[qk_k / 4];      // the high 2 bits
  std::int8_t scales[qk_k / 16];  // per sub-block of 16
  std::uint16_t d;                // fp16 bits
};
static_assert(sizeof(block_q6_k) == 210 && alignof(block_q6_k) == 2);

/// The 6-bit scale and min of sub-block j (0..7) of a Q4_K or Q5_K block (ggml's
/// get_scale_min_k4): sub-blocks 0..3 keep their scale in the low 6 bits of scales[j] and their
/// min in the low 6 bits of scales[j + 4]; sub-blocks 4..7 keep the low 4 bits of scale and min in
/// the low and high nibble of scales[j + 4] and their top 2 bits in the top 2 bits of scales[j - 4]
/// and scales[j].
struct ScaleMin {
  std::uint8_t scale;
  std::uint8_t min;
};
LOWBIT_HOST_DEVICE constexpr ScaleMin scale_min_k4(int j, const std::uint8_t* scales) noexcept {
  if (j < 4)
    return {static_cast<std::uint8_t>(scales[j] & 63),
            static_cast<std::uint8_t>(scales[j + 4] & 63)};
  return {static_cast<std::uint8_t>((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4)),
          static_cast<std::uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4))};
}

/// The 6-bit scale (0..63, before ggml subtracts 32) of sub-block j (0..15) of a Q3_K block, as
/// dequantize_row_q3_K unpacks its 12 bytes: the low 4 bits are the low nibbles of bytes 0..7
/// (sub-blocks 0..7) then their high nibbles (8..15); the top 2 bits of sub-block j are bits
/// 2 (j / 4) .. 2 (j / 4) + 1 of byte 8 + j % 4.
LOWBIT_HOST_DEVICE constexpr int scale_q3k(int j, const std::uint8_t* scales) noexcept {
  const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
  const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
  return low | (high << 4);
}

/// The 2-bit code of weight i (0..255) of a Q2_K or Q3_K block's qs.
LOWBIT_HOST_DEVICE constexpr int two_bit_code(const std::uint8_t* qs, std::size_t i) noexcept {
  const std::size_t half = i / 128, quarter = i % 128 / 32, l = i % 32;
  return (qs[32 * half + l] >> (2 * quarter)) & 3;
}
/// The 3-bit level u = low | high << 2 of weight i of a Q3_K block (the code is u - 4).
LOWBIT_HOST_DEVICE constexpr int q3k_level(const block_q3_k& b, std::size_t i) noexcept {
  const std::size_t high_bit = 4 * (i / 128) + i % 128 / 32;
  return two_bit_code(b.qs, i) | (((b.hmask[i % 32] >> high_bit) & 1) << 2);
}
/// The 5-bit code of weight i of a Q5_K block.
LOWBIT_HOST_DEVICE constexpr int q5k_code(const block_q5_k& b, std::size_t i) noexcept {
  const std::size_t chunk = i / 64, l = i % 32, high = i % 64 / 32;
  const int low = high == 0 ? b.qs[32 * chunk + l] & 0xF : b.qs[32 * chunk + l] >> 4;
  return low | (((b.qh[l] >> (2 * chunk + high)) & 1) << 4);
}
/// The 6-bit code (0..63, before ggml subtracts 32) of weight i of a Q6_K block.
LOWBIT_HOST_DEVICE constexpr int q6k_code(const block_q6_k& b, std::size_t i) noexcept {
  const std::size_t half = i / 128, quarter = i % 128 / 32, l = i % 32;
  const std::uint8_t low_byte = b.ql[64 * half + 32 * (quarter % 2) + l];
  const int low = quarter < 2 ? low_byte & 0xF : low_byte >> 4;
  return low | (((b.qh[32 * half + l] >> (2 * quarter)) & 3) << 4);
}

/// The 256 weights of a Q2_K block, as dequantize_row_q2_K.
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_q2_k& b, float* y) noexcept {
  const float d = fp16_to_float(b.d), dmin = fp16_to_float(b.dmin);
  for (std::size_t j = 0; j < qk_k / 16; ++j) {
    const float dl = d * static_cast<float>(b.scales[j] & 0xF);
    const float ml = dmin * static_cast<float>(b.scales[j] >> 4);
    for (std::size_t i = 16 * j; i < 16 * j + 16; ++i)
      y[i] = dl * static_cast<float>(two_bit_code(b.qs, i)) - ml;
  }
}

/// The 256 weights of a Q3_K block, as dequantize_row_q3_K.
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_q3_k& b, float* y) noexcept {
  const float d_all = fp16_to_float(b.d);
  for (std::size_t j = 0; j < qk_k / 16; ++j) {
    const float dl = d_all * static_cast<float>(scale_q3k(static_cast<int>(j), b.scales) - 32);
    for (std::size_t i = 16 * j; i < 16 * j + 16; ++i)
      y[i] = dl * static_cast<float>(q3k_level(b, i) - 4);
  }
}

/// The 256 weights of a Q4_K block, as dequantize_row_q4_K.
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_q4_k& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  const float dmin = fp16_to_float(b.dmin);
  const std::uint8_t* q = b.qs;
  for (int j = 0; j < 8; j += 2, q += 32, y += 64) {
    const ScaleMin low = scale_min_k4(j, b.scales), high = scale_min_k4(j + 1, b.scales);
    const float d1 = d * static_cast<float>(low.scale), m1 = dmin * static_cast<float>(low.min);
    const float d2 = d * static_cast<float>(high.scale), m2 = dmin * static_cast<float>(high.min);
    for (std::size_t l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (std::size_t l = 0; l < 32; ++l) y[l + 32] = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

/// The 256 weights of a Q5_K block, as dequantize_row_q5_K.
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_q5_k& b, float* y) noexcept {
  const float d = fp16_to_float(b.d), dmin = fp16_to_float(b.dmin);
  for (std::size_t j = 0; j < 8; ++j) {
    const ScaleMin sm = scale_min_k4(static_cast<int>(j), b.scales);
    const float dl = d * static_cast<float>(sm.scale), ml = dmin * static_cast<float>(sm.min);
    for (std::size_t i = 32 * j; i < 32 * j + 32; ++i)
      y[i] = dl * static_cast<float>(q5k_code(b, i)) - ml;
  }
}

/// The 256 weights of a Q6_K block, as dequantize_row_q6_K.
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_q6_k& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < qk_k / 16; ++j) {
    const float dl = d * static_cast<float>(b.scales[j]);
    for (std::size_t i = 16 * j; i < 16 * j + 16; ++i)
      y[i] = dl * static_cast<float>(q6k_code(b, i) - 32);
  }
}

// Level forms (LevelGroup, ggml_types.hpp): groups are the sub-blocks.

/// Q2_K: u = the 2-bit code, s = d sc, b = -(dmin m).
inline void to_levels(const block_q2_k& b, std::uint8_t* levels, LevelGroup* groups) noexcept {
  const float d = fp16_to_float(b.d), dmin = fp16_to_float(b.dmin);
  for (std::size_t i = 0; i < qk_k; ++i)
    levels[i] = static_cast<std::uint8_t>(two_bit_code(b.qs, i));
  for (std::size_t j = 0; j < qk_k / 16; ++j)
    groups[j] = {d * static_cast<float>(b.scales[j] & 0xF),
                 -(dmin * static_cast<float>(b.scales[j] >> 4))};
}
/// Q3_K: u = low | high << 2, s = d (sc - 32), b = -4 s.
inline void to_levels(const block_q3_k& b, std::uint8_t* levels, LevelGroup* groups) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t i = 0; i < qk_k; ++i) levels[i] = static_cast<std::uint8_t>(q3k_level(b, i));
  for (int j = 0; j < 16; ++j) {
    const float s = d * static_cast<float>(scale_q3k(j, b.scales) - 32);
    groups[j] = {s, -4.0f * s};
  }
}
/// Q4_K: u = nibble, s = d sc, b = -(dmin m).
inline void to_levels(const block_q4_k& b, std::uint8_t* levels, LevelGroup* groups) noexcept {
  const float d = fp16_to_float(b.d), dmin = fp16_to_float(b.dmin);
  for (std::size_t i = 0; i < qk_k; ++i) {
    const std::uint8_t byte = b.qs[32 * (i / 64) + i % 32];
    levels[i] = static_cast<std::uint8_t>(i % 64 < 32 ? byte & 0xF : byte >> 4);
  }
  for (int j = 0; j < 8; ++j) {
    const ScaleMin sm = scale_min_k4(j, b.scales);
    groups[j] = {d * static_cast<float>(sm.scale), -(dmin * static_cast<float>(sm.min))};
  }
}
/// Q5_K: u = the 5-bit code, s = d sc, b = -(dmin m).
inline void to_levels(const block_q5_k& b, std::uint8_t* levels, LevelGroup* groups) noexcept {
  const float d = fp16_to_float(b.d), dmin = fp16_to_float(b.dmin);
  for (std::size_t i = 0; i < qk_k; ++i) levels[i] = static_cast<std::uint8_t>(q5k_code(b, i));
  for (int j = 0; j < 8; ++j) {
    const ScaleMin sm = scale_min_k4(j, b.scales);
    groups[j] = {d * static_cast<float>(sm.scale), -(dmin * static_cast<float>(sm.min))};
  }
}
/// Q6_K: u = the 6-bit code, s = d sc, b = -32 s.
inline void to_levels(const block_q6_k& b, std::uint8_t* levels, LevelGroup* groups) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t i = 0; i < qk_k; ++i) levels[i] = static_cast<std::uint8_t>(q6k_code(b, i));
  for (std::size_t j = 0; j < qk_k / 16; ++j) {
    const float s = d * static_cast<float>(b.scales[j]);
    groups[j] = {s, -32.0f * s};
  }
}

}  // namespace lowbit::ggml
