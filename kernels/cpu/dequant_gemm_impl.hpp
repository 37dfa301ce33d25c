// The CPU dequantize-GEMM kernel (see packed_weights.hpp for the layout), written once over an
// xsimd architecture and instantiated per instruction set by dequant_gemm_<isa>.cpp. Each of those
// wraps this file in its own namespace (LOWBIT_KERNEL_NAMESPACE), so no inline function compiled
// with AVX-512 flags can stand in for the AVX2 or scalar build's copy at link time.
//
// Per output row, per group: the 32-weight blocks are decoded to floats (the ISA-specific part:
// unpack<Decode>) and multiplied into a group accumulator with FMA; at the group's end the
// accumulator is scaled into the row's total. A tile of T activation rows shares each decoded
// block (T = 1 is the batch-1 GEMV; larger T amortizes the decoding over the batch). From batch
// panel_min_batch on, panels of rows are instead dequantized once into floats and multiplied in
// register tiles (gemm_panels). Output rows run in parallel (OpenMP).
#pragma once

#include <omp.h>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#if !defined(LOWBIT_KERNEL_SCALAR)
#include <xsimd/xsimd.hpp>
#endif

#include "lowbit/format/half.hpp"
#include "packed_weights.hpp"

namespace lowbit::kernels::cpu::LOWBIT_KERNEL_NAMESPACE {

#if defined(LOWBIT_KERNEL_SCALAR)
// xsimd 8.1 has no one-lane architecture: a float is the batch.
using Batch = float;
inline constexpr std::size_t lanes = 1;
inline Batch load(const float* p) noexcept { return *p; }
inline Batch splat(float x) noexcept { return x; }
inline Batch multiply_add(Batch a, Batch b, Batch c) noexcept { return a * b + c; }
inline float sum_lanes(Batch b) noexcept { return b; }
#else
using Batch = xsimd::batch<float, LOWBIT_KERNEL_ARCH>;
inline constexpr std::size_t lanes = Batch::size;
inline Batch load(const float* p) noexcept { return Batch::load_unaligned(p); }
inline Batch splat(float x) noexcept { return Batch(x); }
inline Batch multiply_add(Batch a, Batch b, Batch c) noexcept { return xsimd::fma(a, b, c); }
inline float sum_lanes(Batch b) noexcept { return xsimd::hadd(b); }
#endif
inline constexpr std::size_t per_block = block_size / lanes;  // float vectors per 32 weights
inline constexpr std::size_t per_half = per_block / 2;        // and per 16

/// A lut4 table held in registers.
struct Table {
#if defined(LOWBIT_KERNEL_AVX512)
  __m512 values;
  explicit Table(const float* t) noexcept : values(_mm512_loadu_ps(t)) {}
#elif defined(LOWBIT_KERNEL_AVX2)
  __m256 low, high;
  explicit Table(const float* t) noexcept : low(_mm256_loadu_ps(t)), high(_mm256_loadu_ps(t + 8)) {}
#else
  const float* values;
  explicit Table(const float* t) noexcept : values(t) {}
#endif
};

/// Decodes one block of 32 codes to floats, in column order.
template <Decode D>
inline void unpack(const std::uint8_t* block, const Table& table, Batch* out) noexcept;

#if defined(LOWBIT_KERNEL_AVX512)
/// The 16 bytes of a 4-bit block, byte j zero-extended into 32-bit lane j: broadcast to the four
/// 128-bit lanes and one in-lane byte shuffle (cheaper than a cross-lane vpmovzxbd). The low
/// nibble of lane j is weight j, its high nibble weight j + 16.
inline __m512i block_bytes_in_lanes(const std::uint8_t* block) noexcept {
  const __m512i spread = _mm512_set_epi32(
      -0x7f7f7ff1, -0x7f7f7ff2, -0x7f7f7ff3, -0x7f7f7ff4, -0x7f7f7ff5, -0x7f7f7ff6, -0x7f7f7ff7,
      -0x7f7f7ff8, -0x7f7f7ff9, -0x7f7f7ffa, -0x7f7f7ffb, -0x7f7f7ffc, -0x7f7f7ffd, -0x7f7f7ffe,
      -0x7f7f7fff, -0x7f7f8000);  // 0x808080jj: byte jj of the lane's copy, then three zeros
  return _mm512_shuffle_epi8(
      _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block))), spread);
}
template <>
inline void unpack<Decode::int4>(const std::uint8_t* block, const Table&, Batch* out) noexcept {
  const __m512i bytes = block_bytes_in_lanes(block);
  out[0] = _mm512_cvtepi32_ps(_mm512_and_si512(bytes, _mm512_set1_epi32(0x0F)));
  out[1] = _mm512_cvtepi32_ps(_mm512_srli_epi32(bytes, 4));
}
template <>
inline void unpack<Decode::lut4>(const std::uint8_t* block, const Table& table,
                                 Batch* out) noexcept {
  // vpermps reads only the low four bits of each index: no mask needed.
  const __m512i bytes = block_bytes_in_lanes(block);
  out[0] = _mm512_permutexvar_ps(bytes, table.values);
  out[1] = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table.values);
}
template <>
inline void unpack<Decode::int8>(const std::uint8_t* block, const Table&, Batch* out) noexcept {
  for (std::size_t j = 0; j < 2; ++j) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * j));
    out[j] = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes));
  }
}
template <>
inline void unpack<Decode::e4m3>(const std::uint8_t* block, const Table&, Batch* out) noexcept {
  for (std::size_t j = 0; j < 2; ++j) {
    const __m256i b =
        _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * j)));
    // FP16 bits: sign to bit 15, exponent and mantissa shifted under it (the value / 2^8).
    const __m256i half =
        _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(b, _mm256_set1_epi16(0x80)), 8),
                        _mm256_slli_epi16(_mm256_and_si256(b, _mm256_set1_epi16(0x7F)), 7));
    out[j] = _mm512_cvtph_ps(half);
  }
}
template <>
inline void unpack<Decode::f16>(const std::uint8_t* block, const Table&, Batch* out) noexcept {
  for (std::size_t j = 0; j < 2; ++j)
    out[j] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 32 * j)));
}
template <>
inline void unpack<Decode::bf16>(const std::uint8_t* block, const Table&, Batch* out) noexcept {
  // A BF16 is the top half of a float32.
  for (std::size_t j = 0; j < 2; ++j)
    out[j] = _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 32 * j))),
        16));
}
#elif defined(LOWBIT_KERNEL_AVX2)
inline void nibbles(const std::uint8_t* block, __m128i& low, __m128i& high) noexcept {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block));
  const __m128i mask = _mm_set1_epi8(0x0F);
  low = _mm_and_si128(bytes, mask);
  high = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
}
template <>
inline void unpack<Decode::int4>(const std::uint8_t* block, const Table&, Batch* out) noexcept {
  __m128i low, high;
  nibbles(block, low, high);
  out[0] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(low));
  out[1] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(low, 8)));
  out[2] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(high));
  out[3] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(high, 8)));
}
/// 8 codes (0..15, in 32-bit lanes) through the 16-entry table: two 8-entry permutes and a blend
/// on bit 3.
inline __m256 lookup(__m256i index, const Table& table) noexcept {
  const __m256 a = _mm256_permutevar8x32_ps(table.low, index);
  const __m256 b = _mm256_permutevar8x32_ps(table.high, index);
  const __m256i upper = _mm256_cmpgt_epi32(index, _mm256_set1_epi32(7));
  return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(upper));
}
template <>
inline void unpack<Decode::lut4>(const std::uint8_t* block, const Table& table,
                                 Batch* out) noexcept {
  __m128i low, high;
  nibbles(block, low, high);
  out[0] = lookup(_mm256_cvtepu8_epi32(low), table);
  out[1] = lookup(_mm256_cvtepu8_epi32(_mm_srli_si128(low, 8)), table);
  out[2] = lookup(_mm256_cvtepu8_epi32(high), table);
  out[3] = lookup(_mm256_cvtepu8_epi32(_mm_srli_si128(high, 8)), table);
}
template <>
inline void unpack<Decode::int8>(const std::uint8_t* block, const Table&, Batch* out) noexcept {
  for (std::size_t j = 0; j < 4; ++j) {
    const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(block + 8 * j));
    out[j] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
  }
}
template <>
inline void unpack<Decode::e4m3>(const std::uint8_t* block, const Table&, Batch* out) noexcept {
  for (std::size_t j = 0; j < 4; ++j) {
    const __m128i b =
        _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(block + 8 * j)));
    const __m128i half = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(b, _mm_set1_epi16(0x80)), 8),
                                      _mm_slli_epi16(_mm_and_si128(b, _mm_set1_epi16(0x7F)), 7));
    out[j] = _mm256_cvtph_ps(half);
  }
}
template <>
inline void unpack<Decode::f16>(const std::uint8_t* block, const Table&, Batch* out) noexcept {
  for (std::size_t j = 0; j < 4; ++j)
    out[j] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * j)));
}
template <>
inline void unpack<Decode::bf16>(const std::uint8_t* block, const Table&, Batch* out) noexcept {
  for (std::size_t j = 0; j < 4; ++j)
    out[j] = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * j))),
        16));
}
#else
template <>
inline void unpack<Decode::int4>(const std::uint8_t* block, const Table&, Batch* out) noexcept {
  for (std::size_t i = 0; i < 16; ++i) {
    out[i] = static_cast<float>(block[i] & 0x0F);
    out[i + 16] = static_cast<float>(block[i] >> 4);
  }
}
template <>
inline void unpack<Decode::lut4>(const std::uint8_t* block, const Table& table,
                                 Batch* out) noexcept {
  for (std::size_t i = 0; i < 16; ++i) {
    out[i] = table.values[block[i] & 0x0F];
    out[i + 16] = table.values[block[i] >> 4];
  }
}
template <>
inline void unpack<Decode::int8>(const std::uint8_t* block, const Table&, Batch* out) noexcept {
  for (std::size_t i = 0; i < 32; ++i) out[i] = static_cast<float>(block[i]);
}
/// E4M3 / 2^8, exactly (what the vector builds get from the FP16 bit trick).
inline float e4m3_over_256(std::uint8_t code) noexcept {
  const int exponent = (code >> 3) & 0x0F, mantissa = code & 0x07;
  // 2^-9 and 2^-15 / 8 as exact float constants: normal (8 + m) 2^(e - 18), subnormal m 2^-17.
  float magnitude = static_cast<float>(exponent == 0 ? mantissa : 8 + mantissa) * 0x1p-17f;
  for (int e = 1; e < exponent; ++e) magnitude *= 2.0f;
  return (code & 0x80) ? -magnitude : magnitude;
}
template <>
inline void unpack<Decode::e4m3>(const std::uint8_t* block, const Table&, Batch* out) noexcept {
  for (std::size_t i = 0; i < 32; ++i) out[i] = e4m3_over_256(block[i]);
}
inline std::uint16_t bits16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
template <>
inline void unpack<Decode::f16>(const std::uint8_t* block, const Table&, Batch* out) noexcept {
  for (std::size_t i = 0; i < 32; ++i)
    out[i] = float16::from_bits(bits16(block + 2 * i)).to_float();
}
template <>
inline void unpack<Decode::bf16>(const std::uint8_t* block, const Table&, Batch* out) noexcept {
  for (std::size_t i = 0; i < 32; ++i)
    out[i] = bfloat16::from_bits(bits16(block + 2 * i)).to_float();
}
#endif

