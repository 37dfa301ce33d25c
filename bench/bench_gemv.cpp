// Dequantize-GEMV and small-batch GEMM through the public kernel API (lowbit::kernels::prepare
// once, lowbit::kernels::gemm in the loop), against this machine's memory bandwidth
// (bench_bandwidth) and the plain fp32 product.
//
// Y [batch, out] = X [batch, in] W^T for W [out, in] in shapes 4096x4096, 4096x11008 and
// 11008x4096 (out x in) at batch 1 (GEMV), and 4096x4096 at batch 8, 32 and 128. Formats:
//   fp32                the baseline: the float matrix times X with Eigen (rows split over OpenMP
//                       threads), compiled like the rest of this file (no -march: SSE2)
//   int8_channel        Scheme::symmetric_int(8, per_channel, f32 scales)
//   int4_asym_g128      Scheme::asymmetric_int(4, per_group(128)) (f16 scales, code zero points)
//   int4_sym_g128       Scheme::symmetric_int(4, per_group(128)) (f16 scales)
//   int8_channel_w8a8,  the same int8 and int4 weights with int8 activations
//   int4_sym_g128_w4a8  (ActivationQuantization::int8_per_token: integer dot products)
//   bf16, f16           ggml's BF16 / F16 tensors (Scheme::ggml_blocks): unquantized 16-bit weights
//   nf4_g64, mxfp4, mxfp8_e4m3
//   fp8_e4m3_channel    quantize_fp8: E4M3 with an f32 scale per row
//   fp8_e4m3_b128       quantize_fp8: E4M3 with f32 scales per 128 x 128 block (DeepSeek-V3)
//   ggml_q4_0, ggml_q8_0, ggml_q4_k
//                       llama.cpp's blocks, quantized by quantize_ggml (repacked by prepare)
//   ggml_q4_1, ggml_q5_0, ggml_q5_1, ggml_q6_k
//                       llama.cpp's blocks lowbit reads but does not quantize: random bytes with
//                       finite fp16 scales (tests/support/random_ggml_blocks.hpp)
//                       Each is measured where the CPU backend has its own kernel for it; where it
//                       has not (Backend::supports false: the reference fallback would run it) the
//                       run is skipped with "no CPU kernel yet", so the table shows it.
// Name: BM_gemv/FORMAT/OUTxIN/batch:B/isa:ISA/threads:T. ISA is the lowbit::kernels::cpu_backend
// instruction set, "eigen" for fp32; threads go through lowbit::kernels::set_num_threads. The
// 4096x4096 GEMV runs on avx512, avx2 and scalar (skipped where this CPU cannot run one), its
// batches 8 to 128 on avx512 and avx2, the other shapes on lowbit::best_isa() only (to keep the
// whole program under 3 minutes on 2 cores).
//
// BM_gemv_l3/FORMAT/4096x4096/batch:1/...: the same GEMV on one prepared copy, called over and
// over, so that a quantized matrix (9 to 17 MB) stays in the 32 MiB L3: the kernel's speed when
// DRAM is not the limit, to tell a kernel that computes too slowly from one that waits for memory.
//
// Memory, not cache: every BM_gemv benchmark rotates through enough distinct prepared copies of
// its matrix (at least 2, and at least 128 MiB = 4x the L3 of weight bytes in all) that each call
// streams its weights from DRAM. Counters:
//   bytes_per_second  weight bytes streamed per second, in powers of 1000 (console "G/s" = GB/s):
//                     the prepared matrix's bytes per call (weight_bytes)
//   flops_per_second  2 * out * in * batch per call, in powers of 1000 (console "G/s" = GFLOP/s)
//   weight_bytes      bytes per call: fp32 4 per weight; the CPU kernels' packed layout (codes,
//                     float scales, biases and tables: PreparedMatrix::bytes)
#include <benchmark/benchmark.h>
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lowbit/cpu_features.hpp"
#include "lowbit/kernels/backend.hpp"
#include "lowbit/kernels/gemm.hpp"
#include "lowbit/quant/fp8.hpp"
#include "lowbit/quant/ggml.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quant/microscaling.hpp"
#include "lowbit/quant/nf4.hpp"

#include "../tests/support/random_ggml_blocks.hpp"
#include "normal_weights.hpp"

