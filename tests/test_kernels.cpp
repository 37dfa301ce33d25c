// The kernels' tests that are not the conformance suite (test_backend_conformance.cpp, every
// backend against the reference on every format, shape and batch size): the reference's own
// definition, and what is specific to one backend.
#include <catch2/catch.hpp>

#include "support/random_data.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "lowbit/algo/incoherence.hpp"
#include "lowbit/algo/smoothquant.hpp"
#include "lowbit/cpu_features.hpp"
#include "lowbit/kernels/gemm.hpp"
#include "lowbit/kernels/int8_reference.hpp"
#include "lowbit/kernels/reference.hpp"
#include "lowbit/quant/ggml.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quant/microscaling.hpp"
#include "lowbit/quant/nf4.hpp"

using lowbit::Granularity;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;
using lowbit::Scheme;
namespace kernels = lowbit::kernels;

namespace {

/// The cpu backend for every instruction set this CPU runs.
std::vector<const kernels::Backend*> cpu_backends() {
  std::vector<const kernels::Backend*> out;
  for (lowbit::Isa isa : {lowbit::Isa::scalar, lowbit::Isa::avx2, lowbit::Isa::avx512})
    if (lowbit::supports(lowbit::cpu_features(), isa)) out.push_back(&kernels::cpu_backend(isa));
  return out;
}

std::vector<float> activations(std::size_t batch, std::size_t cols, std::uint32_t seed) {
  return lowbit::test::gaussian(batch * cols, seed, 1.0f);
}

}  // namespace

TEST_CASE("the reference GEMM is the float product of the unrotated weights", "[kernels]") {
  const std::size_t rows = 12, cols = 96;
  const auto w = lowbit::test::weights_with_outliers(rows, cols, 50);
  const QuantizedMatrix rotated = lowbit::quantize_incoherent(
      MatrixView<const float>(w.data(), rows, cols), {48, 3, true}, [](MatrixView<const float> m) {
        return lowbit::quantize_linear(m, Scheme::asymmetric_int(4, Granularity::per_group(32)));
      });
  const std::vector<float> xv = activations(2, cols, 53);
  std::vector<float> y(2 * rows);
  kernels::reference_gemm(rotated, MatrixView<const float>(xv.data(), 2, cols),
                          MatrixView<float>(y.data(), 2, rows));
  const std::vector<float> back = rotated.dequantize_unrotated();
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t o = 0; o < rows; ++o) {
      double sum = 0;
      for (std::size_t k = 0; k < cols; ++k)
        sum += static_cast<double>(xv[b * cols + k]) * back[o * cols + k];
      CHECK(y[b * rows + o] == Approx(sum).margin(1e-5));
    }
}

TEST_CASE("the reference int8 GEMM is W8A8 and W4A8", "[kernels]") {
  const std::size_t rows = 7, cols = 100, batch = 3;
  const auto w = lowbit::test::weights_with_outliers(rows, cols, 60);
  const MatrixView<const float> view(w.data(), rows, cols);
  const std::vector<float> xv = activations(batch, cols, 61);
  const MatrixView<const float> x(xv.data(), batch, cols);
  kernels::PrepareOptions int8;
  int8.activations = kernels::ActivationQuantization::int8_per_token;

  // W8A8: the same as SmoothQuant's w8a8_gemm up to the order of two double products.
  const QuantizedMatrix q8 = lowbit::quantize_w8a8_weights(view);
  std::vector<float> y(batch * rows), expected(batch * rows);
  kernels::reference_gemm(q8, x, MatrixView<float>(y.data(), batch, rows), int8);
  lowbit::w8a8_gemm(q8, x, MatrixView<float>(expected.data(), batch, rows));
  for (std::size_t i = 0; i < y.size(); ++i) CHECK(y[i] == Approx(expected[i]).epsilon(1e-6));

  // W4A8, asymmetric g32: within the activations' int8 step of the float product.
  const QuantizedMatrix q4 =
      lowbit::quantize_linear(view, Scheme::asymmetric_int(4, Granularity::per_group(32)));
  kernels::reference_gemm(q4, x, MatrixView<float>(y.data(), batch, rows), int8);
  const std::vector<float> back = q4.dequantize();
  for (std::size_t b = 0; b < batch; ++b) {
    float absmax = 0;
    for (std::size_t k = 0; k < cols; ++k) absmax = std::max(absmax, std::abs(xv[b * cols + k]));
    const double half_step = absmax / 127.0 / 2.0;
    for (std::size_t o = 0; o < rows; ++o) {
      double exact = 0, bound = 0;
      for (std::size_t k = 0; k < cols; ++k) {
        exact += static_cast<double>(xv[b * cols + k]) * back[o * cols + k];
        bound += half_step * std::abs(back[o * cols + k]);
      }
      CHECK(std::abs(y[b * rows + o] - exact) <= bound * 1.0001 + 1e-6);
    }
  }
}