template <std::size_t T, std::size_t Chains>
using Accumulators = Batch[T][Chains];

/// acc[t][Chain + j] += decoded vector j of the block times x_t's: every index a constant, so the
/// accumulators stay in registers.
template <Decode D, std::size_t T, std::size_t Chains, std::size_t Chain, std::size_t First,
          std::size_t Count>
inline void multiply_block(const std::uint8_t* block, const Table& table, const float* x,
                           std::size_t x_stride, Accumulators<T, Chains>& acc) noexcept {
  Batch unpacked[per_block];
  unpack<D>(block, table, unpacked);
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t j = 0; j < Count; ++j)
      acc[t][Chain + j] = multiply_add(
          unpacked[First + j], load(x + t * x_stride + (First + j) * lanes), acc[t][Chain + j]);
}

/// multiply_block for Copies consecutive blocks, block c into the accumulators from c * per_block.
template <Decode D, std::size_t T, std::size_t Chains, std::size_t... Copy>
inline void multiply_blocks(const std::uint8_t* codes, const Table& table, const float* x,
                            std::size_t x_stride, Accumulators<T, Chains>& acc,
                            std::index_sequence<Copy...>) noexcept {
  (multiply_block<D, T, Chains, Copy * per_block, 0, per_block>(
       codes + Copy * block_bytes(D), table, x + Copy * block_size, x_stride, acc),
   ...);
}

