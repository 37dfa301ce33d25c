// The tensor-core kernel: batches of more than 8 rows, with mma.sync.m16n8k16 (fp16 or bf16 in,
// fp32 accumulators; sm_80 and later). The weights are the A operand (16 output rows x 16
// columns, decoded from the packed layout straight into A-fragment registers), the staged
// activations the B operand (8 batch rows; a lane's two B registers are one 8-byte load, the
// staging put them side by side). One block per (16-row tile, 32 batch rows); its warps split the
// columns in chunks as the GEMV does and add up through shared memory.
//
// The mma sums the levels times the activations over a segment of k-tiles within one scale group
// (at most a chunk); the segment is then scaled in fp32, with the zero-point term from the
// activations' tile sums (stage.cu):
//   acc[r, b] += s_r (seg[r, b] - z_r xsum[b]).
// Correctness first: a flush per segment costs 8 FMAs per mma and per-warp loads of the B
// operand are not shared through shared memory; both are the next steps for speed.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "decode.cuh"
#include "dispatch.cuh"
#include "launch.hpp"

namespace lowbit::kernels::cuda {

namespace {

constexpr unsigned mma_warps = 4;
constexpr unsigned n_tiles = mma_batch_tile / 8;  // mma n-tiles per block

/// d += a b for one m16n8k16 tile.
template <class T>
__device__ __forceinline__ void mma(float (&d)[4], const std::uint32_t (&a)[4],
                                    const std::uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<T, __half>)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();  // compiled for sm_80 and later only
#endif
}

template <Decode D, class T>
__global__ void __launch_bounds__(mma_warps * 32)
    mma_kernel(DeviceWeights w, const T* __restrict__ x, const float* __restrict__ tile_sums,
               T* __restrict__ y, std::size_t y_stride, std::size_t batch) {
  __shared__ float table[16];
  __shared__ float partial[mma_warps - 1][n_tiles * 4][32];
  if constexpr (D == Decode::lut4) {
    if (threadIdx.x < 16) table[threadIdx.x] = w.table[threadIdx.x];
    __syncthreads();
  }
  constexpr unsigned per_chunk = chunk_tiles(D), words_per_tile = tile_words(D);
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const unsigned g = lane / 4, t = lane % 4;
  const std::size_t row_tile = blockIdx.x, chunks = w.chunks(), k_tiles = w.k_tiles();
  const std::size_t n0 = static_cast<std::size_t>(blockIdx.y) * mma_batch_tile;
  const std::size_t r0 = row_tile * tile_rows + g, r1 = r0 + 8;
  const uint4* codes = reinterpret_cast<const uint4*>(w.codes) + row_tile * chunks * 32 + lane;
  // Without zero points and offsets (tables, E4M3) the zero-point term vanishes.
  const bool zero_term = w.has_zero || w.level_offset != 0.0f;

  float acc[n_tiles][4] = {}, seg[n_tiles][4] = {}, seg_sum[n_tiles][2] = {};
  for (std::size_t chunk = warp; chunk < chunks; chunk += mma_warps) {
    const uint4 q = codes[chunk * 32];  // read once per batch tile: kept in L2
    const std::uint32_t words[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (unsigned j = 0; j < per_chunk; ++j) {
      const std::size_t kt = chunk * per_chunk + j;
      const std::uint32_t tile[2] = {words[j * words_per_tile],
                                     words[j * words_per_tile + words_per_tile - 1]};
      std::uint32_t a[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = fragment_register<D, T>(tile, i, table);
#pragma unroll
      for (unsigned n = 0; n < n_tiles; ++n) {
        const std::size_t b = n0 + n * 8 + g;  // this lane's B column: batch row b
        const uint2 raw =
            *reinterpret_cast<const uint2*>(x + b * w.padded_cols + kt * tile_cols + 4 * t);
        const std::uint32_t bf[2] = {raw.x, raw.y};
        mma<T>(seg[n], a, bf);
        if (zero_term) {  // the accumulator's batch columns are 2t and 2t + 1
          const std::size_t c = n0 + n * 8 + 2 * t;
          seg_sum[n][0] += tile_sums[c * k_tiles + kt];
          seg_sum[n][1] += tile_sums[(c + 1) * k_tiles + kt];
        }
      }
      // Flush at the end of a scale group, and of the chunk (the warp's next chunk is elsewhere).
      if (j == per_chunk - 1 || (kt + 1) * tile_cols % w.group == 0) {
        const std::size_t gr = kt * tile_cols / w.group;
        const float s0 = w.scales[gr * w.padded_rows + r0], s1 = w.scales[gr * w.padded_rows + r1];
        const float z0 = w.has_zero ? w.zeros[gr * w.padded_rows + r0] : w.level_offset;
        const float z1 = w.has_zero ? w.zeros[gr * w.padded_rows + r1] : w.level_offset;
#pragma unroll
        for (unsigned n = 0; n < n_tiles; ++n) {
          // Accumulator registers 0, 1: row g; 2, 3: row g + 8; batch columns 2t, 2t + 1.
          acc[n][0] = fmaf(s0, fmaf(-z0, seg_sum[n][0], seg[n][0]), acc[n][0]);
          acc[n][1] = fmaf(s0, fmaf(-z0, seg_sum[n][1], seg[n][1]), acc[n][1]);
          acc[n][2] = fmaf(s1, fmaf(-z1, seg_sum[n][0], seg[n][2]), acc[n][2]);
          acc[n][3] = fmaf(s1, fmaf(-z1, seg_sum[n][1], seg[n][3]), acc[n][3]);
          seg[n][0] = seg[n][1] = seg[n][2] = seg[n][3] = 0.0f;
          seg_sum[n][0] = seg_sum[n][1] = 0.0f;
        }
      }
    }
  }
  if (warp > 0) {
#pragma unroll
    for (unsigned n = 0; n < n_tiles; ++n)
#pragma unroll
      for (int i = 0; i < 4; ++i) partial[warp - 1][n * 4 + i][lane] = acc[n][i];
  }
  __syncthreads();
  if (warp != 0) return;
#pragma unroll
  for (unsigned n = 0; n < n_tiles; ++n)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float sum = acc[n][i];
      for (unsigned v = 0; v + 1 < mma_warps; ++v) sum += partial[v][n * 4 + i][lane];
      const std::size_t row = i < 2 ? r0 : r1;
      const std::size_t b = n0 + n * 8 + 2 * t + i % 2;
      if (row < w.rows && b < batch) y[b * y_stride + row] = Act<T>::from_float(sum);
    }
}

template <Decode D, class T>
void launch(const KernelArgs& a) {
  const dim3 grid(static_cast<unsigned>(a.w.row_tiles()),
                  static_cast<unsigned>(a.padded_batch / mma_batch_tile));
  mma_kernel<D, T><<<grid, mma_warps * 32, 0, static_cast<cudaStream_t>(a.stream)>>>(
      a.w, static_cast<const T*>(a.staged), a.tile_sums, static_cast<T*>(a.y), a.y_stride, a.batch);
}

}  // namespace

void launch_mma(const KernelArgs& args) {
  if (args.w.row_tiles() == 0 || args.padded_batch == 0) return;
  dispatch(args, [&]<Decode D, class T>() { launch<D, T>(args); });
}

}  // namespace lowbit::kernels::cuda
