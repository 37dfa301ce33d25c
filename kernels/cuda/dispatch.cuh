// The one switch from run-time parameters to kernel instantiations: the matrix's decode and the
// activation type. Each kernel file (gemv.cu, mma_gemm.cu) launches through it.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "launch.hpp"

namespace lowbit::kernels::cuda {

/// Calls launch.template operator()<D, T>() for the decode D of a.w and the activation type T
/// (__half or __nv_bfloat16) of a.
template <class Launch>
void dispatch(const KernelArgs& a, Launch&& launch) {
  const auto with = [&]<class T>() {
    switch (a.w.decode) {
      case Decode::int4:
        return launch.template operator()<Decode::int4, T>();
      case Decode::int8:
        return launch.template operator()<Decode::int8, T>();
      case Decode::lut4:
        return launch.template operator()<Decode::lut4, T>();
      case Decode::e4m3:
        return launch.template operator()<Decode::e4m3, T>();
    }
  };
  if (a.activation == Activation::bf16)
    with.template operator()<__nv_bfloat16>();
  else
    with.template operator()<__half>();
}

}  // namespace lowbit::kernels::cuda
