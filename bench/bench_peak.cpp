// This machine's arithmetic peak, the ceiling of a compute-bound GEMM (docs/benchmarks.md divides
// bench_gemv's GFLOP/s and integer GOP/s by these figures).
//
//   BM_fma/isa:avx512   _mm512_fmadd_ps on 12 independent accumulators (enough to cover the FMA
//   BM_fma/isa:avx2     latency on two pipes): 2 flops per lane, 16 or 8 lanes
//   BM_vnni/width:512   vpdpbusd (AVX-512 VNNI, u8 x s8 -> s32) on 12 independent accumulators: 2
//   BM_vnni/width:256   ops (multiply, add) per byte pair, 64 or 32 byte pairs per instruction
//                       (lowbit's W8A8/W4A8 kernels use the 256-bit form)
//
// The argument is the OpenMP thread count; every thread runs the same loop. Rates are reported as
// ops_per_second in powers of 1000 (console "G/s" = GFLOP/s or GOP/s). Each loop is compiled for
// its instruction set with target attributes and is skipped where the CPU lacks it.
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <cstddef>
#include <cstdint>

#include "lowbit/cpu_features.hpp"

namespace {

constexpr std::size_t kSteps = 1 << 16;  // loop iterations per call (12 instructions each)

#define LOWBIT_TWELVE(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx512f"), noinline)) float fma_avx512(std::size_t steps) {
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
#define DECLARE(i) __m512 a##i = _mm512_set1_ps(1.0f + (i));
  LOWBIT_TWELVE(DECLARE)
#undef DECLARE
  for (std::size_t s = 0; s < steps; ++s) {
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, b, c);
    LOWBIT_TWELVE(STEP)
#undef STEP
  }
  __m512 sum = _mm512_setzero_ps();
#define ADD(i) sum = _mm512_add_ps(sum, a##i);
  LOWBIT_TWELVE(ADD)
#undef ADD
  // (Stored, not _mm512_reduce_add_ps: GCC 12 warns about that intrinsic's own temporaries.)
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  return lanes[0] + lanes[15];
}

__attribute__((target("avx2,fma"), noinline)) float fma_avx2(std::size_t steps) {
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
#define DECLARE(i) __m256 a##i = _mm256_set1_ps(1.0f + (i));
  LOWBIT_TWELVE(DECLARE)
#undef DECLARE
  for (std::size_t s = 0; s < steps; ++s) {
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, b, c);
    LOWBIT_TWELVE(STEP)
#undef STEP
  }
  __m256 sum = _mm256_setzero_ps();
#define ADD(i) sum = _mm256_add_ps(sum, a##i);
  LOWBIT_TWELVE(ADD)
#undef ADD
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  return lanes[0] + lanes[7];
}

__attribute__((target("avx512f,avx512vnni"), noinline)) int vnni_512(std::size_t steps) {
  const __m512i u = _mm512_set1_epi8(3), v = _mm512_set1_epi8(-2);
#define DECLARE(i) __m512i a##i = _mm512_set1_epi32(i);
  LOWBIT_TWELVE(DECLARE)
#undef DECLARE
  for (std::size_t s = 0; s < steps; ++s) {
#define STEP(i) a##i = _mm512_dpbusd_epi32(a##i, u, v);
    LOWBIT_TWELVE(STEP)
#undef STEP
  }
  __m512i sum = _mm512_setzero_si512();
#define ADD(i) sum = _mm512_add_epi32(sum, a##i);
  LOWBIT_TWELVE(ADD)
#undef ADD
  alignas(64) std::int32_t lanes[16];
  _mm512_store_si512(lanes, sum);
  return lanes[0] + lanes[15];
}

__attribute__((target("avx512f,avx512vl,avx512vnni"), noinline)) int vnni_256(std::size_t steps) {
  const __m256i u = _mm256_set1_epi8(3), v = _mm256_set1_epi8(-2);
#define DECLARE(i) __m256i a##i = _mm256_set1_epi32(i);
  LOWBIT_TWELVE(DECLARE)
#undef DECLARE
  for (std::size_t s = 0; s < steps; ++s) {
#define STEP(i) a##i = _mm256_dpbusd_epi32(a##i, u, v);
    LOWBIT_TWELVE(STEP)
#undef STEP
  }
  __m256i sum = _mm256_setzero_si256();
#define ADD(i) sum = _mm256_add_epi32(sum, a##i);
  LOWBIT_TWELVE(ADD)
#undef ADD
  alignas(32) std::int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sum);
  return lanes[0] + lanes[7];
}

#undef LOWBIT_TWELVE

/// Runs `loop` on the given number of threads per iteration; ops_per_call counts one thread's work.
template <class Loop>
void run(benchmark::State& state, bool available, double ops_per_call, Loop loop) {
  if (!available) {
    state.SkipWithError("this CPU lacks the instruction set");
    return;
  }
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) {
#pragma omp parallel num_threads(threads)
    benchmark::DoNotOptimize(loop(kSteps));
  }
  state.counters["ops_per_second"] =
      benchmark::Counter(ops_per_call * threads, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}

constexpr double kInstructions = 12.0 * kSteps;

void BM_fma_avx512(benchmark::State& state) {
  run(state, lowbit::cpu_features().avx512f, kInstructions * 16 * 2, fma_avx512);
}
void BM_fma_avx2(benchmark::State& state) {
  run(state, lowbit::cpu_features().avx2 && lowbit::cpu_features().fma, kInstructions * 8 * 2,
      fma_avx2);
}
void BM_vnni_512(benchmark::State& state) {
  run(state, lowbit::cpu_features().avx512_vnni, kInstructions * 64 * 2, vnni_512);
}
void BM_vnni_256(benchmark::State& state) {
  run(state, lowbit::cpu_features().avx512_vnni && lowbit::cpu_features().avx512vl,
      kInstructions * 32 * 2, vnni_256);
}

void configure(benchmark::internal::Benchmark* b) {
  b->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(BM_fma_avx512)->Name("BM_fma/isa:avx512")->Apply(configure);
BENCHMARK(BM_fma_avx2)->Name("BM_fma/isa:avx2")->Apply(configure);
BENCHMARK(BM_vnni_512)->Name("BM_vnni/width:512")->Apply(configure);
BENCHMARK(BM_vnni_256)->Name("BM_vnni/width:256")->Apply(configure);
BENCHMARK_MAIN();
