// The GEMV kernel: batches of 1 to 8 rows, where a matrix product streams the weights once and is
// bound by memory bandwidth. One block per 16-row tile; its warps split the columns in chunks
// (each lane's chunk is one 16-byte load, a warp's 512 consecutive bytes), decode the levels in
// registers and sum in fp32:
//   y[b, r] = sum over k-tiles of s_r (sum_k v[r, k] x[b, k] - z_r sum_k x[b, k])
// with the k-tile's group scale s and zero z. A lane holds rows g and g + 8 at columns
// 2t, 2t + 1, 2t + 8, 2t + 9 of each tile (packed_layout.hpp); the 4 lanes of a row add up with
// warp shuffles, the warps through shared memory.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "decode.cuh"
#include "dispatch.cuh"
#include "launch.hpp"

namespace lowbit::kernels::cuda {

namespace {

constexpr unsigned gemv_warps = 8;
constexpr unsigned full_mask = 0xFFFFFFFFu;

/// Four staged activations of lane t in one tile (columns 2t, 2t + 1, 2t + 8, 2t + 9) as fp32.
template <class T>
__device__ __forceinline__ float4 load_activations(const T* at) {
  const uint2 raw = *reinterpret_cast<const uint2*>(at);
  const float2 lo = Act<T>::to_float2(raw.x), hi = Act<T>::to_float2(raw.y);
  return make_float4(lo.x, lo.y, hi.x, hi.y);
}

template <Decode D, class T, int B>
__global__ void __launch_bounds__(gemv_warps * 32)
    gemv_kernel(DeviceWeights w, const T* __restrict__ x, T* __restrict__ y, std::size_t y_stride,
                std::size_t batch) {
  __shared__ float table[16];
  __shared__ float partial[gemv_warps][tile_rows][B];
  if constexpr (D == Decode::lut4) {
    if (threadIdx.x < 16) table[threadIdx.x] = w.table[threadIdx.x];
    __syncthreads();
  }
  constexpr unsigned per_chunk = chunk_tiles(D), words_per_tile = tile_words(D);
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const unsigned g = lane / 4, t = lane % 4;
  const std::size_t row_tile = blockIdx.x, chunks = w.chunks();
  const std::size_t r0 = row_tile * tile_rows + g, r1 = r0 + 8;
  const uint4* codes = reinterpret_cast<const uint4*>(w.codes) + row_tile * chunks * 32 + lane;

  float acc0[B] = {}, acc1[B] = {};
  std::size_t group = ~std::size_t{0};
  float s0 = 0.0f, s1 = 0.0f, z0 = w.level_offset, z1 = w.level_offset;
#pragma unroll 2
  for (std::size_t chunk = warp; chunk < chunks; chunk += gemv_warps) {
    const uint4 q = __ldcs(codes + chunk * 32);  // streamed once: evict first
    const std::uint32_t words[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (unsigned j = 0; j < per_chunk; ++j) {
      const std::size_t kt = chunk * per_chunk + j;
      if (const std::size_t gr = kt * tile_cols / w.group; gr != group) {
        group = gr;
        s0 = w.scales[gr * w.padded_rows + r0];
        s1 = w.scales[gr * w.padded_rows + r1];
        if (w.has_zero) {
          z0 = w.zeros[gr * w.padded_rows + r0];
          z1 = w.zeros[gr * w.padded_rows + r1];
        }
      }
      const std::uint32_t tile[2] = {words[j * words_per_tile],
                                     words[j * words_per_tile + words_per_tile - 1]};
      // Registers 0, 2: row g at columns (2t, 2t + 1), (2t + 8, 2t + 9); 1, 3: row g + 8.
      const float2 v0 = level_pair<D>(tile, 0, table), v1 = level_pair<D>(tile, 1, table);
      const float2 v2 = level_pair<D>(tile, 2, table), v3 = level_pair<D>(tile, 3, table);
#pragma unroll
      for (int b = 0; b < B; ++b) {
        const float4 xv = load_activations(x + b * w.padded_cols + kt * tile_cols + 4 * t);
        const float dot0 = v0.x * xv.x + v0.y * xv.y + v2.x * xv.z + v2.y * xv.w;
        const float dot1 = v1.x * xv.x + v1.y * xv.y + v3.x * xv.z + v3.y * xv.w;
        const float sum = (xv.x + xv.y) + (xv.z + xv.w);
        acc0[b] = fmaf(s0, fmaf(-z0, sum, dot0), acc0[b]);
        acc1[b] = fmaf(s1, fmaf(-z1, sum, dot1), acc1[b]);
      }
    }
  }
#pragma unroll
  for (int b = 0; b < B; ++b) {
    for (unsigned offset = 1; offset < 4; offset *= 2) {
      acc0[b] += __shfl_xor_sync(full_mask, acc0[b], offset);
      acc1[b] += __shfl_xor_sync(full_mask, acc1[b], offset);
    }
    if (t == 0) {
      partial[warp][g][b] = acc0[b];
      partial[warp][g + 8][b] = acc1[b];
    }
  }
  __syncthreads();
  if (threadIdx.x < tile_rows * B) {
    const unsigned r = threadIdx.x / B, b = threadIdx.x % B;
    float sum = 0.0f;
    for (unsigned v = 0; v < gemv_warps; ++v) sum += partial[v][r][b];
    const std::size_t row = row_tile * tile_rows + r;
    if (row < w.rows && b < batch) y[b * y_stride + row] = Act<T>::from_float(sum);
  }
}

template <Decode D, class T, int B>
void launch(const KernelArgs& a) {
  gemv_kernel<D, T, B><<<static_cast<unsigned>(a.w.row_tiles()), gemv_warps * 32, 0,
                         static_cast<cudaStream_t>(a.stream)>>>(
      a.w, static_cast<const T*>(a.staged), static_cast<T*>(a.y), a.y_stride, a.batch);
}

template <Decode D, class T>
void launch_batch(const KernelArgs& a) {
  switch (a.padded_batch) {
    case 1:
      return launch<D, T, 1>(a);
    case 2:
      return launch<D, T, 2>(a);
    case 4:
      return launch<D, T, 4>(a);
    default:
      return launch<D, T, 8>(a);
  }
}

}  // namespace

void launch_gemv(const KernelArgs& args) {
  if (args.w.row_tiles() == 0) return;
  dispatch(args, [&]<Decode D, class T>() { launch_batch<D, T>(args); });
}

}  // namespace lowbit::kernels::cuda
