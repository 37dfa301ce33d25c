// The dequantize-GEMM for AVX-512 (F, BW, DQ, VL), compiled with those flags only here.
#include <immintrin.h>

#define LOWBIT_KERNEL_AVX512 1
#define LOWBIT_KERNEL_NAMESPACE avx512
#define LOWBIT_KERNEL_ARCH xsimd::avx512bw
#include "dequant_gemm_impl.hpp"

namespace lowbit::kernels::cpu {
void dequant_gemm_avx512(const GemmArgs& args) { avx512::dequant_gemm(args); }
}  // namespace lowbit::kernels::cpu
