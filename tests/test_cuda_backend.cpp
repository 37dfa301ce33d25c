// The CUDA backend against the reference backend on the same QuantizedMatrix. These tests need a
// GPU (sm_80 or later) and a CUDA build; elsewhere they pass with a warning saying why they were
// skipped, after checking that the backend reports itself unavailable.
//
// Error bound. The kernels round the activations to fp16 (bf16), relative error u = 2^-11 (2^-8),
// decode the levels v exactly (NF4 and codebook table values rounded to the activation type too),
// sum in fp32, and round y to the activation type. Per output, with the kernels' form of a weight,
// s (v - z):
//   |y - y_ref| <= (u (1 + table) + (K + 16) 2^-22) sum_k |s| (|v| + |z|) |x_k|
//                  + u |y_ref| + 2^-24 (1 + sum_k |s| (|v| + |z|))
// (table = 1 for table formats; 2^-22 leaves the mma's fp32 accumulation 4 units of slack; the
// last term covers subnormal activations and outputs).
#include <catch2/catch.hpp>

#include "../kernels/cuda/packed_layout.hpp"
#include "support/bound_check.hpp"
#include "support/cuda_cases.hpp"
#include "support/random_data.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "lowbit/algo/incoherence.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/kernels/cuda.hpp"
#include "lowbit/kernels/gemm.hpp"
#include "lowbit/kernels/reference.hpp"

#if LOWBIT_TEST_CUDA_RUNTIME
#include <cuda_runtime.h>
#endif

namespace kernels = lowbit::kernels;
namespace cuda = lowbit::kernels::cuda;
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

/// The bound at the top of this file, for activations x (in the stored basis).
std::vector<double> error_bounds(const QuantizedMatrix& q, MatrixView<const float> x,
                                 const std::vector<float>& expected, double u) {
  const cuda::PackedMatrix p = cuda::pack(q);
  const double table = p.decode == cuda::Decode::lut4 ? 1.0 : 0.0;
  const double gamma = (static_cast<double>(q.cols()) + 16.0) * std::ldexp(1.0, -22);
  std::vector<double> bounds(x.rows * q.rows());
  for (std::size_t o = 0; o < q.rows(); ++o) {
    std::vector<double> weight(q.cols());
    double weight_sum = 0.0;
    for (std::size_t k = 0; k < q.cols(); ++k) {
      const std::size_t g = k / p.group;
      const double s = p.scales[g * p.padded_rows + o];
      const double z = p.has_zero ? p.zeros[g * p.padded_rows + o] : p.level_offset;
      weight[k] = std::abs(s) * (std::abs(static_cast<double>(cuda::level(p, o, k))) + std::abs(z));
      weight_sum += weight[k];
    }
    for (std::size_t b = 0; b < x.rows; ++b) {
      double magnitude = 0.0;
      for (std::size_t k = 0; k < q.cols(); ++k) magnitude += weight[k] * std::abs(x(b, k));
      const double y = std::abs(static_cast<double>(expected[b * q.rows() + o]));
      bounds[b * q.rows() + o] = (u * (1.0 + table) + gamma) * magnitude + u * y +
                                 std::ldexp(1.0, -24) * (1.0 + weight_sum);
    }
  }
  return bounds;
}

void check_against_reference(const kernels::Backend& backend, const QuantizedMatrix& q,
                             std::size_t batch, std::uint32_t seed) {
  const std::vector<float> xv = lowbit::test::gaussian(batch * q.cols(), seed, 1.0f);
  const MatrixView<const float> x(xv.data(), batch, q.cols());
  std::vector<float> expected(batch * q.rows());
  kernels::reference_gemm(q, x, MatrixView<float>(expected.data(), batch, q.rows()));
  const std::vector<float> rotated = kernels::detail::rotated_inputs(q, x);
  const std::vector<double> bounds = error_bounds(
      q, MatrixView<const float>(rotated.data(), batch, q.cols()), expected, std::ldexp(1.0, -11));
  const auto prepared = kernels::prepare(q, {}, backend);
  CHECK(!prepared->fallback());
  std::vector<float> y(batch * q.rows(), std::numeric_limits<float>::quiet_NaN());
  kernels::gemm(*prepared, x, MatrixView<float>(y.data(), batch, q.rows()));
  const lowbit::test::BoundCheck check = lowbit::test::check_bounds(y, expected, bounds);
  INFO(q.scheme().to_string() << " [" << q.rows() << ", " << q.cols() << "] batch " << batch << " ("
                              << kernels::cuda_kernel_for_batch(batch) << "): worst error / bound "
                              << check.worst);
  CHECK(check.outside == 0);
}

}  // namespace

