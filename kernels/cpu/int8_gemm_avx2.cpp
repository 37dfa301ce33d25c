// The int8-activation GEMM for AVX2 (vpmaddubsw / vpmaddwd), compiled with those flags only here.
#include <immintrin.h>

#define LOWBIT_KERNEL_AVX2 1
#define LOWBIT_KERNEL_NAMESPACE int8_avx2
#include "int8_gemm_impl.hpp"

namespace lowbit::kernels::cpu {
void int8_gemm_avx2(const Int8GemmArgs& args) { int8_avx2::int8_gemm(args); }
}  // namespace lowbit::kernels::cpu
