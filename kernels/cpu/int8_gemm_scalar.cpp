// The int8-activation GEMM in plain C++, for CPUs without AVX2 and for LOWBIT_ISA=scalar.
#define LOWBIT_KERNEL_NAMESPACE int8_scalar
#include "int8_gemm_impl.hpp"

namespace lowbit::kernels::cpu {
void int8_gemm_scalar(const Int8GemmArgs& args) { int8_scalar::int8_gemm(args); }
}  // namespace lowbit::kernels::cpu
