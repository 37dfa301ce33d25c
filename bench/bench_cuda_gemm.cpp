// The CUDA backend's kernels on the GPU, against the same GPU's own yardsticks measured in the same
// run: device-to-device copy bandwidth for the GEMV, cuBLAS fp16 GEMM (cublasGemmEx, fp32 compute)
// for the tensor-core kernel. Without a GPU (or a CUDA build) it prints why and exits 0.
//
// Y [batch, out] = X [batch, in] W^T, fp16 activations on the device (lowbit::kernels::cuda_gemm,
// staging and scratch allocation included), W random codes and scales of
//   int4_sym_g128   Scheme::symmetric_int(4, per_group(128))   (W4A16, GPTQ-like)
//   int4_asym_g128  Scheme::asymmetric_int(4, per_group(128))  (W4A16 with zero points, AWQ-like)
// Benchmarks, in this order (later ones divide by what earlier ones measured):
//   BM_copy_d2d                    cudaMemcpy device to device of 1 GiB; bytes_per_second counts
//                                  the bytes read plus written, what a copy moves through DRAM
//   BM_gemv/FORMAT/OUTxIN          batch 1 in 4096x4096, 8192x8192 and 28672x8192 (out x in);
//                                  bytes_per_second = PreparedMatrix::bytes() per call,
//                                  of_copy = that over BM_copy_d2d's rate. Enough prepared copies
//                                  rotate (>= 256 MiB of weights) that every call reads DRAM, not
//                                  the 50 MiB L2.
//   BM_cublas/OUTxIN/batch:B       cublasGemmEx, fp16 W and X, fp32 compute, batch 16, 64, 256 at
//                                  8192x8192; tflops = 2 out in batch per call
//   BM_mma/FORMAT/OUTxIN/batch:B   the tensor-core kernel on the same shapes; of_cublas = its
//                                  TFLOP/s over cuBLAS's at the same batch
// Times are CUDA events around each call (UseManualTime).
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/kernels/cuda.hpp"
#include "lowbit/kernels/gemm.hpp"
#include "lowbit/quantized_matrix.hpp"

namespace {

namespace kernels = lowbit::kernels;
using lowbit::Granularity;
using lowbit::QuantizedMatrix;
using lowbit::Scheme;

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(status));
    std::exit(1);
  }
}

/// Times one call with CUDA events, in seconds.
template <class F>
double timed(F&& call) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  check(cudaEventRecord(start), "cudaEventRecord");
  call();
  check(cudaEventRecord(stop), "cudaEventRecord");
  check(cudaEventSynchronize(stop), "cudaEventSynchronize");
  float ms = 0.0f;
  check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return static_cast<double>(ms) * 1e-3;
}

