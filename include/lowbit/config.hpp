// Build-wide macros: version and the host/device annotation that lets element formats compile under
// nvcc and host compilers alike.
#pragma once

#define LOWBIT_VERSION_MAJOR 0
#define LOWBIT_VERSION_MINOR 1
#define LOWBIT_VERSION_PATCH 0

#if defined(__CUDACC__) || defined(__HIPCC__)
#define LOWBIT_HOST_DEVICE __host__ __device__
#else
#define LOWBIT_HOST_DEVICE
#endif
