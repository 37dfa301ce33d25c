// The dequantize-GEMM in plain C++ (a one-float batch), for CPUs without AVX2
// and for LOWBIT_ISA=scalar. Compiled with the library's default flags.
#define LOWBIT_KERNEL_SCALAR 1
#define LOWBIT_KERNEL_NAMESPACE scalar
#include "dequant_gemm_impl.hpp"

namespace lowbit::kernels::cpu {
void dequant_gemm_scalar(const GemmArgs& args) { scalar::dequant_gemm(args); }
}  // namespace lowbit::kernels::cpu
