// GPTQ on a 4096 x 4096 layer with the Hessian of 8192 correlated activations of width 4096,
// split into its stages: the Hessian accumulation (InputStatistics, double SYRK), the damped
// Cholesky + inverse + Cholesky of the inverse, and the quantization loop given the Hessian
// (quantize_gptq as a whole: it includes the factorization, reported separately above). The last
// argument of every benchmark is the OpenMP thread count (Eigen's GEMMs use OpenMP).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <random>
#include <vector>

#include <Eigen/Dense>

#include "lowbit/algo/calibration.hpp"
#include "lowbit/algo/gptq.hpp"

#include "normal_weights.hpp"

namespace {

constexpr std::size_t kOut = 4096, kIn = 4096, kSamples = 8192, kBatch = 512;

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

const std::vector<float>& weights() {
  static const std::vector<float> w = lowbit::bench::normal_weights(kOut * kIn);
  return w;
}

/// Activations [kSamples, kIn]: x = A z with A = G diag(0.999^k), G and z Gaussian.
const RowMajorF& activations() {
  static const RowMajorF x = [] {
    std::mt19937 rng(2);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const auto in = static_cast<Eigen::Index>(kIn);
    Eigen::MatrixXf a(in, in);
    for (Eigen::Index j = 0; j < in; ++j)
      for (Eigen::Index i = 0; i < in; ++i)
        a(i, j) = normal(rng) * std::pow(0.999f, static_cast<float>(j));
    Eigen::MatrixXf z(in, static_cast<Eigen::Index>(kSamples));
    for (Eigen::Index j = 0; j < z.cols(); ++j)
      for (Eigen::Index i = 0; i < in; ++i) z(i, j) = normal(rng);
    return RowMajorF((a * z).transpose());
  }();
  return x;
}

lowbit::SymmetricMatrix accumulate() {
  lowbit::InputStatistics stats(kIn);
  for (std::size_t start = 0; start < kSamples; start += kBatch)
    stats.add(lowbit::MatrixView<const float>(activations().data() + start * kIn, kBatch, kIn));
  return stats.hessian();
}

const lowbit::SymmetricMatrix& hessian() {
  static const lowbit::SymmetricMatrix h = accumulate();
  return h;
}

void set_threads(benchmark::State& state) { omp_set_num_threads(static_cast<int>(state.range(0))); }

void BM_hessian(benchmark::State& state) {
  (void)activations();
  set_threads(state);
  for (auto _ : state) benchmark::DoNotOptimize(accumulate());
}

void BM_cholesky_inverse(benchmark::State& state) {
  (void)hessian();
  set_threads(state);
  for (auto _ : state)
    benchmark::DoNotOptimize(lowbit::detail::gptq_inverse_factor(hessian(), 0.01, 5));
}

void BM_gptq(benchmark::State& state, lowbit::Scheme scheme, bool act_order) {
  (void)hessian();
  (void)weights();
  set_threads(state);
  lowbit::GptqOptions options;
  options.act_order = act_order;
  options.static_groups = act_order;
  double loss = 0.0;
  for (auto _ : state) {
    const auto result = lowbit::quantize_gptq(
        lowbit::MatrixView<const float>(weights().data(), kOut, kIn), hessian(), scheme, options);
    loss = result.proxy_loss;
    benchmark::DoNotOptimize(result.weights.packed_codes().data());
  }
  state.counters["proxy_loss"] = loss;
}

}  // namespace

BENCHMARK(BM_hessian)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_cholesky_inverse)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_gptq, uint4_g128,
                  lowbit::Scheme::asymmetric_int(4, lowbit::Granularity::per_group(128)), false)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_gptq, uint4_channel_act_order,
                  lowbit::Scheme::asymmetric_int(4, lowbit::Granularity::per_channel()), true)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