/// Output row `row` for activation rows [b0, b0 + T). HalfGroups: groups of 16 (two per block).
/// Each vector position of a block (and, for T <= 2, each of two consecutive blocks) has its own
/// accumulator: a single chain of dependent FMAs would wait on the FMA latency at every block.
template <Decode D, std::size_t T, bool HalfGroups>
inline void tile(const GemmArgs& a, std::size_t row, std::size_t b0) noexcept {
  const PackedWeights& w = *a.w;
  const std::uint8_t* codes = w.row_codes(row);
  const float* scales = w.scales.data() + row * w.groups;
  constexpr std::size_t code_bytes = cpu::block_bytes(D);
  // Blocks in flight (at batch 1, four measured slower than two: the decoding, not the FMA
  // latency, is the bound).
  constexpr std::size_t copies = T <= 2 && !HalfGroups ? 2 : 1;
  constexpr std::size_t chains = per_block * copies;
  const std::size_t blocks_per_row = w.padded_cols / block_size;
  const std::size_t stride = w.padded_cols;
  const float* x0 = a.x + b0 * stride;
  alignas(64) static constexpr float no_table[16] = {};  // read by no decoder but lut4
  const Table table(D == Decode::lut4 ? w.table(row) : no_table);
  Batch total[T];
  Accumulators<T, chains> acc;
  for (std::size_t t = 0; t < T; ++t) total[t] = splat(0.0f);
  auto clear = [&acc] {
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t c = 0; c < chains; ++c) acc[t][c] = splat(0.0f);
  };
  auto flush = [&acc, &total, scales](std::size_t g) {
    const Batch scale = splat(scales[g]);
    for (std::size_t t = 0; t < T; ++t) {
      Batch sum = acc[t][0];
      for (std::size_t c = 1; c < chains; ++c) sum = sum + acc[t][c];
      total[t] = multiply_add(sum, scale, total[t]);
    }
  };
  if constexpr (HalfGroups) {
    for (std::size_t blk = 0; blk < blocks_per_row; ++blk) {
      const std::uint8_t* block = codes + blk * code_bytes;
      const float* x = x0 + blk * block_size;
      clear();
      multiply_block<D, T, chains, 0, 0, per_half>(block, table, x, stride, acc);
      flush(2 * blk);
      clear();
      multiply_block<D, T, chains, 0, per_half, per_half>(block, table, x, stride, acc);
      flush(2 * blk + 1);
    }
  } else {
    const std::size_t blocks_per_group = w.group / block_size;
    for (std::size_t g = 0; g < w.groups; ++g) {
      clear();
      // The last group of a row may be shorter (a ragged row: the Scheme's last group).
      const std::size_t first_block = g * blocks_per_group;
      const std::size_t end_block = first_block + blocks_per_group < blocks_per_row
                                        ? first_block + blocks_per_group
                                        : blocks_per_row;
      std::size_t blk = first_block;
      if constexpr (copies > 1)
        for (; blk + copies <= end_block; blk += copies)
          multiply_blocks<D, T, chains>(codes + blk * code_bytes, table, x0 + blk * block_size,
                                        stride, acc, std::make_index_sequence<copies>{});
      for (; blk < end_block; ++blk)
        multiply_block<D, T, chains, 0, 0, per_block>(codes + blk * code_bytes, table,
                                                      x0 + blk * block_size, stride, acc);
      flush(g);
    }
  }
  // The zero points: sum_g bias_g * (sum of x over g), a dot product over the row's groups.
  if (w.has_bias) {
    const float* biases = w.biases.data() + row * w.groups;
    for (std::size_t t = 0; t < T; ++t) {
      const float* sums = a.x_sums + (b0 + t) * w.groups;
      std::size_t g = 0;
      for (; g + lanes <= w.groups; g += lanes)
        total[t] = multiply_add(load(biases + g), load(sums + g), total[t]);
      float rest = 0.0f;
      for (; g < w.groups; ++g) rest += biases[g] * sums[g];
      a.y[(b0 + t) * a.y_stride + row] = sum_lanes(total[t]) + rest;
    }
    return;
  }
  for (std::size_t t = 0; t < T; ++t) a.y[(b0 + t) * a.y_stride + row] = sum_lanes(total[t]);
}

