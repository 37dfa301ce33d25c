// The CPU GEMM with int8 activations (W4A8, W8A8; see packed_weights.hpp), instantiated per
// instruction set by int8_gemm_<isa>.cpp inside its own namespace (LOWBIT_KERNEL_NAMESPACE).
//
// Per output row and tile of T activation rows: the 32 unsigned levels u of a block (4-bit codes
// unpacked to bytes, or 8-bit codes) times the 32 int8 activation codes, summed exactly in int32
// lanes (AVX-512 VNNI: vpdpbusd, u8 x s8 in groups of four; AVX2: vpmaddubsw then vpmaddwd); at
// each group's end the lanes are converted to float and scaled, then the zero-point term and the
// activation scale are applied once per output.
#pragma once

#include <cstddef>
#include <cstdint>

#include "packed_weights.hpp"

namespace lowbit::kernels::cpu::LOWBIT_KERNEL_NAMESPACE {

#if defined(LOWBIT_KERNEL_AVX512VNNI) || defined(LOWBIT_KERNEL_AVX2)
using Acc = __m256i;  // 8 int32 lanes
using Sum = __m256;   // 8 float lanes
inline Acc acc_zero() noexcept { return _mm256_setzero_si256(); }
inline Acc add(Acc a, Acc b) noexcept { return _mm256_add_epi32(a, b); }
inline Sum sum_zero() noexcept { return _mm256_setzero_ps(); }
inline constexpr std::size_t sum_lanes_count = 8;
inline Sum scale_into(Acc acc, float scale, Sum total) noexcept {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(scale), total);
}
inline Sum dot_into(const float* a, const float* b, Sum total) noexcept {
  return _mm256_fmadd_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b), total);
}
inline float horizontal_sum(Sum v) noexcept {
  const __m128 half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
  return _mm_cvtss_f32(_mm_add_ss(quarter, _mm_movehdup_ps(quarter)));
}
/// The 32 levels of a block as bytes, in column order.
template <int Bits>
inline __m256i levels(const std::uint8_t* block) noexcept {
  if constexpr (Bits == 4) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block));
    const __m128i mask = _mm_set1_epi8(0x0F);
    const __m128i low = _mm_and_si128(bytes, mask);
    const __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    return _mm256_set_m128i(high, low);
  } else {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block));
  }
}
#if defined(LOWBIT_KERNEL_AVX512VNNI)
/// acc += sum of u * x over each group of four bytes (exact: u <= 255, |x| <= 127).
template <int Bits>
inline Acc dot_block(__m256i u, const std::int8_t* x, Acc acc) noexcept {
  return _mm256_dpbusd_epi32(acc, u, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
}
#else
template <int Bits>
inline Acc dot_block(__m256i u, const std::int8_t* x, Acc acc) noexcept {
  const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (Bits == 4) {
    // u <= 15: a pair sums to at most 2 * 15 * 128, far inside int16.
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, xv), ones));
  } else {
    // u up to 255 would saturate vpmaddubsw's int16 pairs: multiply v = u - 128 instead (|v| as
    // the unsigned operand, x carrying v's sign: pairs up to 2 * 128 * 127) and add 128 * sum(x)
    // back per group through the bias (see the flush below).
    const __m256i v = _mm256_xor_si256(u, _mm256_set1_epi8(static_cast<char>(0x80)));
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(xv, v));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
  }
}
#endif
#else
using Acc = std::int32_t;
using Sum = float;
inline Acc acc_zero() noexcept { return 0; }
inline Acc add(Acc a, Acc b) noexcept { return a + b; }
inline Sum sum_zero() noexcept { return 0.0f; }
inline constexpr std::size_t sum_lanes_count = 1;
inline Sum scale_into(Acc acc, float scale, Sum total) noexcept {
  return static_cast<float>(acc) * scale + total;
}
inline Sum dot_into(const float* a, const float* b, Sum total) noexcept { return *a * *b + total; }
inline float horizontal_sum(Sum v) noexcept { return v; }
struct Levels {
  std::uint8_t u[32];
};
template <int Bits>
inline Levels levels(const std::uint8_t* block) noexcept {
  Levels out;
  for (std::size_t i = 0; i < 32; ++i)
    out.u[i] = Bits == 4 ? static_cast<std::uint8_t>(i < 16 ? block[i] & 0x0F : block[i - 16] >> 4)
                         : block[i];
  return out;
}
template <int Bits>
inline Acc dot_block(const Levels& u, const std::int8_t* x, Acc acc) noexcept {
  for (std::size_t i = 0; i < 32; ++i) acc += static_cast<std::int32_t>(u.u[i]) * x[i];
  return acc;
}
#endif

