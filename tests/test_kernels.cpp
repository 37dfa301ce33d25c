#include <catch2/catch.hpp>

#include "support/bound_check.hpp"
#include "support/random_data.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "lowbit/algo/hqq.hpp"
#include "lowbit/algo/incoherence.hpp"
#include "lowbit/algo/smoothquant.hpp"
#include "lowbit/cpu_features.hpp"
#include "lowbit/format/ggml_blocks.hpp"
#include "lowbit/kernels/gemm.hpp"
#include "lowbit/kernels/int8_reference.hpp"
#include "lowbit/kernels/reference.hpp"
#include "lowbit/quant/codebook.hpp"
#include "lowbit/quant/fp8.hpp"
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

/// Every CPU backend this machine runs, and the reference.
std::vector<const kernels::Backend*> backends() {
  std::vector<const kernels::Backend*> out{&kernels::reference_backend()};
  for (lowbit::Isa isa : {lowbit::Isa::scalar, lowbit::Isa::avx2, lowbit::Isa::avx512})
    if (lowbit::supports(lowbit::cpu_features(), isa)) out.push_back(&kernels::cpu_backend(isa));
  return out;
}

std::vector<float> activations(std::size_t batch, std::size_t cols, std::uint32_t seed) {
  return lowbit::test::gaussian(batch * cols, seed, 1.0f);
}

/// The bound on |kernel - exact| for float summation in any order: (terms + 4) * 2^-24 times the
/// sum of the magnitudes of everything summed. A kernel sums an integer weight's s (u - z) x as
/// s u x and -z s x separately (see kernels/cpu/packed_weights.hpp), so both magnitudes count;
/// other formats contribute |dequantized weight| |x|.
std::vector<double> error_bounds(const QuantizedMatrix& q, MatrixView<const float> x) {
  const Scheme& scheme = q.scheme();
  std::vector<double> bounds(x.rows * q.rows());
  const int offset =
      scheme.element == lowbit::ElementFormat::int_signed ? 1 << (scheme.bits - 1) : 0;
  const std::vector<float> values = lowbit::element_values(scheme);
  const double gamma = (static_cast<double>(q.cols()) + 4.0) * std::ldexp(1.0, -24);
  const std::vector<float> back = q.dequantize();  // in the stored (rotated) basis
  std::vector<float> xr(x.cols);
  for (std::size_t b = 0; b < x.rows; ++b) {
    std::copy(x.row(b).begin(), x.row(b).end(), xr.begin());
    q.rotate_input(xr);
    for (std::size_t o = 0; o < q.rows(); ++o) {
      double magnitude = 0.0;
      for (std::size_t k = 0; k < q.cols(); ++k) {
        if (!scheme.is_integer()) {  // |scaled value|: the decoded value times its scale
          magnitude += std::abs(static_cast<double>(back[o * q.cols() + k])) *
                       std::abs(static_cast<double>(xr[k]));
          continue;
        }
        // Integer levels unsigned, as the kernel sums them: s (u + z) |x|.
        const std::size_t index = q.scale_index(o, k);
        const double s = std::abs(static_cast<double>(q.scale(index)) * q.tensor_scale());
        const double level = std::abs(static_cast<double>(values[q.code(o, k)])) + offset;
        const double zero = std::abs(static_cast<double>(q.zero(index))) + offset;
        magnitude += s * (level + zero) * std::abs(static_cast<double>(xr[k]));
      }
      bounds[b * q.rows() + o] = gamma * magnitude + 1e-30;
    }
  }
  return bounds;
}