/// Batch 1, rows [row, row + R): each activation vector is loaded once for R rows. Used when a
/// row's activations do not fit in L1: a single-row GEMV would reload them from L2 for every
/// output row (8 bytes of x per byte of 4-bit codes, more than L2 delivers).
template <Decode D, std::size_t R>
inline void gemv_rows(const GemmArgs& a, std::size_t row) noexcept {
  const PackedWeights& w = *a.w;
  constexpr std::size_t code_bytes = cpu::block_bytes(D);
  const std::size_t blocks_per_row = w.padded_cols / block_size;
  const std::size_t blocks_per_group = w.group / block_size;
  alignas(64) static constexpr float no_table[16] = {};  // read by no decoder but lut4
  const std::uint8_t* codes[R];
  const float* scales[R];
  Batch total[R], acc[R][per_block];
  for (std::size_t r = 0; r < R; ++r) {
    codes[r] = w.row_codes(row + r);
    scales[r] = w.scales.data() + (row + r) * w.groups;
    total[r] = splat(0.0f);
  }
  for (std::size_t g = 0; g < w.groups; ++g) {
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t j = 0; j < per_block; ++j) acc[r][j] = splat(0.0f);
    const std::size_t first_block = g * blocks_per_group;
    const std::size_t end_block = first_block + blocks_per_group < blocks_per_row
                                      ? first_block + blocks_per_group
                                      : blocks_per_row;
    for (std::size_t blk = first_block; blk < end_block; ++blk) {
      Batch x[per_block];
      for (std::size_t j = 0; j < per_block; ++j) x[j] = load(a.x + blk * block_size + j * lanes);
      for (std::size_t r = 0; r < R; ++r) {
        const Table table(D == Decode::lut4 ? w.table(row + r) : no_table);
        Batch unpacked[per_block];
        unpack<D>(codes[r] + blk * code_bytes, table, unpacked);
        for (std::size_t j = 0; j < per_block; ++j)
          acc[r][j] = multiply_add(unpacked[j], x[j], acc[r][j]);
      }
    }
    for (std::size_t r = 0; r < R; ++r) {
      Batch sum = acc[r][0];
      for (std::size_t j = 1; j < per_block; ++j) sum = sum + acc[r][j];
      total[r] = multiply_add(sum, splat(scales[r][g]), total[r]);
    }
  }
  for (std::size_t r = 0; r < R; ++r) {
    float rest = 0.0f;
    if (w.has_bias) {
      const float* biases = w.biases.data() + (row + r) * w.groups;
      std::size_t g = 0;
      for (; g + lanes <= w.groups; g += lanes)
        total[r] = multiply_add(load(biases + g), load(a.x_sums + g), total[r]);
      for (; g < w.groups; ++g) rest += biases[g] * a.x_sums[g];
    }
    a.y[row + r] = sum_lanes(total[r]) + rest;
  }
}

