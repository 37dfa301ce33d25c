// This machine's memory bandwidth, the ceiling of a memory-bound GEMV (bench_gemv compares its
// weight bytes per second against these figures).
//
//   BM_triad  STREAM's triad a[i] = b[i] + s * c[i] over three arrays of 256 MiB of doubles (8x the
//             32 MiB L3 each), counted as STREAM counts it: 24 bytes per element (2 reads and 1
//             write). The CPU also reads each line of `a` before writing it (write-allocate), so
//             the DRAM carries 32 bytes per element: the true traffic is 4/3 of the figure.
//   BM_read   the sum of one 256 MiB array: 8 bytes per element, reads only, as a GEMV streams
//             its weights. Each thread reads its share as 1, 2 or 4 concurrent sequential streams
//             (the share cut in as many pieces, one cache line of each per step): one stream per
//             core does not reach the most this machine delivers (a GEMV that reads several rows
//             at once has several streams), so the reference is the best of the three.
//
// The first argument is the OpenMP thread count; every thread works on its own contiguous share of
// the arrays (schedule(static)), which it also first-touched. Rates are reported as
// bytes_per_second in powers of 1000 (the console's "G/s" is 1e9 bytes per second).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace {

constexpr std::size_t kElements = std::size_t{256} << 20 >> 3;  // 256 MiB of doubles per array

struct Arrays {
  std::unique_ptr<double[]> a, b, c;
};

/// The three arrays, allocated once and first touched by two threads in the benchmarks' static
/// split.
Arrays& arrays() {
  static Arrays arrays = [] {
    Arrays made{std::make_unique_for_overwrite<double[]>(kElements),
                std::make_unique_for_overwrite<double[]>(kElements),
                std::make_unique_for_overwrite<double[]>(kElements)};
    double *a = made.a.get(), *b = made.b.get(), *c = made.c.get();
#pragma omp parallel for schedule(static) num_threads(2)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(kElements); ++i) {
      a[i] = 0.0;
      b[i] = 1.0 + static_cast<double>(i % 7);
      c[i] = 2.0 - static_cast<double>(i % 5);
    }
    return made;
  }();
  return arrays;
}

void report(benchmark::State& state, std::size_t bytes_per_iteration) {
  state.counters["bytes_per_second"] = benchmark::Counter(
      static_cast<double>(bytes_per_iteration), benchmark::Counter::kIsIterationInvariantRate,
      benchmark::Counter::kIs1000);
}

void BM_triad(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  Arrays& arr = arrays();
  double *a = arr.a.get(), *b = arr.b.get(), *c = arr.c.get();
  const double s = 3.0;
  for (auto _ : state) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(kElements); ++i)
      a[i] = b[i] + s * c[i];
    benchmark::DoNotOptimize(a);
    benchmark::ClobberMemory();
  }
  report(state, 3 * sizeof(double) * kElements);
}

/// The sum of b[begin, end) read as `Streams` sequential streams, one cache line (8 doubles) of
/// each per step, into 8 * Streams independent accumulators (so that the adds' latency never
/// limits the loads).
template <std::size_t Streams>
double sum_streams(const double* b, std::size_t begin, std::size_t end) {
  const std::size_t length = (end - begin) / Streams / 8 * 8;
  double partial[Streams][8] = {};
  for (std::size_t i = 0; i < length; i += 8)
    for (std::size_t s = 0; s < Streams; ++s)
      for (std::size_t j = 0; j < 8; ++j) partial[s][j] += b[begin + s * length + i + j];
  double total = 0.0;
  for (std::size_t i = begin + Streams * length; i < end; ++i) total += b[i];  // the remainder
  for (const auto& stream : partial)
    for (double p : stream) total += p;
  return total;
}

void BM_read(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto streams = state.range(1);
  const double* b = arrays().b.get();
  for (auto _ : state) {
    double total = 0.0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      const auto count = static_cast<std::size_t>(omp_get_num_threads());
      const auto id = static_cast<std::size_t>(omp_get_thread_num());
      const std::size_t begin = kElements * id / count, end = kElements * (id + 1) / count;
      total += streams == 1   ? sum_streams<1>(b, begin, end)
               : streams == 2 ? sum_streams<2>(b, begin, end)
                              : sum_streams<4>(b, begin, end);
    }
    benchmark::DoNotOptimize(total);
  }
  report(state, sizeof(double) * kElements);
}

void threads(benchmark::internal::Benchmark* b) {
  b->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
}

void threads_and_streams(benchmark::internal::Benchmark* b) {
  b->ArgNames({"threads", "streams"})
      ->ArgsProduct({{1, 2}, {1, 2, 4}})
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond)
      ->MinTime(1.0);
}

}  // namespace

BENCHMARK(BM_triad)->Apply(threads);
BENCHMARK(BM_read)->Apply(threads_and_streams);

BENCHMARK_MAIN();
