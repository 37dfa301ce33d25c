// Staging the activations for the kernels (launch.hpp, StageArgs): zero-padded to the kernels'
// batch and to whole chunks of columns, each 16-column tile in fragment order, with the fp32 sum
// of every tile. One thread per (row, tile); the activations are small next to the weights.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "decode.cuh"
#include "launch.hpp"

namespace lowbit::kernels::cuda {

namespace {

template <class T>
__global__ void stage_kernel(const T* __restrict__ x, std::size_t x_stride, std::size_t batch,
                             std::size_t cols, std::size_t padded_batch, std::size_t padded_cols,
                             T* __restrict__ staged, float* __restrict__ tile_sums) {
  const std::size_t k_tiles = padded_cols / tile_cols;
  const std::size_t index = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= padded_batch * k_tiles) return;
  const std::size_t row = index / k_tiles, kt = index % k_tiles;
  T* out = staged + row * padded_cols + kt * tile_cols;
  float sum = 0.0f;
  for (unsigned dc = 0; dc < tile_cols; ++dc) {
    const std::size_t col = kt * tile_cols + dc;
    const T v = row < batch && col < cols ? x[row * x_stride + col] : Act<T>::from_float(0.0f);
    out[staged_position(dc)] = v;
    sum += Act<T>::to_float(v);
  }
  if (tile_sums != nullptr) tile_sums[row * k_tiles + kt] = sum;
}

template <class T>
void stage(const StageArgs& a) {
  const std::size_t threads = a.padded_batch * (a.padded_cols / tile_cols);
  if (threads == 0) return;
  constexpr unsigned block = 256;
  const auto grid = static_cast<unsigned>((threads + block - 1) / block);
  stage_kernel<T><<<grid, block, 0, static_cast<cudaStream_t>(a.stream)>>>(
      static_cast<const T*>(a.x), a.x_stride, a.batch, a.cols, a.padded_batch, a.padded_cols,
      static_cast<T*>(a.staged), a.tile_sums);
}

}  // namespace

void launch_stage(const StageArgs& args) {
  if (args.activation == Activation::bf16)
    stage<__nv_bfloat16>(args);
  else
    stage<__half>(args);
}

}  // namespace lowbit::kernels::cuda
