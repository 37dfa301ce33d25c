// Throughput of linear quantization and dequantization of a 4096 x 4096 float matrix, in GB/s of
// float input, next to memcpy of the same bytes in the same run (the baseline docs/benchmarks.md
// quotes ratios against). The last argument of every benchmark is the OpenMP thread count.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstring>
#include <vector>

#include "lowbit/quant/linear.hpp"

#include "normal_weights.hpp"

namespace {

constexpr std::size_t kRows = 4096, kCols = 4096;

const std::vector<float>& weights() {
  static const std::vector<float> w = lowbit::bench::normal_weights(kRows * kCols);
  return w;
}

lowbit::MatrixView<const float> weight_view() { return {weights().data(), kRows, kCols}; }

void set_threads(benchmark::State& state) { omp_set_num_threads(static_cast<int>(state.range(0))); }

void report_bytes(benchmark::State& state) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(kRows * kCols * sizeof(float)));
}

lowbit::Scheme int4_g128() {
  return lowbit::Scheme::symmetric_int(4, lowbit::Granularity::per_group(128));
}
lowbit::Scheme uint4_g128() {
  return lowbit::Scheme::asymmetric_int(4, lowbit::Granularity::per_group(128));
}
lowbit::Scheme int8_channel() {
  return lowbit::Scheme::symmetric_int(8, lowbit::Granularity::per_channel());
}

void BM_memcpy(benchmark::State& state) {
  set_threads(state);
  std::vector<float> destination(kRows * kCols);
  const float* source = weights().data();
  for (auto _ : state) {
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t r = 0; r < static_cast<std::ptrdiff_t>(kRows); ++r)
      std::memcpy(destination.data() + r * kCols, source + r * kCols, kCols * sizeof(float));
    benchmark::DoNotOptimize(destination.data());
    benchmark::ClobberMemory();
  }
  report_bytes(state);
}

void BM_quantize(benchmark::State& state, lowbit::Scheme scheme) {
  set_threads(state);
  for (auto _ : state) {
    lowbit::QuantizedMatrix q = lowbit::quantize_linear(weight_view(), scheme);
    benchmark::DoNotOptimize(q.packed_codes().data());
  }
  report_bytes(state);
}

void BM_dequantize(benchmark::State& state, lowbit::Scheme scheme) {
  set_threads(state);
  const lowbit::QuantizedMatrix q = lowbit::quantize_linear(weight_view(), scheme);
  std::vector<float> out(kRows * kCols);
  for (auto _ : state) {
    q.dequantize(lowbit::MatrixView<float>(out.data(), kRows, kCols));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  report_bytes(state);
}

void threads(benchmark::internal::Benchmark* b) {
  b->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_memcpy)->Apply(threads);
BENCHMARK_CAPTURE(BM_quantize, int4_sym_g128, int4_g128())->Apply(threads);
BENCHMARK_CAPTURE(BM_quantize, uint4_asym_g128, uint4_g128())->Apply(threads);
BENCHMARK_CAPTURE(BM_quantize, int8_sym_channel, int8_channel())->Apply(threads);
BENCHMARK_CAPTURE(BM_dequantize, int4_sym_g128, int4_g128())->Apply(threads);
BENCHMARK_CAPTURE(BM_dequantize, uint4_asym_g128, uint4_g128())->Apply(threads);
BENCHMARK_CAPTURE(BM_dequantize, int8_sym_channel, int8_channel())->Apply(threads);

BENCHMARK_MAIN();
