// lowbit::cuda in a build without CUDA (LOWBIT_ENABLE_CUDA=OFF, or no CUDA compiler found): the
// entries of include/lowbit/kernels/cuda.hpp exist, and say that the backend is not there.
#include <cstddef>
#include <string>

#include "lowbit/error.hpp"
#include "lowbit/kernels/cuda.hpp"

namespace lowbit::kernels {

namespace {

constexpr const char* reason =
    "lowbit was built without CUDA (configure with a CUDA compiler and LOWBIT_ENABLE_CUDA=ON)";

}  // namespace

bool cuda_available() noexcept { return false; }

const Backend& cuda_backend() {
  throw unsupported(std::string("the cuda backend cannot run: ") + reason);
}

void cuda_gemm(const PreparedMatrix&, const CudaGemmArgs&) {
  throw unsupported(std::string("cuda_gemm: ") + reason);
}

const char* cuda_kernel_for_batch(std::size_t batch) noexcept { return batch > 8 ? "mma" : "gemv"; }

}  // namespace lowbit::kernels