/// Rows per batch-1 step of gemv_rows: what the registers hold (accumulators, a decoded block, x).
/// AVX-512, 4096 x 11008 int4 g128 on one thread: 4 rows 14.6 GB/s, 8 rows 18.0, 12 rows 17.1,
/// 16 rows 7.6 (spilled).
inline constexpr std::size_t row_tile = lanes >= 16 ? 8 : (lanes >= 8 ? 2 : 1);

/// Activations longer than this (in floats) leave L1 during a row: batch 1 then shares each load
/// over row_tile rows. Below it, one row at a time is faster (fewer concurrent weight streams).
inline constexpr std::size_t l1_resident_cols = 6144;

/// Larger batches: panels of R output rows are dequantized once into floats (scale and zero point
/// applied), then multiplied with every activation row in register tiles of TB activation rows x
/// R output rows, over K in chunks that stay in L1. Each weight is then decoded once per call
/// instead of once per tile of activation rows, and each loaded vector feeds R (or TB) FMAs. The
/// sizes are the fastest of those measured on Zen 5 (AVX-512: 6 x 4 against 4 x 4, 4 x 6, 8 x 2,
/// 2 x 8; chunks of 1024 against 512, 2048, 4096).
inline constexpr std::size_t panel_rows = lanes >= 16 ? 6 : 4;
inline constexpr std::size_t panel_batch = lanes >= 16 ? 4 : 2;
inline constexpr std::size_t panel_chunk = 1024;  // columns per K chunk (4 KB of each row)