void check_against_reference(const QuantizedMatrix& q, std::size_t batch, std::uint32_t seed) {
  const std::vector<float> xv = activations(batch, q.cols(), seed);
  const MatrixView<const float> x(xv.data(), batch, q.cols());
  std::vector<float> expected(batch * q.rows());
  kernels::reference_gemm(q, x, MatrixView<float>(expected.data(), batch, q.rows()));
  const std::vector<double> bounds = error_bounds(q, x);
  for (const kernels::Backend* backend : backends()) {
    const auto prepared = kernels::prepare(q, {}, *backend);
    std::vector<float> y(batch * q.rows(), std::numeric_limits<float>::quiet_NaN());
    kernels::gemm(*prepared, x, MatrixView<float>(y.data(), batch, q.rows()));
    const lowbit::test::BoundCheck check = lowbit::test::check_bounds(y, expected, bounds);
    INFO(backend->name() << " " << q.scheme().to_string() << " [" << q.rows() << ", " << q.cols()
                         << "] batch " << batch << ": worst error / bound " << check.worst);
    CHECK(check.outside == 0);
    CHECK(prepared->fallback() == !backend->supports(q.scheme(), {}));
  }
}

}  // namespace

TEST_CASE("every backend's GEMM matches the reference on ragged shapes", "[kernels]") {
  const std::vector<Scheme> schemes = {
      Scheme::symmetric_int(4, Granularity::per_group(32)),
      Scheme::asymmetric_int(4, Granularity::per_group(64)),
      Scheme::asymmetric_int(4, Granularity::per_group(128), lowbit::ScalarFormat::bf16),
      Scheme::symmetric_int(4, Granularity::per_channel()),
      Scheme::asymmetric_int(4, Granularity::per_tensor(), lowbit::ScalarFormat::f32),
      Scheme::symmetric_int(8, Granularity::per_channel(), lowbit::ScalarFormat::f32),
      Scheme::asymmetric_int(8, Granularity::per_group(32)),
      Scheme::asymmetric_int(3, Granularity::per_group(32)),  // 4-bit slots through a table
      Scheme::symmetric_int(2, Granularity::per_group(64)),
  };
  struct Shape {
    std::size_t rows, cols;
  };
  // 6200 columns: rows longer than the kernels keep in L1 (batch 1 then runs rows in tiles).
  const std::vector<Shape> shapes = {{1, 1},    {5, 31},  {3, 33},   {17, 100},
                                     {64, 257}, {9, 512}, {7, 6200}, {19, 6200}};
  std::uint32_t seed = 1;
  for (const Scheme& scheme : schemes)
    for (const Shape& shape : shapes) {
      const auto w = lowbit::test::weights_with_outliers(shape.rows, shape.cols, seed++);
      const QuantizedMatrix q = lowbit::quantize_linear(
          MatrixView<const float>(w.data(), shape.rows, shape.cols), scheme);
      for (std::size_t batch : {1u, 2u, 3u, 7u, 8u, 9u, 17u})
        check_against_reference(q, batch, seed++);
    }
}

