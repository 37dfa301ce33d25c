// Integer weights repacked for the CPU kernels (the `cpu` backend's prepare step), and the entry
// point of each instruction set's kernel. Internal to lowbit::lowbit: no public header includes
// this file.
//
// Layout, per row: the row's codes as unsigned levels u (a signed code v is stored as u = v +
// 2^(b-1) with the zero point raised by the same amount, so (u - z) = (v - z_signed)), in blocks of
// 32 columns, the row padded with zero codes to a whole number of blocks:
//   4-bit: 16 bytes per block, byte i = u[i] | u[i + 16] << 4 (llama.cpp's Q4_0 nibble order: one
//          AND and one shift split a block into two runs of 16 consecutive weights);
//   8-bit: 32 bytes per block, byte i = u[i].
// Per (row, group) a float scale s (the Scheme's scale times the tensor scale) and a float bias
// -z * s, so that for activations x:
//   y = sum_g s_g * sum_{k in g} u_k x_k + bias_g * sum_{k in g} x_k.
// Groups are whole blocks (the group size a multiple of 32; per channel and per tensor are one
// group per row).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lowbit::kernels::cpu {

inline constexpr std::size_t block_size = 32;

struct IntWeights {
  int bits = 4;  // 4 or 8
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::size_t padded_cols = 0;  // cols rounded up to a multiple of block_size
  std::size_t group = 0;        // columns per group, a multiple of block_size
  std::size_t groups = 0;       // groups per row
  std::vector<std::uint8_t> codes;
  std::vector<float> scales;  // [rows, groups]
  std::vector<float> biases;  // [rows, groups]

  std::size_t row_bytes() const noexcept {
    return padded_cols * static_cast<std::size_t>(bits) / 8;
  }
  const std::uint8_t* row_codes(std::size_t row) const noexcept {
    return codes.data() + row * row_bytes();
  }
};

/// One GEMM call: x [batch, padded_cols] (zero-padded), x_sums [batch, groups] (the sum of x over
/// each group), y [batch, rows] with row stride y_stride.
struct IntGemmArgs {
  const IntWeights* w = nullptr;
  const float* x = nullptr;
  const float* x_sums = nullptr;
  std::size_t batch = 0;
  float* y = nullptr;
  std::size_t y_stride = 0;
  int threads = 1;  // OpenMP threads over output rows
};

// One per instruction set, each in its own translation unit compiled with its own flags.
void int_gemm_scalar(const IntGemmArgs& args);
void int_gemm_avx2(const IntGemmArgs& args);
void int_gemm_avx512(const IntGemmArgs& args);

}  // namespace lowbit::kernels::cpu
