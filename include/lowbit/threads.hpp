// How many threads lowbit's parallel loops use: the quantizers, dequantization and the CPU
// kernels all run OpenMP over rows. Their results do not depend on the count; GPTQ's and AWQ's
// can differ in the last digits, because Eigen's matrix products split their sums by thread.
#pragma once

namespace lowbit {

/// n > 0: use n threads from now on; 0: OpenMP's default again (OMP_NUM_THREADS, else one per
/// core). Negative values are taken as 0.
void set_threads(int n);

/// The threads a parallel loop started now would use.
int thread_count() noexcept;

}  // namespace lowbit
