// What is specific to the CUDA backend: its device entry (cuda_gemm on device pointers, fp16 and
// bf16, row strides), what that entry refuses, and how the backend says it cannot run. Its results
// against the reference on every format, shape and batch size (through Backend::gemm) are the
// conformance suite's, test_backend_conformance.cpp, under the bound of
// support/backend_conformance.hpp. The device tests need a GPU (sm_80 or later) and a CUDA build;
// elsewhere they pass with a warning saying why they were skipped, after checking that the backend
// reports itself unavailable.
#include <catch2/catch.hpp>

#include "support/backend_conformance.hpp"
#include "support/cuda_cases.hpp"
#include "support/random_data.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/algo/incoherence.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/kernels/cuda.hpp"
#include "lowbit/kernels/gemm.hpp"
#include "lowbit/kernels/reference.hpp"
#include "lowbit/quant/codebook.hpp"
#include "lowbit/quant/linear.hpp"

#if LOWBIT_TEST_CUDA_RUNTIME
#include <cuda_runtime.h>
#endif

namespace kernels = lowbit::kernels;
using lowbit::Granularity;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;
using lowbit::Scheme;

namespace {

/// Why the CUDA backend cannot run here; empty when it can.
std::string skip_reason() {
  if (kernels::cuda_available()) return {};
  try {
    kernels::cuda_backend();
  } catch (const lowbit::unsupported& e) {
    return e.what();
  }
  return "cuda_available() is false";
}

/// True (after a visible warning) when there is no GPU to test on.
bool skipped() {
  const std::string reason = skip_reason();
  if (reason.empty()) return false;
  WARN("no CUDA device: skipped (" << reason << ")");
  CHECK_THROWS_AS(kernels::cuda_backend(), lowbit::unsupported);
  return true;
}

}  // namespace

TEST_CASE("cuda_gemm refuses rotated, fallback and foreign matrices", "[cuda][gpu]") {
  if (skipped()) return;
  const kernels::Backend& backend = kernels::cuda_backend();
  const std::size_t rows = 12, cols = 96;
  const auto w = lowbit::test::weights_with_outliers(rows, cols, 1100);
  const MatrixView<const float> view(w.data(), rows, cols);
  const Scheme scheme = Scheme::asymmetric_int(4, Granularity::per_group(32));
  // The device entry leaves the rotation to the caller, and says so.
  const QuantizedMatrix rotated = lowbit::quantize_incoherent(
      view, {48, 3, true},
      [&](MatrixView<const float> m) { return lowbit::quantize_linear(m, scheme); });
  const auto prepared_rotated = kernels::prepare(rotated, {}, backend);
  CHECK(!prepared_rotated->fallback());
  CHECK_THROWS_AS(kernels::cuda_gemm(*prepared_rotated, {}), lowbit::unsupported);
  // A vector codebook and the int8 activation modes run on the host's reference kernels only.
  const Scheme vector_codebook{.element = lowbit::ElementFormat::codebook,
                               .bits = 4,
                               .granularity = Granularity::none(),
                               .vector_dim = 2,
                               .codebook_granularity = Granularity::per_tensor(),
                               .codebook_format = lowbit::ScalarFormat::f16};
  kernels::PrepareOptions int8;
  int8.activations = kernels::ActivationQuantization::int8_per_token;
  const QuantizedMatrix q4 = lowbit::quantize_linear(view, scheme);
  for (const auto& prepared :
       {kernels::prepare(lowbit::quantize_codebook(view, vector_codebook), {}, backend),
        kernels::prepare(q4, int8, backend)}) {
    CHECK(prepared->fallback());
    CHECK_THROWS_AS(kernels::cuda_gemm(*prepared, {}), lowbit::unsupported);
  }
  // A matrix another backend prepared.
  const auto on_cpu = kernels::prepare(q4, {}, kernels::cpu_backend());
  CHECK_THROWS_AS(kernels::cuda_gemm(*on_cpu, {}), lowbit::invalid_argument);
}

