// The dequantize-GEMM for AVX2 + FMA, compiled with those flags only here.
#include <immintrin.h>

#define LOWBIT_KERNEL_AVX2 1
#define LOWBIT_KERNEL_NAMESPACE avx2
#define LOWBIT_KERNEL_ARCH xsimd::fma3<xsimd::avx2>
#include "dequant_gemm_impl.hpp"

namespace lowbit::kernels::cpu {
void dequant_gemm_avx2(const GemmArgs& args) { avx2::dequant_gemm(args); }
}  // namespace lowbit::kernels::cpu