// AVX2's 8-bit path multiplies u - 128: its sums miss 128 * sum(x) per group.
#if defined(LOWBIT_KERNEL_AVX2)
inline constexpr float level_shift_8bit = 128.0f;
#else
inline constexpr float level_shift_8bit = 0.0f;
#endif

template <int Bits, std::size_t T>
inline void tile(const Int8GemmArgs& a, std::size_t row, std::size_t b0) noexcept {
  const PackedWeights& w = *a.w;
  const std::uint8_t* codes = w.row_codes(row);
  const float* scales = w.scales.data() + row * w.groups;
  const float* biases = w.biases.data() + row * w.groups;
  constexpr std::size_t block_bytes = Bits == 4 ? 16 : 32;
  const std::size_t blocks_per_group = w.group / block_size;
  const std::size_t blocks_per_row = w.padded_cols / block_size;
  Sum total[T];
  for (std::size_t t = 0; t < T; ++t) total[t] = sum_zero();
  // Two accumulators per activation row for T <= 2 (blocks alternate between them), so that
  // consecutive vpdpbusd do not wait on each other's latency.
  constexpr std::size_t copies = T <= 2 ? 2 : 1;
  for (std::size_t g = 0; g < w.groups; ++g) {
    Acc acc[T][copies];
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t c = 0; c < copies; ++c) acc[t][c] = acc_zero();
    const std::size_t first_block = g * blocks_per_group;
    const std::size_t end_block = first_block + blocks_per_group < blocks_per_row
                                      ? first_block + blocks_per_group
                                      : blocks_per_row;
    std::size_t blk = first_block;
    if constexpr (copies == 2)
      for (; blk + 2 <= end_block; blk += 2) {
        const auto u0 = levels<Bits>(codes + blk * block_bytes);
        const auto u1 = levels<Bits>(codes + (blk + 1) * block_bytes);
        for (std::size_t t = 0; t < T; ++t) {
          const std::int8_t* x = a.xq + (b0 + t) * w.padded_cols + blk * block_size;
          acc[t][0] = dot_block<Bits>(u0, x, acc[t][0]);
          acc[t][1] = dot_block<Bits>(u1, x + block_size, acc[t][1]);
        }
      }
    for (; blk < end_block; ++blk) {
      const auto u = levels<Bits>(codes + blk * block_bytes);
      for (std::size_t t = 0; t < T; ++t)
        acc[t][0] =
            dot_block<Bits>(u, a.xq + (b0 + t) * w.padded_cols + blk * block_size, acc[t][0]);
    }
    for (std::size_t t = 0; t < T; ++t) {
      Acc sum = acc[t][0];
      if constexpr (copies == 2) sum = add(sum, acc[t][1]);
      total[t] = scale_into(sum, scales[g], total[t]);
    }
  }
  for (std::size_t t = 0; t < T; ++t) {
    const float* sums = a.x_sums + (b0 + t) * w.groups;
    float rest = 0.0f;
    std::size_t g = 0;
    if constexpr (Bits == 8 && level_shift_8bit != 0.0f) {
      for (; g < w.groups; ++g) rest += (biases[g] + level_shift_8bit * scales[g]) * sums[g];
    } else {
      for (; g + sum_lanes_count <= w.groups; g += sum_lanes_count)
        total[t] = dot_into(biases + g, sums + g, total[t]);
      for (; g < w.groups; ++g) rest += biases[g] * sums[g];
    }
    a.y[(b0 + t) * a.y_stride + row] = a.x_scales[b0 + t] * (horizontal_sum(total[t]) + rest);
  }
}

template <int Bits>
inline void gemm(const Int8GemmArgs& a) noexcept {
  const auto rows = static_cast<std::ptrdiff_t>(a.w->rows);
#pragma omp parallel for schedule(static) num_threads(a.threads)
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    const auto row = static_cast<std::size_t>(r);
    std::size_t b = 0;
    for (; b + 4 <= a.batch; b += 4) tile<Bits, 4>(a, row, b);
    for (; b < a.batch; ++b) tile<Bits, 1>(a, row, b);
  }
}

inline void int8_gemm(const Int8GemmArgs& a) noexcept {
  if (a.w->decode == Decode::int4)
    gemm<4>(a);
  else
    gemm<8>(a);
}

}  // namespace lowbit::kernels::cpu::LOWBIT_KERNEL_NAMESPACE
