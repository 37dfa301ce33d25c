// Quantization time of a 4096 x 4096 matrix for every calibration-free method (issue: calibration-
// free quantizers), 4-bit settings, next to memcpy of the same bytes and RTN in the same run. The
// argument is the OpenMP thread count.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstring>
#include <random>
#include <vector>

#include "lowbit/algo/methods.hpp"

namespace {

constexpr std::size_t kRows = 4096, kCols = 4096;

const std::vector<float>& weights() {
  static const std::vector<float> w = [] {
    std::vector<float> v(kRows * kCols);
    std::mt19937 rng(1);
    std::student_t_distribution<float> heavy(
        5.0f);  // LLM weights have heavier tails than a Gaussian
    for (float& x : v) x = 0.02f * heavy(rng);
    return v;
  }();
  return w;
}

void report(benchmark::State& state) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(kRows * kCols * sizeof(float)));
}

void BM_memcpy(benchmark::State& state) {
  omp_set_num_threads(static_cast<int>(state.range(0)));
  std::vector<float> destination(kRows * kCols);
  const float* source = weights().data();  // generated before the timing starts
  for (auto _ : state) {
    std::memcpy(destination.data(), source, kRows * kCols * sizeof(float));
    benchmark::DoNotOptimize(destination.data());
    benchmark::ClobberMemory();
  }
  report(state);
}

void BM_quantize(benchmark::State& state, lowbit::MethodOptions options) {
  omp_set_num_threads(static_cast<int>(state.range(0)));
  const lowbit::Quantizer quantizer(options);
  state.SetLabel(quantizer.describe());
  (void)weights();
  for (auto _ : state) {
    lowbit::QuantizedMatrix q =
        quantizer.quantize(lowbit::MatrixView<const float>(weights().data(), kRows, kCols));
    benchmark::DoNotOptimize(q.packed_codes().data());
  }
  report(state);
}

lowbit::MethodOptions method(const char* name, int p = 2) {
  lowbit::MethodOptions options;
  options.method = name;
  options.higgs_dimension = p;
  return options;
}

void threads(benchmark::internal::Benchmark* b) {
  b->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
}
// The slow ones run a couple of times, not for half a second each.
void slow(benchmark::internal::Benchmark* b) {
  b->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(2);
}

}  // namespace

BENCHMARK(BM_memcpy)->Apply(threads);
BENCHMARK_CAPTURE(BM_quantize, rtn, method("rtn"))->Apply(threads);
BENCHMARK_CAPTURE(BM_quantize, hadamard_rtn, method("hadamard-rtn"))->Apply(threads);
BENCHMARK_CAPTURE(BM_quantize, hqq, method("hqq"))->Apply(slow);
BENCHMARK_CAPTURE(BM_quantize, kmeans, method("kmeans"))->Apply(slow);
BENCHMARK_CAPTURE(BM_quantize, nf4, method("nf4"))->Apply(threads);
BENCHMARK_CAPTURE(BM_quantize, mxfp4, method("mxfp4"))->Apply(threads);
BENCHMARK_CAPTURE(BM_quantize, nvfp4, method("nvfp4"))->Apply(threads);
BENCHMARK_CAPTURE(BM_quantize, higgs_p1, method("higgs", 1))->Apply(slow);
BENCHMARK_CAPTURE(BM_quantize, higgs_p2, method("higgs", 2))->Apply(slow);

BENCHMARK_MAIN();