TEST_CASE("every backend runs the table and minifloat formats like the reference", "[kernels]") {
  std::uint32_t seed = 200;
  for (const std::size_t cols : {32u, 48u, 100u, 256u, 6200u}) {
    const std::size_t rows = 11;
    const auto w = lowbit::test::weights_with_outliers(rows, cols, seed++);
    const MatrixView<const float> view(w.data(), rows, cols);
    std::vector<QuantizedMatrix> matrices;
    matrices.push_back(lowbit::quantize_mxfp4(view));
    matrices.push_back(lowbit::quantize_nvfp4(view));  // groups of 16, a tensor scale
    matrices.push_back(lowbit::quantize_mxfp8(view));  // E4M3
    // E4M3 with float scales per channel, and in 2-D blocks (4 x 64 crosses block rows here).
    matrices.push_back(lowbit::quantize_fp8(view, {}));
    matrices.push_back(lowbit::quantize_fp8(view, {.granularity = Granularity::per_block(4, 64)}));
    matrices.push_back(lowbit::quantize_fp8(view, {.granularity = Granularity::per_block(128, 128),
                                                   .scale_format = lowbit::ScalarFormat::bf16}));
    lowbit::Nf4Options nf4;
    nf4.block = 64;
    nf4.double_quant = true;
    nf4.double_quant_block = 4;
    matrices.push_back(lowbit::quantize_nf4(view, nf4));
    for (const Granularity g : {Granularity::per_tensor(), Granularity::per_channel()}) {
      const Scheme codebook{.element = lowbit::ElementFormat::codebook,
                            .bits = 4,
                            .granularity = Granularity::none(),
                            .codebook_granularity = g,
                            .codebook_format = lowbit::ScalarFormat::f16};
      matrices.push_back(lowbit::quantize_codebook(view, codebook));
    }
    for (const QuantizedMatrix& q : matrices) {
      for (const kernels::Backend* backend : backends())
        if (backend != &kernels::reference_backend()) CHECK(backend->supports(q.scheme(), {}));
      for (std::size_t batch : {1u, 4u, 9u, 16u}) check_against_reference(q, batch, seed++);
    }
  }
  // An E4M3 NaN code cannot be decoded by the fast path: the reference runs that matrix.
  const auto w = lowbit::test::gaussian(4 * 32, 210);
  QuantizedMatrix q = lowbit::quantize_mxfp8(MatrixView<const float>(w.data(), 4, 32));
  q.set_code(2, 5, 0x7F);
  for (const kernels::Backend* backend : backends()) {
    const auto prepared = kernels::prepare(q, {}, *backend);
    CHECK(prepared->fallback() == (backend != &kernels::reference_backend()));
    std::vector<float> x(32, 1.0f), y(4);
    kernels::gemm(*prepared, MatrixView<const float>(x.data(), 1, 32),
                  MatrixView<float>(y.data(), 1, 4));
    CHECK(std::isnan(y[2]));
    CHECK(!std::isnan(y[1]));
  }
}

