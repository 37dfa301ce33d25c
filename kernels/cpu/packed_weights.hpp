// Weights repacked for the CPU dequantize-GEMM kernels (the `cpu` backend's prepare step), and the
// entry point of each instruction set's kernel. Internal to lowbit::lowbit: no public header
// includes this file.
//
// Codes, per row, in blocks of 32 columns (the row padded with zero codes to whole blocks):
//   4-bit: 16 bytes per block, byte i = c[i] | c[i + 16] << 4 (llama.cpp's Q4_0 nibble order: one
//          AND and one shift split a block into two runs of 16 consecutive weights);
//   8-bit: 32 bytes per block, byte i = c[i];
//   16-bit: 64 bytes per block, the little-endian F16 or BF16 bits of each weight.
// How a code becomes a number (Decode):
//   int4, int8  the code is an unsigned level u (a signed level v is stored as u = v + 2^(b-1),
//               the zero point raised alike; ggml's quantized blocks: their levels, in 4-bit slots
//               up to 4 bits, in bytes from 5, ggml::to_levels);
//   lut4        table[code], a 16-entry float table per matrix or per row (NF4, FP4 E2M1, a
//               scalar codebook, ggml's kvalues_iq4nl for IQ4_NL and IQ4_XS);
//   e4m3        the FP8 E4M3 code, decoded by moving its bits into an FP16 (exact, including
//               subnormals; the value is then 2^-8 of the code's: the scales carry the 2^8).
//               Codes 0x7F / 0xFF (NaN) are not allowed: prepare falls back to the reference.
//   f16, bf16   the weight itself (ggml's F16 and BF16 tensors): one group per row, scale 1.
// Per (row, group) a float scale s (the Scheme's scale times the tensor scale, times 2^8 for e4m3)
// and, for integer codes with a zero point, a float bias -z * s, so that for activations x:
//   y = sum_g s_g * sum_{k in g} value(c_k) x_k + bias_g * sum_{k in g} x_k.
// Groups are multiples of 16 columns (16: NVFP4 and the K-quants Q2_K, Q3_K, Q6_K; 32: MX and
// ggml's other blocks; per channel and per tensor are one group per row).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lowbit::kernels::cpu {

inline constexpr std::size_t block_size = 32;
inline constexpr std::size_t half_block = 16;

enum class Decode : std::uint8_t { int4, lut4, int8, e4m3, f16, bf16 };

/// Bytes of one block of 32 codes.
constexpr std::size_t block_bytes(Decode decode) noexcept {
  switch (decode) {
    case Decode::int4:
    case Decode::lut4:
      return 16;
    case Decode::int8:
    case Decode::e4m3:
      return 32;
    case Decode::f16:
    case Decode::bf16:
      return 64;
  }
  return 0;
}

struct PackedWeights {
  Decode decode = Decode::int4;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::size_t padded_cols = 0;  // cols rounded up to a multiple of block_size
  std::size_t group = 0;        // columns per group, a multiple of half_block
  std::size_t groups = 0;       // groups per row
  bool has_bias = false;        // integer codes with a zero point
  bool table_per_row = false;   // lut4: one table per row (else one for the matrix)
  std::vector<std::uint8_t> codes;
  std::vector<float> scales;  // [rows, groups]
  std::vector<float> biases;  // [rows, groups] when has_bias
  std::vector<float> tables;  // lut4: 16 floats per table

  int bits() const noexcept { return static_cast<int>(block_bytes(decode) * 8 / block_size); }
  std::size_t row_bytes() const noexcept { return padded_cols / block_size * block_bytes(decode); }
  const std::uint8_t* row_codes(std::size_t row) const noexcept {
    return codes.data() + row * row_bytes();
  }
  const float* table(std::size_t row) const noexcept {
    return tables.data() + (table_per_row ? row * 16 : 0);
  }
  /// Bytes a GEMV streams: codes, scales, biases, tables.
  std::size_t bytes() const noexcept {
    return codes.size() + (scales.size() + biases.size() + tables.size()) * sizeof(float);
  }
};

/// One GEMM call: x [batch, padded_cols] (zero-padded), x_sums [batch, groups] (the sum of x over
/// each group; read only when has_bias), y [batch, rows] with row stride y_stride.
struct GemmArgs {
  const PackedWeights* w = nullptr;
  const float* x = nullptr;
  const float* x_sums = nullptr;
  std::size_t batch = 0;
  float* y = nullptr;
  std::size_t y_stride = 0;
  int threads = 1;  // OpenMP threads over output rows
};

/// One GEMM call with int8 activations (int4 or int8 codes only): xq [batch, padded_cols] int8
/// codes (zero-padded) with one scale per row, x_sums [batch, groups] the sums of the codes over
/// each group (exact integers, as floats), y [batch, rows]:
///   y = x_scale * (sum_g s_g * sum_{k in g} u_k xq_k + bias_g * x_sum_g).
struct Int8GemmArgs {
  const PackedWeights* w = nullptr;
  const std::int8_t* xq = nullptr;
  const float* x_scales = nullptr;
  const float* x_sums = nullptr;
  std::size_t batch = 0;
  float* y = nullptr;
  std::size_t y_stride = 0;
  int threads = 1;
};

// One per instruction set, each in its own translation unit compiled with its own flags.
void dequant_gemm_scalar(const GemmArgs& args);
void dequant_gemm_avx2(const GemmArgs& args);
void dequant_gemm_avx512(const GemmArgs& args);
void int8_gemm_scalar(const Int8GemmArgs& args);
void int8_gemm_avx2(const Int8GemmArgs& args);        // maddubs / madd
void int8_gemm_avx512vnni(const Int8GemmArgs& args);  // vpdpbusd on 256-bit vectors

}  // namespace lowbit::kernels::cpu
