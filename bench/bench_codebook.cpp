// Time of codebook quantization (k-means per codebook) and of dequantizing the result, for a
// 1024 x 1024 float matrix, in GB/s of float input. The last argument of every benchmark is the
// OpenMP thread count.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <vector>

#include "lowbit/quant/codebook.hpp"

#include "normal_weights.hpp"

namespace {

constexpr std::size_t kRows = 1024, kCols = 1024;

const std::vector<float>& weights() {
  static const std::vector<float> w = lowbit::bench::normal_weights(kRows * kCols);
  return w;
}

lowbit::MatrixView<const float> weight_view() { return {weights().data(), kRows, kCols}; }

void report_bytes(benchmark::State& state) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(kRows * kCols * sizeof(float)));
}

lowbit::Scheme codebook(int bits, std::size_t dim, lowbit::Granularity books) {
  lowbit::Scheme scheme{.element = lowbit::ElementFormat::codebook,
                        .bits = bits,
                        .granularity = lowbit::Granularity::none(),
                        .vector_dim = dim,
                        .codebook_granularity = books,
                        .codebook_format = lowbit::ScalarFormat::f16};
  scheme.validate();
  return scheme;
}

// Scheme by index: 0 = cb4 per channel, 1 = cb4 per tensor, 2 = cb8x2 (4 bits/weight) per tensor.
lowbit::Scheme scheme_of(std::int64_t index) {
  switch (index) {
    case 0:
      return codebook(4, 1, lowbit::Granularity::per_channel());
    case 1:
      return codebook(4, 1, lowbit::Granularity::per_tensor());
    default:
      return codebook(8, 2, lowbit::Granularity::per_tensor());
  }
}

void BM_quantize_codebook(benchmark::State& state) {
  const lowbit::Scheme scheme = scheme_of(state.range(0));
  omp_set_num_threads(static_cast<int>(state.range(1)));
  lowbit::CodebookOptions options;
  options.iterations = 20;
  for (auto _ : state) {
    lowbit::QuantizedMatrix q = lowbit::quantize_codebook(weight_view(), scheme, options);
    benchmark::DoNotOptimize(q.packed_codes().data());
  }
  state.SetLabel(scheme.to_string());
  report_bytes(state);
}
BENCHMARK(BM_quantize_codebook)
    ->ArgsProduct({{0, 1, 2}, {1, 4}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_dequantize_codebook(benchmark::State& state) {
  const lowbit::Scheme scheme = scheme_of(state.range(0));
  omp_set_num_threads(static_cast<int>(state.range(1)));
  lowbit::CodebookOptions options;
  options.iterations = 5;
  const lowbit::QuantizedMatrix q = lowbit::quantize_codebook(weight_view(), scheme, options);
  std::vector<float> out(kRows * kCols);
  for (auto _ : state) {
    q.dequantize(lowbit::MatrixView<float>(out.data(), kRows, kCols));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(scheme.to_string());
  report_bytes(state);
}
BENCHMARK(BM_dequantize_codebook)->ArgsProduct({{0, 1, 2}, {1, 4}})->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