TEST_CASE("GEMM reports what it cannot do", "[kernels]") {
  const auto w = lowbit::test::gaussian(4 * 32, 70);
  const QuantizedMatrix q =
      lowbit::quantize_linear(MatrixView<const float>(w.data(), 4, 32),
                              Scheme::symmetric_int(4, Granularity::per_channel()));
  const auto prepared = kernels::prepare(q);
  std::vector<float> x(2 * 31), y(2 * 4);
  CHECK_THROWS_AS(kernels::gemm(*prepared, MatrixView<const float>(x.data(), 2, 31),
                                MatrixView<float>(y.data(), 2, 4)),
                  lowbit::invalid_argument);
  x.resize(2 * 32);
  CHECK_THROWS_AS(kernels::gemm(*prepared, MatrixView<const float>(x.data(), 2, 32),
                                MatrixView<float>(y.data(), 1, 4)),
                  lowbit::invalid_argument);
  // A matrix prepared by one backend cannot run on another.
  CHECK_THROWS_AS(
      kernels::reference_backend().gemm(*prepared, MatrixView<const float>(x.data(), 2, 32),
                                        MatrixView<float>(y.data(), 2, 4)),
      lowbit::invalid_argument);
  // LLM.int8() needs int8 per-channel weights; int8 activations need integer weights.
  kernels::PrepareOptions llm_int8;
  llm_int8.activations = kernels::ActivationQuantization::llm_int8;
  CHECK_THROWS_AS(kernels::prepare(q, llm_int8), lowbit::unsupported);
  lowbit::Nf4Options nf4;
  nf4.block = 32;
  kernels::PrepareOptions int8;
  int8.activations = kernels::ActivationQuantization::int8_per_token;
  CHECK_THROWS_AS(
      kernels::prepare(lowbit::quantize_nf4(MatrixView<const float>(w.data(), 4, 32), nf4), int8),
      lowbit::unsupported);
  CHECK(kernels::cpu_backend().name().rfind("cpu/", 0) == 0);
}

TEST_CASE("the cpu kernels split their rows over threads without changing a result", "[kernels]") {
  // GEMMs large enough to be shared (from 2^18 multiply-adds): the batch-1 GEMV over rows longer
  // than L1, the GEMV tiles, the dequantized panels. The conformance suite runs one thread.
  struct Case {
    std::size_t rows, cols;
    std::vector<std::size_t> batches;
  };
  const std::vector<Case> cases = {{48, 6200, {1, 3}}, {130, 300, {9, 12, 33}}};
  kernels::PrepareOptions int8;
  int8.activations = kernels::ActivationQuantization::int8_per_token;
  kernels::PrepareOptions llm_int8;
  llm_int8.activations = kernels::ActivationQuantization::llm_int8;
  lowbit::Nf4Options nf4;
  nf4.block = 64;
  std::uint32_t seed = 500;
  for (const Case& c : cases) {
    const auto w = lowbit::test::weights_with_outliers(c.rows, c.cols, seed++);
    const MatrixView<const float> view(w.data(), c.rows, c.cols);
    const std::vector<std::pair<QuantizedMatrix, kernels::PrepareOptions>> matrices = {
        {lowbit::quantize_linear(view, Scheme::asymmetric_int(4, Granularity::per_group(64))), {}},
        {lowbit::quantize_linear(view, Scheme::symmetric_int(8, Granularity::per_channel())), {}},
        {lowbit::quantize_linear(view, Scheme::asymmetric_int(3, Granularity::per_group(32))), {}},
        {lowbit::quantize_nf4(view, nf4), {}},
        {lowbit::quantize_mxfp4(view), {}},
        {lowbit::quantize_mxfp8(view), {}},
        {lowbit::quantize_ggml(view, lowbit::GgmlType::bf16), {}},
        {lowbit::quantize_w8a8_weights(view), int8},
        {lowbit::quantize_w8a8_weights(view), llm_int8},
        {lowbit::quantize_linear(view, Scheme::asymmetric_int(4, Granularity::per_group(32))),
         int8},
    };
    for (const auto& [q, options] : matrices)
      for (const kernels::Backend* backend : cpu_backends()) {
        const auto prepared = kernels::prepare(q, options, *backend);
        REQUIRE(!prepared->fallback());
        for (const std::size_t batch : c.batches) {
          const std::vector<float> x = activations(batch, c.cols, seed++);
          std::vector<float> one(batch * c.rows), several(batch * c.rows);
          kernels::set_num_threads(1);
          kernels::gemm(*prepared, x, one);
          kernels::set_num_threads(4);
          kernels::gemm(*prepared, x, several);
          kernels::set_num_threads(0);
          INFO(backend->name() << " " << q.scheme().to_string() << " "
                               << kernels::to_string(options.activations) << " [" << c.rows << ", "
                               << c.cols << "] batch " << batch);
          CHECK(one == several);
        }
      }
  }
}

TEST_CASE("PreparedMatrix::bytes counts what a GEMM call reads", "[kernels]") {
  const std::size_t rows = 6, cols = 300;  // 10 blocks of 32 after padding
  const auto w = lowbit::test::gaussian(rows * cols, 91);
  const MatrixView<const float> view(w.data(), rows, cols);
  const QuantizedMatrix int4 =
      lowbit::quantize_linear(view, Scheme::asymmetric_int(4, Granularity::per_group(64)));
  // The reference multiplies the dequantized floats.
  CHECK(kernels::prepare(int4, {}, kernels::reference_backend())->bytes() == rows * cols * 4);
  for (const kernels::Backend* backend : cpu_backends()) {
    INFO(backend->name());
    // 4-bit codes of the padded row, and an f32 scale and bias per group of 64 (5 groups).
    CHECK(kernels::prepare(int4, {}, *backend)->bytes() == rows * (320 / 2 + 5 * 2 * 4));
    const QuantizedMatrix bf16 = lowbit::quantize_ggml(view, lowbit::GgmlType::bf16);
    CHECK(kernels::prepare(bf16, {}, *backend)->bytes() == rows * (320 * 2 + 4));
  }
}
