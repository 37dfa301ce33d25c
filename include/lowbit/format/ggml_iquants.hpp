// llama.cpp's non-linear 4-bit blocks IQ4_NL and IQ4_XS: 4-bit indices into ggml's table
// kvalues_iq4nl (16 int8 levels), scaled. The byte layout of one block (as ggml/src/ggml-common.h
// defines it), its dequantization bit for bit as ggml's dequantize_row_iq4_nl / _iq4_xs computes
// it, and its level form (to_levels, ggml_types.hpp).
//
//   IQ4_NL  32 weights, 18 bytes: fp16 d, 16 bytes of nibbles as Q4_0 (byte j: weight j low,
//           weight j + 16 high).                         value = d * kvalues_iq4nl[q]
//   IQ4_XS  256 weights (8 sub-blocks of 32), 136 bytes: fp16 d, uint16 scales_h (bits 2j..2j+1:
//           the top 2 bits of sub-block j's 6-bit scale), 4 bytes scales_l (nibble j % 2 of byte
//           j / 2: its low 4 bits), 128 bytes of nibbles, 16 bytes per sub-block as IQ4_NL.
//                                                        value = (d * (ls - 32)) * kvalues_iq4nl[q]
// All arithmetic is float32, one rounding per operation, in ggml's order (see ggml_legacy.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "lowbit/config.hpp"
#include "lowbit/format/ggml_legacy.hpp"  // nibble
#include "lowbit/format/ggml_types.hpp"

namespace lowbit::ggml {

/// Entry `index` (0..15) of ggml's kvalues_iq4nl, the 16 levels of IQ4_NL and IQ4_XS (a table
/// local to the function, so that device code can read it).
LOWBIT_HOST_DEVICE constexpr int iq4nl_value(int index) noexcept {
  constexpr std::int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                             1,    13,   25,  38,  53,  69,  89,  113};
  return kvalues_iq4nl[index];
}

struct block_iq4_nl {
  std::uint16_t d;              // fp16 bits
  std::uint8_t qs[qk4_nl / 2];  // nibbles: weight j low, weight j + 16 high
};
static_assert(sizeof(block_iq4_nl) == 18 && alignof(block_iq4_nl) == 2);

struct block_iq4_xs {
  std::uint16_t d;                   // fp16 bits
  std::uint16_t scales_h;            // the top 2 bits of each sub-block scale
  std::uint8_t scales_l[qk_k / 64];  // the low 4 bits, two per byte
  std::uint8_t qs[qk_k / 2];         // nibbles, 16 bytes per sub-block of 32
};
static_assert(sizeof(block_iq4_xs) == 136 && alignof(block_iq4_xs) == 2);

/// The 6-bit scale (0..63, before ggml subtracts 32) of sub-block j (0..7) of an IQ4_XS block.
LOWBIT_HOST_DEVICE constexpr int scale_iq4xs(const block_iq4_xs& b, std::size_t j) noexcept {
  return ((b.scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((b.scales_h >> (2 * j)) & 3) << 4);
}

/// The 32 weights of an IQ4_NL block, as dequantize_row_iq4_nl.
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_iq4_nl& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < qk4_nl; ++j)
    y[j] = d * static_cast<float>(iq4nl_value(nibble(b.qs, j)));
}

/// The 256 weights of an IQ4_XS block, as dequantize_row_iq4_xs.
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_iq4_xs& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < qk_k / 32; ++j) {
    const float dl = d * static_cast<float>(scale_iq4xs(b, j) - 32);
    for (std::size_t l = 0; l < 32; ++l)
      y[32 * j + l] = dl * static_cast<float>(iq4nl_value(nibble(b.qs + 16 * j, l)));
  }
}

// Level forms (LevelGroup, ggml_types.hpp): u indexes kvalues_iq4nl (iq4nl_value), no bias.

/// IQ4_NL: u = nibble, s = d.
inline void to_levels(const block_iq4_nl& b, std::uint8_t* levels, LevelGroup* groups) noexcept {
  for (std::size_t j = 0; j < qk4_nl; ++j) levels[j] = static_cast<std::uint8_t>(nibble(b.qs, j));
  groups[0] = {fp16_to_float(b.d), 0.0f};
}
/// IQ4_XS: u = nibble, s = d (ls - 32) per sub-block of 32.
inline void to_levels(const block_iq4_xs& b, std::uint8_t* levels, LevelGroup* groups) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < qk_k / 32; ++j) {
    for (std::size_t l = 0; l < 32; ++l)
      levels[32 * j + l] = static_cast<std::uint8_t>(nibble(b.qs + 16 * j, l));
    groups[j] = {d * static_cast<float>(scale_iq4xs(b, j) - 32), 0.0f};
  }
}

}  // namespace lowbit::ggml
