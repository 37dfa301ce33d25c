// The integer-weight GEMM in plain C++ (a one-float batch), for CPUs without AVX2
// and for LOWBIT_ISA=scalar. Compiled with the library's default flags.
#define LOWBIT_KERNEL_SCALAR 1
#define LOWBIT_KERNEL_NAMESPACE scalar
#include "int_gemm_impl.hpp"

namespace lowbit::kernels::cpu {
void int_gemm_scalar(const IntGemmArgs& args) { scalar::int_gemm(args); }
}  // namespace lowbit::kernels::cpu
