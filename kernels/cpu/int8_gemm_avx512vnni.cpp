// The int8-activation GEMM with AVX-512 VNNI (vpdpbusd on 256-bit vectors), compiled with those
// flags only here and chosen only on CPUs that have AVX512_VNNI.
#include <immintrin.h>

#define LOWBIT_KERNEL_AVX512VNNI 1
#define LOWBIT_KERNEL_NAMESPACE avx512vnni
#include "int8_gemm_impl.hpp"

namespace lowbit::kernels::cpu {
void int8_gemm_avx512vnni(const Int8GemmArgs& args) { avx512vnni::int8_gemm(args); }
}  // namespace lowbit::kernels::cpu