#if LOWBIT_TEST_CUDA_RUNTIME
TEST_CASE("cuda_gemm runs fp16 and bf16 device activations with row strides", "[cuda][gpu]") {
  if (skipped()) return;
  const kernels::Backend& backend = kernels::cuda_backend();
  const std::size_t rows = 45, cols = 300, x_stride = cols + 3, y_stride = rows + 5;
  std::uint32_t seed = 1200;
  for (const QuantizedMatrix& q : lowbit::test::cuda_cases(rows, cols, seed++)) {
    const auto prepared = kernels::prepare(q, {}, backend);
    for (const auto activation : {kernels::CudaActivation::fp16, kernels::CudaActivation::bf16})
      for (const std::size_t batch : {1u, 6u, 40u}) {
        const std::vector<float> xv = lowbit::test::gaussian(batch * cols, seed++, 1.0f);
        const MatrixView<const float> x(xv.data(), batch, cols);
        std::vector<float> expected(batch * rows);
        kernels::reference_gemm(q, x, MatrixView<float>(expected.data(), batch, rows));
        const bool bf16 = activation == kernels::CudaActivation::bf16;
        auto encode = [bf16](float v) -> std::uint16_t {
          return bf16 ? lowbit::bfloat16::encode(v).code : lowbit::float16::encode(v).code;
        };
        auto decode = [bf16](std::uint16_t v) {
          return bf16 ? lowbit::bfloat16::from_bits(v).to_float()
                      : lowbit::float16::from_bits(v).to_float();
        };
        std::vector<std::uint16_t> x16(batch * x_stride, 0), y16(batch * y_stride, 0);
        for (std::size_t b = 0; b < batch; ++b)
          for (std::size_t k = 0; k < cols; ++k) x16[b * x_stride + k] = encode(x(b, k));
        void* xd = nullptr;
        void* yd = nullptr;
        REQUIRE(cudaMalloc(&xd, x16.size() * 2) == cudaSuccess);
        REQUIRE(cudaMalloc(&yd, y16.size() * 2) == cudaSuccess);
        REQUIRE(cudaMemcpy(xd, x16.data(), x16.size() * 2, cudaMemcpyHostToDevice) == cudaSuccess);
        kernels::CudaGemmArgs args;
        args.x = xd;
        args.y = yd;
        args.batch = batch;
        args.x_stride = x_stride;
        args.y_stride = y_stride;
        args.activation = activation;
        kernels::cuda_gemm(*prepared, args);
        REQUIRE(cudaMemcpy(y16.data(), yd, y16.size() * 2, cudaMemcpyDeviceToHost) == cudaSuccess);
        cudaFree(xd);
        cudaFree(yd);
        const std::vector<double> bounds =
            lowbit::test::cuda_kernel_bounds(q, x, expected, std::ldexp(1.0, bf16 ? -8 : -11));
        std::size_t bad = 0;
        for (std::size_t b = 0; b < batch; ++b)
          for (std::size_t o = 0; o < rows; ++o)
            bad += !(std::abs(decode(y16[b * y_stride + o]) - expected[b * rows + o]) <=
                     bounds[b * rows + o]);
        INFO(q.scheme().to_string() << (bf16 ? " bf16" : " fp16") << " batch " << batch);
        CHECK(bad == 0);
      }
  }
}
#endif

TEST_CASE("the cuda backend says when it cannot run", "[cuda]") {
  if (kernels::cuda_available()) {
    CHECK(kernels::cuda_backend().name() == "cuda");
    return;
  }
  CHECK_THROWS_AS(kernels::cuda_backend(), lowbit::unsupported);
  CHECK(std::string(kernels::cuda_kernel_for_batch(8)) == "gemv");
  CHECK(std::string(kernels::cuda_kernel_for_batch(9)) == "mma");
}
