// The CUDA backend (lowbit::cuda): dequantize-GEMM kernels for NVIDIA GPUs (sm_80 and later)
// behind the Backend interface of kernels/backend.hpp. Including this header needs no CUDA headers;
// linking lowbit::cuda always works, and where lowbit was built without CUDA (or no GPU is
// present) cuda_available() is false and cuda_backend() throws unsupported, saying which.
//
// prepare copies the weights to the device once, repacked into the kernels' layout (docs/cuda.md):
// W4A16 (integers of 1..4 bits, symmetric or with zero points, per group of any multiple of 16
// columns, per channel or per tensor), W8A16 (5..8 bits), NF4, FP4 E2M1 (MXFP4, NVFP4 with its
// E4M3 scales per 16 and fp32 tensor scale) and 4-bit scalar codebooks through a 16-entry table,
// and FP8 E4M3 with any scales that change only at multiples of 16 columns (per channel, per
// group, 128 x 128 blocks). Other Schemes, and the int8 activation modes, are prepared for the
// reference kernels on the host instead, as the cpu backend does: PreparedMatrix::fallback() says
// so, supports() says it up front.
//
// Precision: the activations are fp16 or bf16 on the device, the weights' levels exactly
// representable in them (NF4 and codebook table values rounded to the activation type), sums in
// fp32, the output rounded to the activation type. Backend::gemm on host float matrices runs in
// fp16: it converts X to fp16, copies it to the device, runs cuda_gemm and converts Y back.
#pragma once

#include <cstddef>

#include "lowbit/kernels/backend.hpp"

namespace lowbit::kernels {

/// Whether lowbit was built with CUDA and a device is present.
bool cuda_available() noexcept;

/// The CUDA backend (on the current device). Throws unsupported, with the reason, when lowbit was
/// built without CUDA or no device is present.
const Backend& cuda_backend();

/// The element type of the device activations.
enum class CudaActivation : unsigned char { fp16, bf16 };

/// One GEMM on device memory: Y = X W^T for a matrix prepared by cuda_backend(). X [batch, in]
/// and Y [batch, out] are row-major device arrays of `activation` elements (__half or
/// __nv_bfloat16) with row strides x_stride and y_stride (in elements). Batches of 1 to 8 run the
/// GEMV kernel, larger ones the tensor-core (mma.sync) kernel. Runs asynchronously on `stream` (a
/// cudaStream_t; nullptr is the default stream). The weights must not carry an input rotation
/// (Backend::gemm applies it on the host).
struct CudaGemmArgs {
  const void* x = nullptr;
  void* y = nullptr;
  std::size_t batch = 0;
  std::size_t x_stride = 0;  // 0: in
  std::size_t y_stride = 0;  // 0: out
  CudaActivation activation = CudaActivation::fp16;
  void* stream = nullptr;
};

/// Throws invalid_argument for a matrix another backend prepared or a stride too small,
/// unsupported for a fallback matrix or one with an input rotation.
void cuda_gemm(const PreparedMatrix& w, const CudaGemmArgs& args);

/// Which kernel cuda_gemm runs for `batch` rows: "gemv" or "mma".
const char* cuda_kernel_for_batch(std::size_t batch) noexcept;

}  // namespace lowbit::kernels
