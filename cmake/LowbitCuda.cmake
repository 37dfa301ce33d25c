# lowbit::cuda, the CUDA backend (include/lowbit/kernels/cuda.hpp, kernels/cuda/). Built with its
# kernels when LOWBIT_ENABLE_CUDA is on (the default when CMake finds a CUDA compiler); otherwise the
# same target holds the packing code and entries that report "built without CUDA", so that
# consumers link lowbit::cuda either way.
include(CheckLanguage)
check_language(CUDA)
set(lowbit_cuda_default OFF)
if(CMAKE_CUDA_COMPILER)
  set(lowbit_cuda_default ON)
endif()
option(LOWBIT_ENABLE_CUDA "Build the CUDA kernels (lowbit::cuda)" ${lowbit_cuda_default})

# The weight layout is plain C++, tested on the host with or without CUDA.
set(lowbit_cuda_sources src/kernels/cuda_packing.cpp)
if(LOWBIT_ENABLE_CUDA)
  # Ampere and Hopper (mma.sync needs sm_80): two architectures keep nvcc's time modest.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80 90)
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  list(APPEND lowbit_cuda_sources src/kernels/cuda_backend.cpp kernels/cuda/stage.cu
       kernels/cuda/gemv.cu kernels/cuda/mma_gemm.cu)
else()
  list(APPEND lowbit_cuda_sources src/kernels/cuda_unavailable.cpp)
endif()

add_library(lowbit_cuda STATIC ${lowbit_cuda_sources})
add_library(lowbit::cuda ALIAS lowbit_cuda)
set_target_properties(lowbit_cuda PROPERTIES POSITION_INDEPENDENT_CODE ON EXPORT_NAME cuda)
target_link_libraries(lowbit_cuda PUBLIC lowbit::lowbit)
lowbit_set_warnings(lowbit_cuda)
if(LOWBIT_ENABLE_CUDA)
  # The shared runtime, the one CUDA::cudart names, so that consumers link one runtime only.
  set_target_properties(lowbit_cuda PROPERTIES CUDA_RUNTIME_LIBRARY Shared)
  # C++20 by flag: CMake before 3.28 knows no CUDA20 dialect for nvcc.
  target_compile_options(lowbit_cuda PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:-std=c++20>")
  target_link_libraries(lowbit_cuda PRIVATE CUDA::cudart)
endif()