namespace {

struct Shape {
  std::size_t out, in;
};

constexpr Shape kShapes[] = {{4096, 4096}, {4096, 11008}, {11008, 4096}};
constexpr std::size_t kLargeBatches[] = {8, 32, 128};           // for the first shape only
constexpr std::size_t kRotationBytes = std::size_t{128} << 20;  // 4x the 32 MiB L3

/// A quantized weight format: its Scheme (none for a format lowbit has no Scheme for yet), how a
/// float matrix is quantized to it, and what the GEMM does with the activations.
struct Format {
  std::string name;
  lowbit::Scheme scheme;
  std::function<lowbit::QuantizedMatrix(lowbit::MatrixView<const float>)> quantize;
  lowbit::kernels::PrepareOptions options = {};
};

std::vector<Format> quantized_formats() {
  using lowbit::Granularity;
  using lowbit::QuantizedMatrix;
  using lowbit::Scheme;
  using View = lowbit::MatrixView<const float>;
  auto linear = [](const Scheme& scheme) {
    return [scheme](View w) { return lowbit::quantize_linear(w, scheme); };
  };
  const Scheme int8 =
      Scheme::symmetric_int(8, Granularity::per_channel(), lowbit::ScalarFormat::f32);
  const Scheme uint4 = Scheme::asymmetric_int(4, Granularity::per_group(128));
  const Scheme int4 = Scheme::symmetric_int(4, Granularity::per_group(128));
  auto ggml = [](lowbit::GgmlType type) {
    return [type](View w) { return lowbit::quantize_ggml(w, type); };
  };
  auto random_blocks = [](lowbit::GgmlType type) {
    return [type](View w) { return lowbit::test::random_ggml_blocks(type, w.rows, w.cols, 1); };
  };
  const lowbit::Fp8Options fp8_channel{};
  const lowbit::Fp8Options fp8_blocks{.granularity = Granularity::per_block(128, 128)};
  lowbit::kernels::PrepareOptions int8_activations;
  int8_activations.activations = lowbit::kernels::ActivationQuantization::int8_per_token;
  return {
      {"int8_channel", int8, linear(int8)},
      {"int4_asym_g128", uint4, linear(uint4)},
      {"int4_sym_g128", int4, linear(int4)},
      {"int8_channel_w8a8", int8, linear(int8), int8_activations},
      {"int4_sym_g128_w4a8", int4, linear(int4), int8_activations},
      {"bf16", lowbit::ggml_scheme(lowbit::GgmlType::bf16), ggml(lowbit::GgmlType::bf16)},
      {"f16", lowbit::ggml_scheme(lowbit::GgmlType::f16), ggml(lowbit::GgmlType::f16)},
      {"nf4_g64", lowbit::nf4_scheme({}), [](View w) { return lowbit::quantize_nf4(w, {}); }},
      {"mxfp4", lowbit::mx_scheme(lowbit::ElementFormat::fp4_e2m1),
       [](View w) { return lowbit::quantize_mxfp4(w); }},
      {"mxfp8_e4m3", lowbit::mx_scheme(lowbit::ElementFormat::fp8_e4m3),
       [](View w) { return lowbit::quantize_mxfp8(w); }},
      {"fp8_e4m3_channel", lowbit::fp8_scheme(fp8_channel),
       [fp8_channel](View w) { return lowbit::quantize_fp8(w, fp8_channel); }},
      {"fp8_e4m3_b128", lowbit::fp8_scheme(fp8_blocks),
       [fp8_blocks](View w) { return lowbit::quantize_fp8(w, fp8_blocks); }},
      {"ggml_q4_0", lowbit::ggml_scheme(lowbit::GgmlType::q4_0), ggml(lowbit::GgmlType::q4_0)},
      {"ggml_q8_0", lowbit::ggml_scheme(lowbit::GgmlType::q8_0), ggml(lowbit::GgmlType::q8_0)},
      {"ggml_q4_k", lowbit::ggml_scheme(lowbit::GgmlType::q4_k), ggml(lowbit::GgmlType::q4_k)},
      {"ggml_q4_1", lowbit::ggml_scheme(lowbit::GgmlType::q4_1),
       random_blocks(lowbit::GgmlType::q4_1)},
      {"ggml_q5_0", lowbit::ggml_scheme(lowbit::GgmlType::q5_0),
       random_blocks(lowbit::GgmlType::q5_0)},
      {"ggml_q5_1", lowbit::ggml_scheme(lowbit::GgmlType::q5_1),
       random_blocks(lowbit::GgmlType::q5_1)},
      {"ggml_q6_k", lowbit::ggml_scheme(lowbit::GgmlType::q6_k),
       random_blocks(lowbit::GgmlType::q6_k)},
  };
}

/// N(0, 0.02^2) weights for the largest shape; every shape's W [out, in] is a prefix of them.
const std::vector<float>& float_weights() {
  static const std::vector<float> w = lowbit::bench::normal_weights(std::size_t{11008} * 4096);
  return w;
}

lowbit::MatrixView<const float> weight_view(Shape shape) {
  return {float_weights().data(), shape.out, shape.in};
}

std::size_t copies_for(std::size_t bytes) {
  return std::max<std::size_t>(2, (kRotationBytes + bytes - 1) / std::max<std::size_t>(bytes, 1));
}

std::string shape_name(Shape shape) {
  std::string name = std::to_string(shape.out);
  return name.append("x").append(std::to_string(shape.in));
}

// The benchmarks are registered format by format, shape by shape, ISA by ISA, so one cache entry
// of each kind is enough: the quantized matrix (shared by the ISAs) and its prepared copies.
struct QuantizedCache {
  std::string key;
  std::shared_ptr<const lowbit::QuantizedMatrix> matrix;
};
struct PreparedCache {
  std::string key;
  std::vector<std::unique_ptr<lowbit::kernels::PreparedMatrix>> copies;
};
struct FloatCache {
  std::string key;
  std::vector<std::vector<float>> copies;
};

QuantizedCache quantized_cache;
PreparedCache prepared_cache;
FloatCache float_cache;

void drop_caches() {
  quantized_cache = {};
  prepared_cache = {};
  float_cache = {};
}

const std::vector<std::unique_ptr<lowbit::kernels::PreparedMatrix>>& prepared_copies(
    const Format& format, Shape shape, const lowbit::kernels::Backend& backend) {
  const std::string qkey = format.name + "/" + shape_name(shape);
  const std::string pkey =
      qkey + "/" + backend.name() + "/" + std::string(to_string(format.options.activations));
  if (prepared_cache.key == pkey) return prepared_cache.copies;
  prepared_cache = {};
  float_cache = {};
  if (quantized_cache.key != qkey) {
    quantized_cache = {};
    quantized_cache.matrix =
        std::make_shared<const lowbit::QuantizedMatrix>(format.quantize(weight_view(shape)));
    quantized_cache.key = qkey;
  }
  prepared_cache.copies.push_back(backend.prepare(quantized_cache.matrix, format.options));
  const std::size_t count = copies_for(prepared_cache.copies.front()->bytes());
  while (prepared_cache.copies.size() < count)
    prepared_cache.copies.push_back(backend.prepare(quantized_cache.matrix, format.options));
  prepared_cache.key = pkey;
  return prepared_cache.copies;
}

const std::vector<std::vector<float>>& float_copies(Shape shape) {
  const std::string key = "fp32/" + shape_name(shape);
  if (float_cache.key == key) return float_cache.copies;
  drop_caches();
  const auto view = weight_view(shape);
  const std::size_t count = copies_for(view.size() * sizeof(float));
  for (std::size_t i = 0; i < count; ++i)
    float_cache.copies.emplace_back(view.data, view.data + view.size());
  float_cache.key = key;
  return float_cache.copies;
}

struct Activations {
  std::vector<float> x, y;
};

Activations activations(Shape shape, std::size_t batch) {
  return {lowbit::bench::normal_weights(batch * shape.in), std::vector<float>(batch * shape.out)};
}

void report(benchmark::State& state, Shape shape, std::size_t batch, std::size_t weight_bytes) {
  using benchmark::Counter;
  state.counters["bytes_per_second"] = Counter(
      static_cast<double>(weight_bytes), Counter::kIsIterationInvariantRate, Counter::kIs1000);
  state.counters["flops_per_second"] =
      Counter(2.0 * static_cast<double>(shape.out * shape.in * batch),
              Counter::kIsIterationInvariantRate, Counter::kIs1000);
  state.counters["weight_bytes"] = static_cast<double>(weight_bytes);
}

void BM_gemv_fp32(benchmark::State& state, Shape shape, std::size_t batch) {
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int threads = static_cast<int>(state.range(0));
  const auto& copies = float_copies(shape);
  Activations a = activations(shape, batch);
  const Eigen::Map<const RowMajor> x(a.x.data(), static_cast<Eigen::Index>(batch),
                                     static_cast<Eigen::Index>(shape.in));
  Eigen::Map<RowMajor> y(a.y.data(), static_cast<Eigen::Index>(batch),
                         static_cast<Eigen::Index>(shape.out));
  std::size_t next = 0;
  for (auto _ : state) {
    const Eigen::Map<const RowMajor> w(copies[next].data(), static_cast<Eigen::Index>(shape.out),
                                       static_cast<Eigen::Index>(shape.in));
#pragma omp parallel num_threads(threads)
    {
      // Each thread its contiguous share of the output rows (Eigen runs single-threaded inside).
      const Eigen::Index rows = w.rows(), count = omp_get_num_threads(), id = omp_get_thread_num();
      const Eigen::Index first = rows * id / count, last = rows * (id + 1) / count;
      y.middleCols(first, last - first).noalias() =
          x * w.middleRows(first, last - first).transpose();
    }
    benchmark::DoNotOptimize(a.y.data());
    benchmark::ClobberMemory();
    next = next + 1 == copies.size() ? 0 : next + 1;
  }
  report(state, shape, batch, shape.out * shape.in * sizeof(float));
}

void BM_gemv(benchmark::State& state, const Format& format, Shape shape, std::size_t batch,
             lowbit::Isa isa, bool resident) {
  if (!lowbit::supports(lowbit::cpu_features(), isa)) {
    state.SkipWithError("this CPU cannot run this ISA");
    return;
  }
  const lowbit::kernels::Backend& backend = lowbit::kernels::cpu_backend(isa);
  if (!backend.supports(format.scheme, format.options)) {
    state.SkipWithError("no CPU kernel yet");
    return;
  }
  try {
    const auto& copies = prepared_copies(format, shape, backend);
    if (copies.front()->fallback()) {  // codes the kernel cannot decode (E4M3 NaN)
      state.SkipWithError("no CPU kernel for these codes: reference fallback");
      return;
    }
    lowbit::kernels::set_num_threads(static_cast<int>(state.range(0)));
    Activations a = activations(shape, batch);
    const lowbit::MatrixView<const float> x(a.x.data(), batch, shape.in);
    const lowbit::MatrixView<float> y(a.y.data(), batch, shape.out);
    std::size_t next = 0;
    for (auto _ : state) {
      lowbit::kernels::gemm(*copies[next], x, y);
      benchmark::DoNotOptimize(a.y.data());
      benchmark::ClobberMemory();
      if (!resident) next = next + 1 == copies.size() ? 0 : next + 1;
    }
    report(state, shape, batch, copies.front()->bytes());
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
  }
  lowbit::kernels::set_num_threads(0);
}

void configure(benchmark::internal::Benchmark* b) {
  b->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(0.3);
}

/// BENCHMARK/FORMAT/OUTxIN/batch:B/isa:ISA (appended piece by piece: GCC 12 warns, wrongly, about
/// the overlap of a literal + std::string&& chain).
std::string benchmark_name(std::string_view benchmark, std::string_view format, Shape shape,
                           std::size_t batch, std::string_view isa) {
  std::string name(benchmark);
  name.append("/").append(format).append("/").append(shape_name(shape));
  name.append("/batch:").append(std::to_string(batch)).append("/isa:").append(isa);
  return name;
}

void register_all() {
  static const std::vector<Format> formats = quantized_formats();
  const std::pair<lowbit::Isa, const char*> isas[] = {{lowbit::Isa::avx512, "avx512"},
                                                      {lowbit::Isa::avx2, "avx2"},
                                                      {lowbit::Isa::scalar, "scalar"}};
  for (const Shape shape : kShapes) {
    const bool first_shape = shape.out == kShapes[0].out && shape.in == kShapes[0].in;
    std::vector<std::size_t> batches{1};
    if (first_shape)
      batches.insert(batches.end(), std::begin(kLargeBatches), std::end(kLargeBatches));
    for (const std::size_t batch : batches) {
      const std::string name = benchmark_name("BM_gemv", "fp32", shape, batch, "eigen");
      configure(benchmark::RegisterBenchmark(name.c_str(), BM_gemv_fp32, shape, batch));
    }
    for (const Format& format : formats)
      for (const auto& [isa, isa_name] : isas) {
        for (const std::size_t batch : batches) {
          // The other shapes on the instruction set the library picks here; the scalar path (the
          // portable fallback) at batch 1 only.
          if (!first_shape && isa != lowbit::best_isa()) continue;
          if (batch > 1 && isa == lowbit::Isa::scalar) continue;
          const std::string name = benchmark_name("BM_gemv", format.name, shape, batch, isa_name);
          configure(benchmark::RegisterBenchmark(name.c_str(), BM_gemv, std::cref(format), shape,
                                                 batch, isa, false));
        }
        // The same batch-1 GEMV on one copy of the matrix, used over and over: the weights of a
        // quantized 4096 x 4096 matrix then stay in the L3, and the time is the kernel's own.
        if (first_shape) {
          const std::string name = benchmark_name("BM_gemv_l3", format.name, shape, 1, isa_name);
          configure(benchmark::RegisterBenchmark(name.c_str(), BM_gemv, std::cref(format), shape, 1,
                                                 isa, true));
        }
      }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  drop_caches();
  return 0;
}