TEST_CASE("GEMM handles rotations, fallbacks and fractional zeros", "[kernels]") {
  const std::size_t rows = 12, cols = 96;
  const auto w = lowbit::test::weights_with_outliers(rows, cols, 50);
  const MatrixView<const float> view(w.data(), rows, cols);
  const Scheme scheme = Scheme::asymmetric_int(4, Granularity::per_group(32));
  // A Hadamard-rotated matrix: the backends rotate the activations.
  const QuantizedMatrix rotated = lowbit::quantize_incoherent(
      view, {48, 3, true},
      [&](MatrixView<const float> m) { return lowbit::quantize_linear(m, scheme); });
  check_against_reference(rotated, 5, 51);
  // NF4 through the table kernel; a vector codebook has no CPU kernel: the reference runs it.
  lowbit::Nf4Options nf4;
  nf4.block = 32;
  check_against_reference(lowbit::quantize_nf4(view, nf4), 3, 52);
  const Scheme vector_codebook{.element = lowbit::ElementFormat::codebook,
                               .bits = 4,
                               .granularity = Granularity::none(),
                               .vector_dim = 2,
                               .codebook_granularity = Granularity::per_tensor(),
                               .codebook_format = lowbit::ScalarFormat::f16};
  check_against_reference(lowbit::quantize_codebook(view, vector_codebook), 3, 54);
  // HQQ's fractional zero points.
  lowbit::HqqOptions hqq;
  hqq.group_size = 32;
  check_against_reference(lowbit::quantize_hqq(view, 4, hqq), 2, 55);
  // The reference against the plain float product of the dequantized weights.
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

namespace {

/// |kernel - reference| bound for the int8 modes: the integer sums are exact, so only float
/// arithmetic counts: (2 cols + 8) * 2^-24 times sum_k |s| (|u| + |z|) (|x_k| + x_scale), which
/// covers the int8 part (|xq| x_scale <= |x| + x_scale / 2) and LLM.int8()'s float part alike.
void check_int8_mode(const QuantizedMatrix& q, std::size_t batch,
                     const kernels::PrepareOptions& options, std::uint32_t seed,
                     float outlier_scale = 1.0f) {
  std::vector<float> xv = activations(batch, q.cols(), seed);
  for (std::size_t c = 3; c < q.cols(); c += 17)  // a few outlier columns for LLM.int8()
    xv[(c % batch) * q.cols() + c] *= outlier_scale;
  const MatrixView<const float> x(xv.data(), batch, q.cols());
  std::vector<float> expected(batch * q.rows());
  kernels::reference_gemm(q, x, MatrixView<float>(expected.data(), batch, q.rows()), options);
  const Scheme& scheme = q.scheme();
  const int offset =
      scheme.element == lowbit::ElementFormat::int_signed ? 1 << (scheme.bits - 1) : 0;
  const std::vector<float> values = lowbit::element_values(scheme);
  const double gamma = (2.0 * static_cast<double>(q.cols()) + 8.0) * std::ldexp(1.0, -24);
  std::vector<double> bounds(batch * q.rows());
  for (std::size_t b = 0; b < batch; ++b) {
    float absmax = 0.0f;
    for (std::size_t k = 0; k < q.cols(); ++k)
      absmax = std::max(absmax, std::abs(xv[b * q.cols() + k]));
    const double x_scale = absmax / 127.0;
    for (std::size_t o = 0; o < q.rows(); ++o) {
      double magnitude = 0.0;
      for (std::size_t k = 0; k < q.cols(); ++k) {
        const std::size_t index = q.scale_index(o, k);
        const double s = std::abs(static_cast<double>(q.scale(index)));
        const double u = std::abs(static_cast<double>(values[q.code(o, k)])) + offset;
        const double z = std::abs(static_cast<double>(q.zero(index))) + offset;
        // Every |x| counts whole: it is either quantized (|xq| x_scale <= |x| + x_scale / 2) or,
        // for LLM.int8(), multiplied in float.
        magnitude += s * (u + z) * (std::abs(xv[b * q.cols() + k]) + x_scale);
      }
      bounds[b * q.rows() + o] = gamma * magnitude + 1e-30;
    }
  }
  for (const kernels::Backend* backend : backends()) {
    const auto prepared = kernels::prepare(q, options, *backend);
    CHECK(!prepared->fallback());
    std::vector<float> y(batch * q.rows());
    kernels::gemm(*prepared, x, MatrixView<float>(y.data(), batch, q.rows()));
    std::size_t bad = 0;
    for (std::size_t i = 0; i < y.size(); ++i)
      bad += !(std::abs(static_cast<double>(y[i]) - expected[i]) <= bounds[i]);
    INFO(backend->name() << " " << scheme.to_string() << " "
                         << kernels::to_string(options.activations) << " [" << q.rows() << ", "
                         << q.cols() << "] batch " << batch);
    CHECK(bad == 0);
  }
}

}  // namespace

TEST_CASE("every backend runs W8A8, W4A8 and LLM.int8() like the reference", "[kernels]") {
  kernels::PrepareOptions int8;
  int8.activations = kernels::ActivationQuantization::int8_per_token;
  kernels::PrepareOptions llm_int8;
  llm_int8.activations = kernels::ActivationQuantization::llm_int8;
  llm_int8.outlier_threshold = 3.0f;
  std::uint32_t seed = 300;
  for (const std::size_t cols : {32u, 33u, 100u, 256u})
    for (const std::size_t rows : {1u, 9u}) {
      const auto w = lowbit::test::weights_with_outliers(rows, cols, seed++);
      const MatrixView<const float> view(w.data(), rows, cols);
      const QuantizedMatrix q8 = lowbit::quantize_w8a8_weights(view);
      for (std::size_t batch : {1u, 3u, 4u, 9u}) {
        check_int8_mode(q8, batch, int8, seed++);
        check_int8_mode(q8, batch, llm_int8, seed++, 10.0f);
        for (const Scheme& scheme : {Scheme::asymmetric_int(4, Granularity::per_group(32)),
                                     Scheme::symmetric_int(4, Granularity::per_group(64)),
                                     Scheme::asymmetric_int(8, Granularity::per_channel()),
                                     Scheme::asymmetric_int(3, Granularity::per_group(32))})
          check_int8_mode(lowbit::quantize_linear(view, scheme), batch, int8, seed++);
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

TEST_CASE("llama.cpp's Q4_0, Q8_0, Q4_K, F16 and BF16 run on every backend like the reference",
          "[kernels]") {
  // Each weight is s u + b (format/ggml_blocks.hpp; F16 and BF16: b = 0); the kernels sum s u x
  // and b x apart, so the bound counts |s u| <= |w| + |b| and |b|: (terms + 4) 2^-24 sum
  // (|w| + 2 |b|) |x|.
  for (const lowbit::GgmlType type :
       {lowbit::GgmlType::q4_0, lowbit::GgmlType::q8_0, lowbit::GgmlType::q4_k,
        lowbit::GgmlType::f16, lowbit::GgmlType::bf16})
    for (const std::size_t cols : {100u, 256u, 512u}) {
      const bool float16 = type == lowbit::GgmlType::f16 || type == lowbit::GgmlType::bf16;
      if (cols % lowbit::ggml::block_weights(type) != 0) continue;  // ragged: 16-bit floats only
      const std::size_t rows = 5;
      const auto w = lowbit::test::weights_with_outliers(rows, cols, 400 + static_cast<int>(type));
      const QuantizedMatrix q =
          lowbit::quantize_ggml(MatrixView<const float>(w.data(), rows, cols), type);
      std::vector<double> bias(rows * cols);
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) {
          double b = 0;
          if (type == lowbit::GgmlType::q4_0)
            b = 8.0 *
                lowbit::ggml::fp16_to_float(q.row_blocks<lowbit::ggml::block_q4_0>(r)[c / 32].d);
          else if (type == lowbit::GgmlType::q8_0)
            b = 128.0 *
                lowbit::ggml::fp16_to_float(q.row_blocks<lowbit::ggml::block_q8_0>(r)[c / 32].d);
          else if (!float16) {
            const auto& block = q.row_blocks<lowbit::ggml::block_q4_k>(r)[c / 256];
            b = lowbit::ggml::fp16_to_float(block.dmin) *
                lowbit::ggml::scale_min_k4(static_cast<int>(c % 256 / 32), block.scales).min;
          }
          bias[r * cols + c] = std::abs(b);
        }
      const std::vector<float> back = q.dequantize();
      for (std::size_t batch : {1u, 3u, 8u, 13u}) {
        const std::vector<float> xv = activations(batch, cols, 410);
        const MatrixView<const float> x(xv.data(), batch, cols);
        std::vector<float> expected(batch * rows);
        kernels::reference_gemm(q, x, MatrixView<float>(expected.data(), batch, rows));
        for (const kernels::Backend* backend : backends()) {
          const auto prepared = kernels::prepare(q, {}, *backend);
          CHECK(!prepared->fallback());
          std::vector<float> y(batch * rows);
          kernels::gemm(*prepared, x, MatrixView<float>(y.data(), batch, rows));
          for (std::size_t b = 0; b < batch; ++b)
            for (std::size_t o = 0; o < rows; ++o) {
              double magnitude = 0;
              for (std::size_t k = 0; k < cols; ++k)
                magnitude += (std::abs(back[o * cols + k]) + 2.0 * bias[o * cols + k]) *
                             std::abs(xv[b * cols + k]);
              const double bound =
                  (static_cast<double>(cols) + 4.0) * std::ldexp(1.0, -24) * magnitude;
              INFO(backend->name() << " " << q.scheme().to_string() << " batch " << batch);
              CHECK(std::abs(static_cast<double>(y[b * rows + o]) - expected[b * rows + o]) <=
                    bound);
            }
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
  for (const kernels::Backend* backend : backends()) {
    if (backend == &kernels::reference_backend()) continue;
    INFO(backend->name());
    // 4-bit codes of the padded row, and an f32 scale and bias per group of 64 (5 groups).
    CHECK(kernels::prepare(int4, {}, *backend)->bytes() == rows * (320 / 2 + 5 * 2 * 4));
    const QuantizedMatrix bf16 = lowbit::quantize_ggml(view, lowbit::GgmlType::bf16);
    CHECK(kernels::prepare(bf16, {}, *backend)->bytes() == rows * (320 * 2 + 4));
  }
}
