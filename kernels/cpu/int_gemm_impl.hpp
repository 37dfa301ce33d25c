// The CPU integer-weight GEMM kernel (see int_weights.hpp for the layout), written once over an
// xsimd architecture and instantiated per instruction set by int_gemm_<isa>.cpp. Each of those
// wraps this file in its own namespace (LOWBIT_KERNEL_NAMESPACE), so no inline function compiled
// with AVX-512 flags can stand in for the AVX2 or scalar build's copy at link time.
//
// Per output row, per group: the 32-weight blocks are unpacked to floats (the ISA-specific part:
// Unpack<Arch>) and multiplied into a group accumulator with FMA; at the group's end the
// accumulator is scaled into the row's total. A tile of T activation rows shares each unpacked
// block (T = 1 is the batch-1 GEMV, bound by memory; larger T amortizes the unpacking over the
// batch). Output rows run in parallel (OpenMP).
#pragma once

#include <cstddef>
#include <cstdint>

#if !defined(LOWBIT_KERNEL_SCALAR)
#include <xsimd/xsimd.hpp>
#endif

#include "int_weights.hpp"

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

/// Unpacks one block of 32 levels to floats, in column order.
template <int Bits>
inline void unpack(const std::uint8_t* block, Batch* out) noexcept;

#if defined(LOWBIT_KERNEL_AVX512)
template <>
inline void unpack<4>(const std::uint8_t* block, Batch* out) noexcept {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block));
  const __m128i mask = _mm_set1_epi8(0x0F);
  const __m128i low = _mm_and_si128(bytes, mask);
  const __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
  out[0] = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(low));
  out[1] = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(high));
}
template <>
inline void unpack<8>(const std::uint8_t* block, Batch* out) noexcept {
  const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block));
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16));
  out[0] = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(a));
  out[1] = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b));
}
#elif defined(LOWBIT_KERNEL_AVX2)
template <>
inline void unpack<4>(const std::uint8_t* block, Batch* out) noexcept {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block));
  const __m128i mask = _mm_set1_epi8(0x0F);
  const __m128i low = _mm_and_si128(bytes, mask);
  const __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
  out[0] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(low));
  out[1] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(low, 8)));
  out[2] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(high));
  out[3] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(high, 8)));
}
template <>
inline void unpack<8>(const std::uint8_t* block, Batch* out) noexcept {
  for (std::size_t j = 0; j < 4; ++j) {
    const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(block + 8 * j));
    out[j] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
  }
}
#else
template <>
inline void unpack<4>(const std::uint8_t* block, Batch* out) noexcept {
  for (std::size_t i = 0; i < 16; ++i) {
    out[i] = static_cast<float>(block[i] & 0x0F);
    out[i + 16] = static_cast<float>(block[i] >> 4);
  }
}
template <>
inline void unpack<8>(const std::uint8_t* block, Batch* out) noexcept {
  for (std::size_t i = 0; i < 32; ++i) out[i] = static_cast<float>(block[i]);
}
#endif

/// Output row `row` for activation rows [b0, b0 + T).
template <int Bits, std::size_t T>
inline void tile(const IntGemmArgs& a, std::size_t row, std::size_t b0) noexcept {
  const IntWeights& w = *a.w;
  const std::uint8_t* codes = w.row_codes(row);
  const float* scales = w.scales.data() + row * w.groups;
  const float* biases = w.biases.data() + row * w.groups;
  constexpr std::size_t block_bytes = block_size * Bits / 8;
  const std::size_t blocks_per_group = w.group / block_size;
  const std::size_t blocks_per_row = w.padded_cols / block_size;
  Batch total[T];
  for (std::size_t t = 0; t < T; ++t) total[t] = splat(0.0f);
  Batch unpacked[per_block];
  for (std::size_t g = 0; g < w.groups; ++g) {
    Batch group_sum[T];
    for (std::size_t t = 0; t < T; ++t) group_sum[t] = splat(0.0f);
    // The last group of a row may be shorter (a ragged row: the Scheme's last group).
    const std::size_t first_block = g * blocks_per_group;
    const std::size_t end_block = first_block + blocks_per_group < blocks_per_row
                                      ? first_block + blocks_per_group
                                      : blocks_per_row;
    for (std::size_t blk = first_block; blk < end_block; ++blk) {
      unpack<Bits>(codes + blk * block_bytes, unpacked);
      for (std::size_t t = 0; t < T; ++t) {
        const float* x = a.x + (b0 + t) * w.padded_cols + blk * block_size;
        for (std::size_t j = 0; j < per_block; ++j)
          group_sum[t] = multiply_add(unpacked[j], load(x + j * lanes), group_sum[t]);
      }
    }
    const Batch scale = splat(scales[g]);
    for (std::size_t t = 0; t < T; ++t) total[t] = multiply_add(group_sum[t], scale, total[t]);
  }
  for (std::size_t t = 0; t < T; ++t) {
    const float* sums = a.x_sums + (b0 + t) * w.groups;
    float bias = 0.0f;
    for (std::size_t g = 0; g < w.groups; ++g) bias += biases[g] * sums[g];
    a.y[(b0 + t) * a.y_stride + row] = sum_lanes(total[t]) + bias;
  }
}

template <int Bits>
inline void gemm(const IntGemmArgs& a) noexcept {
  constexpr std::size_t wide = lanes >= 16 ? 8 : 4;  // activation rows per tile
  const auto rows = static_cast<std::ptrdiff_t>(a.w->rows);
#pragma omp parallel for schedule(static) num_threads(a.threads)
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    const auto row = static_cast<std::size_t>(r);
    std::size_t b = 0;
    for (; b + wide <= a.batch; b += wide) tile<Bits, wide>(a, row, b);
    for (; b + 2 <= a.batch; b += 2) tile<Bits, 2>(a, row, b);
    for (; b < a.batch; ++b) tile<Bits, 1>(a, row, b);
  }
}

inline void int_gemm(const IntGemmArgs& a) noexcept {
  if (a.w->bits == 4)
    gemm<4>(a);
  else
    gemm<8>(a);
}

}  // namespace lowbit::kernels::cpu::LOWBIT_KERNEL_NAMESPACE