TEST_CASE("the cuda backend matches the reference on ragged shapes", "[cuda][gpu]") {
  if (skipped()) return;
  const kernels::Backend& backend = kernels::cuda_backend();
  struct Shape {
    std::size_t rows, cols;
  };
  const std::vector<Shape> shapes = {{1, 1},     {5, 31},    {17, 100}, {33, 257},
                                     {64, 1000}, {130, 300}, {7, 6200}};
  std::uint32_t seed = 1000;
  for (const Shape& shape : shapes)
    for (const QuantizedMatrix& q : lowbit::test::cuda_cases(shape.rows, shape.cols, seed++)) {
      CHECK(backend.supports(q.scheme(), {}));
      // GEMV: 1..8 (padded to 1, 2, 4, 8); tensor cores: 9 and more (padded to 32).
      for (std::size_t batch : {1u, 2u, 3u, 5u, 8u, 9u, 16u, 33u, 70u})
        check_against_reference(backend, q, batch, seed++);
    }
}

TEST_CASE("the cuda backend rotates inputs and falls back like the cpu backend", "[cuda][gpu]") {
  if (skipped()) return;
  const kernels::Backend& backend = kernels::cuda_backend();
  const std::size_t rows = 12, cols = 96;
  const auto w = lowbit::test::weights_with_outliers(rows, cols, 1100);
  const MatrixView<const float> view(w.data(), rows, cols);
  const Scheme scheme = Scheme::asymmetric_int(4, Granularity::per_group(32));
  const QuantizedMatrix rotated = lowbit::quantize_incoherent(
      view, {48, 3, true},
      [&](MatrixView<const float> m) { return lowbit::quantize_linear(m, scheme); });
  check_against_reference(backend, rotated, 3, 1101);
  check_against_reference(backend, rotated, 20, 1102);
  // The device entry leaves the rotation to the caller, and says so.
  const auto prepared_rotated = kernels::prepare(rotated, {}, backend);
  CHECK_THROWS_AS(kernels::cuda_gemm(*prepared_rotated, {}), lowbit::unsupported);

  // A vector codebook and the int8 activation modes run on the reference kernels.
  const Scheme vector_codebook{.element = lowbit::ElementFormat::codebook,
                               .bits = 4,
                               .granularity = Granularity::none(),
                               .vector_dim = 2,
                               .codebook_granularity = Granularity::per_tensor(),
                               .codebook_format = lowbit::ScalarFormat::f16};
  const QuantizedMatrix vq = lowbit::quantize_codebook(view, vector_codebook);
  CHECK(!backend.supports(vq.scheme(), {}));
  kernels::PrepareOptions int8;
  int8.activations = kernels::ActivationQuantization::int8_per_token;
  const QuantizedMatrix q4 = lowbit::quantize_linear(view, scheme);
  CHECK(!backend.supports(q4.scheme(), int8));
  const std::vector<float> xv = lowbit::test::gaussian(2 * cols, 1103, 1.0f);
  const MatrixView<const float> x(xv.data(), 2, cols);
  for (const auto& [q, options] :
       {std::pair{&vq, kernels::PrepareOptions{}}, std::pair{&q4, int8}}) {
    const auto prepared = kernels::prepare(*q, options, backend);
    CHECK(prepared->fallback());
    std::vector<float> y(2 * rows), expected(2 * rows);
    kernels::gemm(*prepared, x, MatrixView<float>(y.data(), 2, rows));
    kernels::reference_gemm(*q, x, MatrixView<float>(expected.data(), 2, rows), options);
    CHECK(y == expected);
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
            error_bounds(q, x, expected, std::ldexp(1.0, bf16 ? -8 : -11));
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
