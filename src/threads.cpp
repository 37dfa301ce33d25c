#include "lowbit/threads.hpp"

#include <omp.h>

namespace lowbit {
namespace {

/// OpenMP's count before lowbit changed it (OMP_NUM_THREADS, else the cores), read once.
int default_threads() noexcept {
  static const int threads = omp_get_max_threads();
  return threads;
}

}  // namespace

void set_threads(int n) {
  const int fallback = default_threads();
  omp_set_num_threads(n > 0 ? n : fallback);
}

int thread_count() noexcept { return omp_get_max_threads(); }

}  // namespace lowbit
