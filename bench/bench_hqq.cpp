// Throughput of HQQ quantization of a 1024 x 4096 float matrix (4 bits, group 64, the reference's
// 20 iterations with early stop), next to RTN with the same grouping, in GB/s of float input. The
// last argument of every benchmark is the OpenMP thread count.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <vector>

#include "lowbit/algo/hqq.hpp"
#include "lowbit/quant/linear.hpp"

#include "normal_weights.hpp"

namespace {

constexpr std::size_t kRows = 1024, kCols = 4096;

lowbit::MatrixView<const float> weight_view() {
  static const std::vector<float> w = lowbit::bench::normal_weights(kRows * kCols);
  return {w.data(), kRows, kCols};
}

void run(benchmark::State& state, auto quantize) {
  omp_set_num_threads(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    lowbit::QuantizedMatrix q = quantize();
    benchmark::DoNotOptimize(q.packed_codes().data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(kRows * kCols * sizeof(float)));
}

void BM_rtn_uint4_g64(benchmark::State& state) {
  run(state, [] {
    return lowbit::quantize_linear(
        weight_view(), lowbit::Scheme::asymmetric_int(4, lowbit::Granularity::per_group(64)));
  });
}

void BM_hqq_uint4_g64(benchmark::State& state) {
  run(state, [] { return lowbit::quantize_hqq(weight_view(), 4); });
}

void BM_hqq_uint4_g64_scale(benchmark::State& state) {
  lowbit::HqqOptions options;
  options.optimize_scale = true;
  run(state, [&] { return lowbit::quantize_hqq(weight_view(), 4, options); });
}

void threads(benchmark::internal::Benchmark* b) {
  b->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_rtn_uint4_g64)->Apply(threads);
BENCHMARK(BM_hqq_uint4_g64)->Apply(threads);
BENCHMARK(BM_hqq_uint4_g64_scale)->Apply(threads);

BENCHMARK_MAIN();
