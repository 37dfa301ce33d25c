// The host side of the CUDA kernels: what src/kernels/cuda_backend.cpp (compiled by the host
// compiler) passes to the launchers in kernels/cuda/*.cu. Plain C++: no CUDA headers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "packed_layout.hpp"

namespace lowbit::kernels::cuda {

/// The element type of the activations (lowbit::kernels::CudaActivation, without its header).
enum class Activation : unsigned char { fp16, bf16 };

/// A PackedMatrix in device memory (pointers to device arrays; the layout of packed_layout.hpp).
struct DeviceWeights {
  Decode decode = Decode::int4;
  std::size_t rows = 0, cols = 0, padded_rows = 0, padded_cols = 0;
  std::size_t group = 0;  // a multiple of 16
  bool has_zero = false;
  float level_offset = 0.0f;
  const std::uint32_t* codes = nullptr;  // 16-byte aligned
  const float* scales = nullptr;
  const float* zeros = nullptr;  // when has_zero
  const float* table = nullptr;  // lut4: 16 values

  LOWBIT_HOST_DEVICE std::size_t row_tiles() const noexcept { return padded_rows / tile_rows; }
  LOWBIT_HOST_DEVICE std::size_t k_tiles() const noexcept { return padded_cols / tile_cols; }
  LOWBIT_HOST_DEVICE std::size_t chunks() const noexcept { return k_tiles() / chunk_tiles(decode); }
};

/// Batches up to this many rows run the GEMV kernel; its batch is padded to 1, 2, 4 or 8.
inline constexpr std::size_t gemv_max_batch = 8;
/// The tensor-core kernel's batch tile (4 mma n-tiles of 8): its batch is padded to a multiple.
inline constexpr std::size_t mma_batch_tile = 32;

/// The batch a kernel computes for `batch` rows (the staged activations' rows).
inline std::size_t padded_batch(std::size_t batch) noexcept {
  if (batch > gemv_max_batch) return (batch + mma_batch_tile - 1) / mma_batch_tile * mma_batch_tile;
  std::size_t b = 1;
  while (b < batch) b *= 2;
  return b;
}

/// Activations as the kernels read them: X [batch, cols] (row stride x_stride) copied into
/// staged [padded_batch, padded_cols], zero-padded, each 16-column tile in fragment order
/// (staged_position); with tile_sums (may be null), the fp32 sum of each row's tile
/// [padded_batch, k_tiles], for the zero-point term of the tensor-core kernel.
struct StageArgs {
  const void* x = nullptr;
  std::size_t x_stride = 0, batch = 0, cols = 0;
  std::size_t padded_batch = 0, padded_cols = 0;
  void* staged = nullptr;
  float* tile_sums = nullptr;
  Activation activation = Activation::fp16;
  void* stream = nullptr;
};
void launch_stage(const StageArgs& args);

/// Y [batch, rows] (row stride y_stride) from staged activations.
struct KernelArgs {
  DeviceWeights w;
  const void* staged = nullptr;
  const float* tile_sums = nullptr;  // the tensor-core kernel only
  std::size_t batch = 0, padded_batch = 0;
  void* y = nullptr;
  std::size_t y_stride = 0;
  Activation activation = Activation::fp16;
  void* stream = nullptr;
};
void launch_gemv(const KernelArgs& args);  // padded_batch 1, 2, 4 or 8
void launch_mma(const KernelArgs& args);   // padded_batch a multiple of mma_batch_tile

}  // namespace lowbit::kernels::cuda
