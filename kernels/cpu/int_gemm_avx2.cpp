// The integer-weight GEMM for AVX2 + FMA, compiled with those flags only here.
#include <immintrin.h>

#define LOWBIT_KERNEL_AVX2 1
#define LOWBIT_KERNEL_NAMESPACE avx2
#define LOWBIT_KERNEL_ARCH xsimd::fma3<xsimd::avx2>
#include "int_gemm_impl.hpp"

namespace lowbit::kernels::cpu {
void int_gemm_avx2(const IntGemmArgs& args) { avx2::int_gemm(args); }
}  // namespace lowbit::kernels::cpu