/// Rows [row, row + R) of w as floats: panel[r * padded_cols + k].
template <Decode D, std::size_t R>
inline void dequantize_panel(const PackedWeights& w, std::size_t row, float* panel) noexcept {
  alignas(64) static constexpr float no_table[16] = {};
  const std::size_t blocks_per_row = w.padded_cols / block_size;
  for (std::size_t r = 0; r < R; ++r) {
    const std::uint8_t* codes = w.row_codes(row + r);
    const float* scales = w.scales.data() + (row + r) * w.groups;
    const float* biases = w.has_bias ? w.biases.data() + (row + r) * w.groups : nullptr;
    const Table table(D == Decode::lut4 ? w.table(row + r) : no_table);
    float* out = panel + r * w.padded_cols;
    for (std::size_t blk = 0; blk < blocks_per_row; ++blk) {
      Batch unpacked[per_block];
      unpack<D>(codes + blk * block_bytes(D), table, unpacked);
      for (std::size_t j = 0; j < per_block; ++j) {
        const std::size_t col = blk * block_size + j * lanes;
        const std::size_t g = col / w.group;  // groups are whole vectors (multiples of 16)
        const Batch value = biases ? multiply_add(unpacked[j], splat(scales[g]), splat(biases[g]))
                                   : unpacked[j] * splat(scales[g]);
#if defined(LOWBIT_KERNEL_SCALAR)
        out[col] = value;
#else
        value.store_unaligned(out + col);
#endif
      }
    }
  }
}

/// y[b][row + r] += sum over columns [k0, k1) of x[b][k] panel[r][k], for b in [b0, b0 + TB).
template <std::size_t TB, std::size_t R>
inline void panel_tile(const GemmArgs& a, const float* panel, std::size_t row, std::size_t b0,
                       std::size_t k0, std::size_t k1) noexcept {
  const std::size_t stride = a.w->padded_cols;
  Batch acc[TB][R];
  for (std::size_t t = 0; t < TB; ++t)
    for (std::size_t r = 0; r < R; ++r) acc[t][r] = splat(0.0f);
  const float* x = a.x + b0 * stride;
  for (std::size_t k = k0; k < k1; k += lanes) {
    Batch wv[R];
    for (std::size_t r = 0; r < R; ++r) wv[r] = load(panel + r * stride + k);
    for (std::size_t t = 0; t < TB; ++t) {
      const Batch xv = load(x + t * stride + k);
      for (std::size_t r = 0; r < R; ++r) acc[t][r] = multiply_add(wv[r], xv, acc[t][r]);
    }
  }
  for (std::size_t t = 0; t < TB; ++t)
    for (std::size_t r = 0; r < R; ++r)
      a.y[(b0 + t) * a.y_stride + row + r] += sum_lanes(acc[t][r]);
}