/// A device array freed at scope exit.
struct DeviceArray {
  void* data = nullptr;
  explicit DeviceArray(std::size_t bytes) { check(cudaMalloc(&data, bytes), "cudaMalloc"); }
  ~DeviceArray() { cudaFree(data); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
};

/// Random codes and scales (zero points too): the kernels' speed does not depend on the values.
QuantizedMatrix random_matrix(const Scheme& scheme, std::size_t rows, std::size_t cols,
                              std::uint32_t seed) {
  QuantizedMatrix q(scheme, rows, cols);
  std::mt19937 rng(seed);
  for (std::uint32_t& word : q.packed_codes()) word = static_cast<std::uint32_t>(rng());
  std::uniform_real_distribution<float> scale(0.001f, 0.01f);
  for (std::size_t i = 0; i < q.scale_grid().size(); ++i) {
    q.set_scale(i, scale(rng));
    if (scheme.has_zero_point()) q.set_zero(i, static_cast<float>(rng() % 16));
  }
  return q;
}

Scheme scheme_named(const std::string& name) {
  return name == "int4_asym_g128" ? Scheme::asymmetric_int(4, Granularity::per_group(128))
                                  : Scheme::symmetric_int(4, Granularity::per_group(128));
}

/// Random fp16 activations [batch, cols] on the device.
std::unique_ptr<DeviceArray> random_activations(std::size_t batch, std::size_t cols) {
  std::vector<__half> host(batch * cols);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (__half& v : host) v = __float2half(normal(rng));
  auto device = std::make_unique<DeviceArray>(host.size() * sizeof(__half));
  check(cudaMemcpy(device->data, host.data(), host.size() * sizeof(__half), cudaMemcpyHostToDevice),
        "cudaMemcpy");
  return device;
}

double copy_rate = 0.0;                     // BM_copy_d2d, bytes (read + written) per second
std::map<std::size_t, double> cublas_rate;  // BM_cublas, FLOP/s by batch

void BM_copy_d2d(benchmark::State& state) {
  const std::size_t bytes = std::size_t{1} << 30;
  DeviceArray from(bytes), to(bytes);
  check(cudaMemset(from.data, 1, bytes), "cudaMemset");
  double seconds = 0.0;
  std::size_t calls = 0;
  for (auto _ : state) {
    const double t = timed(
        [&] { check(cudaMemcpy(to.data, from.data, bytes, cudaMemcpyDeviceToDevice), "copy"); });
    state.SetIterationTime(t);
    seconds += t;
    ++calls;
  }
  copy_rate = 2.0 * static_cast<double>(bytes) * static_cast<double>(calls) / seconds;
  state.SetBytesProcessed(static_cast<std::int64_t>(2 * bytes * state.iterations()));
}

void BM_gemv(benchmark::State& state, std::string format, std::size_t out, std::size_t in) {
  const Scheme scheme = scheme_named(format);
  std::vector<std::unique_ptr<kernels::PreparedMatrix>> copies;
  std::size_t weight_bytes = 0;
  do {
    copies.push_back(
        kernels::prepare(random_matrix(scheme, out, in, static_cast<std::uint32_t>(copies.size())),
                         {}, kernels::cuda_backend()));
    weight_bytes = copies.front()->bytes();
  } while (copies.size() * weight_bytes < (std::size_t{256} << 20));
  const auto x = random_activations(1, in);
  DeviceArray y(out * sizeof(__half));
  kernels::CudaGemmArgs args;
  args.x = x->data;
  args.y = y.data;
  args.batch = 1;
  kernels::cuda_gemm(*copies.front(), args);  // warm up
  std::size_t next = 0;
  double seconds = 0.0;
  for (auto _ : state) {
    const kernels::PreparedMatrix& w = *copies[next++ % copies.size()];
    const double t = timed([&] { kernels::cuda_gemm(w, args); });
    state.SetIterationTime(t);
    seconds += t;
  }
  const double rate =
      static_cast<double>(weight_bytes) * static_cast<double>(state.iterations()) / seconds;
  state.SetBytesProcessed(static_cast<std::int64_t>(weight_bytes * state.iterations()));
  state.counters["weight_bytes"] = static_cast<double>(weight_bytes);
  if (copy_rate > 0.0) state.counters["of_copy"] = rate / copy_rate;
}

void BM_cublas(benchmark::State& state, std::size_t out, std::size_t in, std::size_t batch) {
  cublasHandle_t handle;
  if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
    state.SkipWithError("cublasCreate failed");
    return;
  }
  const auto w = random_activations(out, in);  // fp16 weights, [out, in] row-major
  const auto x = random_activations(batch, in);
  DeviceArray y(batch * out * sizeof(__half));
  const float alpha = 1.0f, beta = 0.0f;
  // Column-major: Y^T [out, batch] = W [out, in] X^T [in, batch], W stored as [in, out].
  auto call = [&] {
    cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out), static_cast<int>(batch),
                 static_cast<int>(in), &alpha, w->data, CUDA_R_16F, static_cast<int>(in), x->data,
                 CUDA_R_16F, static_cast<int>(in), &beta, y.data, CUDA_R_16F, static_cast<int>(out),
                 CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  };
  call();
  double seconds = 0.0;
  for (auto _ : state) {
    const double t = timed(call);
    state.SetIterationTime(t);
    seconds += t;
  }
  cublasDestroy(handle);
  const double flops = 2.0 * static_cast<double>(out * in * batch);
  cublas_rate[batch] = flops * static_cast<double>(state.iterations()) / seconds;
  state.counters["tflops"] = cublas_rate[batch] * 1e-12;
}

void BM_mma(benchmark::State& state, std::string format, std::size_t out, std::size_t in,
            std::size_t batch) {
  const auto w = kernels::prepare(random_matrix(scheme_named(format), out, in, 1), {},
                                  kernels::cuda_backend());
  const auto x = random_activations(batch, in);
  DeviceArray y(batch * out * sizeof(__half));
  kernels::CudaGemmArgs args;
  args.x = x->data;
  args.y = y.data;
  args.batch = batch;
  kernels::cuda_gemm(*w, args);
  double seconds = 0.0;
  for (auto _ : state) {
    const double t = timed([&] { kernels::cuda_gemm(*w, args); });
    state.SetIterationTime(t);
    seconds += t;
  }
  const double rate = 2.0 * static_cast<double>(out * in * batch) *
                      static_cast<double>(state.iterations()) / seconds;
  state.counters["tflops"] = rate * 1e-12;
  if (cublas_rate.count(batch) != 0) state.counters["of_cublas"] = rate / cublas_rate[batch];
}

void register_benchmarks() {
  benchmark::RegisterBenchmark("BM_copy_d2d", BM_copy_d2d)->UseManualTime();
  const std::vector<std::pair<std::size_t, std::size_t>> gemv_shapes = {
      {4096, 4096}, {8192, 8192}, {28672, 8192}};
  for (const std::string format : {"int4_sym_g128", "int4_asym_g128"})
    for (const auto& [out, in] : gemv_shapes)
      benchmark::RegisterBenchmark(
          ("BM_gemv/" + format + "/" + std::to_string(out) + "x" + std::to_string(in)).c_str(),
          BM_gemv, format, out, in)
          ->UseManualTime();
  const std::size_t out = 8192, in = 8192;
  for (const std::size_t batch : {16u, 64u, 256u})
    benchmark::RegisterBenchmark(("BM_cublas/8192x8192/batch:" + std::to_string(batch)).c_str(),
                                 BM_cublas, out, in, batch)
        ->UseManualTime();
  for (const std::string format : {"int4_sym_g128", "int4_asym_g128"})
    for (const std::size_t batch : {16u, 64u, 256u})
      benchmark::RegisterBenchmark(
          ("BM_mma/" + format + "/8192x8192/batch:" + std::to_string(batch)).c_str(), BM_mma,
          format, out, in, batch)
          ->UseManualTime();
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (!kernels::cuda_available()) {
    try {
      kernels::cuda_backend();
    } catch (const std::exception& e) {
      std::printf("bench_cuda_gemm: skipped: %s\n", e.what());
    }
    return 0;
  }
  register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