template <Decode D, std::size_t R>
inline void gemm_panel(const GemmArgs& a, std::size_t row, float* panel) noexcept {
  dequantize_panel<D, R>(*a.w, row, panel);
  for (std::size_t b = 0; b < a.batch; ++b)
    for (std::size_t r = 0; r < R; ++r) a.y[b * a.y_stride + row + r] = 0.0f;
  const std::size_t cols = a.w->padded_cols;
  for (std::size_t k0 = 0; k0 < cols; k0 += panel_chunk) {
    const std::size_t k1 = k0 + panel_chunk < cols ? k0 + panel_chunk : cols;
    std::size_t b = 0;
    for (; b + panel_batch <= a.batch; b += panel_batch)
      panel_tile<panel_batch, R>(a, panel, row, b, k0, k1);
    for (; b < a.batch; ++b) panel_tile<1, R>(a, panel, row, b, k0, k1);
  }
}

template <Decode D>
inline void gemm_panels(const GemmArgs& a) {
  const std::size_t rows = a.w->rows, panel_floats = panel_rows * a.w->padded_cols;
  const auto panels = static_cast<std::ptrdiff_t>(rows / panel_rows);
  // One panel per thread, allocated here: nothing may throw inside the parallel region.
  std::vector<float> scratch(static_cast<std::size_t>(a.threads) * panel_floats);
#pragma omp parallel num_threads(a.threads)
  {
    float* panel = scratch.data() + static_cast<std::size_t>(omp_get_thread_num()) * panel_floats;
#pragma omp for schedule(static)
    for (std::ptrdiff_t p = 0; p < panels; ++p)
      gemm_panel<D, panel_rows>(a, static_cast<std::size_t>(p) * panel_rows, panel);
#pragma omp single
    for (std::size_t row = static_cast<std::size_t>(panels) * panel_rows; row < rows; ++row)
      gemm_panel<D, 1>(a, row, panel);
  }
}

/// Batches from this size on run through dequantized panels (at 8 the tiles were as fast).
inline constexpr std::size_t panel_min_batch = 12;

template <Decode D, bool HalfGroups>
inline void gemm(const GemmArgs& a) {
  if (a.batch >= panel_min_batch) {
    gemm_panels<D>(a);
    return;
  }
  constexpr std::size_t wide = lanes >= 16 ? 8 : 4;  // activation rows per tile
  const auto rows = static_cast<std::ptrdiff_t>(a.w->rows);
  if (a.batch == 1 && !HalfGroups && row_tile > 1 && a.w->padded_cols > l1_resident_cols) {
    const std::ptrdiff_t tiles = rows / static_cast<std::ptrdiff_t>(row_tile);
#pragma omp parallel for schedule(static) num_threads(a.threads)
    for (std::ptrdiff_t t = 0; t < tiles; ++t)
      gemv_rows<D, row_tile>(a, static_cast<std::size_t>(t) * row_tile);
    for (std::size_t row = static_cast<std::size_t>(tiles) * row_tile;
         row < static_cast<std::size_t>(rows); ++row)
      tile<D, 1, HalfGroups>(a, row, 0);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(a.threads)
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    const auto row = static_cast<std::size_t>(r);
    std::size_t b = 0;
    for (; b + wide <= a.batch; b += wide) tile<D, wide, HalfGroups>(a, row, b);
    for (; b + 2 <= a.batch; b += 2) tile<D, 2, HalfGroups>(a, row, b);
    for (; b < a.batch; ++b) tile<D, 1, HalfGroups>(a, row, b);
  }
}

template <Decode D>
inline void gemm_groups(const GemmArgs& a) {
  if (a.w->group % block_size == 0)
    gemm<D, false>(a);
  else
    gemm<D, true>(a);
}

inline void dequant_gemm(const GemmArgs& a) {
  switch (a.w->decode) {
    case Decode::int4:
      return gemm_groups<Decode::int4>(a);
    case Decode::lut4:
      return gemm_groups<Decode::lut4>(a);
    case Decode::int8:
      return gemm_groups<Decode::int8>(a);
    case Decode::e4m3:
      return gemm_groups<Decode::e4m3>(a);
    case Decode::f16:
      return gemm_groups<Decode::f16>(a);
    case Decode::bf16:
      return gemm_groups<Decode::bf16>(a);
  }
}

}  // namespace lowbit::kernels::cpu::LOWBIT_KERNEL_NAMESPACE
