// Finite weights near float's range: every quantizer either represents them or says why not, and
// never returns zeros, NaN or a clipped group silently.
#include <catch2/catch.hpp>

#include <cfloat>
#include <cmath>
#include <string>
#include <vector>

#include "lowbit/algo/calibration.hpp"
#include "lowbit/algo/gptq.hpp"
#include "lowbit/algo/higgs.hpp"
#include "lowbit/algo/hqq.hpp"
#include "lowbit/algo/incoherence.hpp"
#include "lowbit/algo/methods.hpp"
#include "lowbit/algo/rtn.hpp"
#include "lowbit/format/hadamard.hpp"
#include "lowbit/quant/fp8.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quant/nf4.hpp"

using lowbit::Granularity;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;
using lowbit::ScalarFormat;
using lowbit::Scheme;

namespace {

constexpr std::size_t kRows = 8, kCols = 64;

/// [8, 64] weights of magnitude up to `top`, of both signs.
std::vector<float> weights_up_to(float top) {
  std::vector<float> w(kRows * kCols);
  for (std::size_t i = 0; i < w.size(); ++i)
    w[i] = top * (static_cast<float>(static_cast<int>(i % 17) - 8) / 8.0f);
  return w;
}

MatrixView<const float> view(const std::vector<float>& w) { return {w.data(), kRows, kCols}; }

/// The largest |q - w| relative to `top`.
double relative_error(const std::vector<float>& w, const QuantizedMatrix& q, float top) {
  const std::vector<float> back = q.dequantize();
  double worst = 0.0;
  for (std::size_t i = 0; i < w.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(back[i]) - w[i]) / top);
  return worst;
}

lowbit::MethodOptions method(const std::string& name) {
  lowbit::MethodOptions options;
  options.method = name;
  return options;
}

}  // namespace

TEST_CASE("scales beyond their format are errors naming the tensor, not saturated",
          "[quant][huge]") {
  for (float top : {1e6f, 1e38f, FLT_MAX}) {
    INFO("weights up to " << top);
    const std::vector<float> w = weights_up_to(top);
    lowbit::LinearQuantizeOptions linear;
    linear.tensor_name = "layers.3.w2";
    for (const Scheme& scheme : {Scheme::asymmetric_int(4, Granularity::per_group(32)),
                                 Scheme::symmetric_int(4, Granularity::per_channel())}) {
      INFO(scheme.to_string());
      CHECK_THROWS_WITH(
          lowbit::quantize_linear(view(w), scheme, linear),
          Catch::Contains("layers.3.w2") && Catch::Contains("beyond the largest f16"));
      lowbit::RtnOptions rtn;
      rtn.tensor_name = "layers.3.w2";
      CHECK_THROWS_WITH(lowbit::quantize_rtn(view(w), scheme, rtn),
                        Catch::Contains("layers.3.w2") && Catch::Contains("f32 or bf16 scales"));
    }
    lowbit::Nf4Options nf4;
    nf4.scale_format = ScalarFormat::f16;
    CHECK_THROWS_AS(lowbit::quantize_nf4(view(w), nf4), lowbit::invalid_value);
    lowbit::Fp8Options fp8;
    fp8.scale_format = ScalarFormat::f16;
    fp8.tensor_name = "layers.3.w2";
    if (top > 65504.0f * 448.0f)
      CHECK_THROWS_WITH(lowbit::quantize_fp8(view(w), fp8), Catch::Contains("layers.3.w2"));
    for (const char* name : {"rtn", "hqq", "kmeans", "higgs", "hadamard-rtn"}) {
      INFO(name);
      CHECK_THROWS_WITH(lowbit::Quantizer(method(name)).quantize(view(w), "layers.3.w2"),
                        Catch::Contains("layers.3.w2"));
    }
  }
}

TEST_CASE("with f32 scales, weights near float's range quantize to within their step",
          "[quant][huge]") {
  for (float top : {1e38f, FLT_MAX}) {
    INFO("weights up to " << top);
    const std::vector<float> w = weights_up_to(top);
    // 4 bits over [-top, top]: a step of 2 top / 15, so at most a step / 2 (plus rounding).
    const Scheme symmetric =
        Scheme::symmetric_int(4, Granularity::per_group(32), ScalarFormat::f32);
    CHECK(relative_error(w, lowbit::quantize_linear(view(w), symmetric), top) < 0.08);
    CHECK(relative_error(w, lowbit::quantize_rtn(view(w), symmetric), top) < 0.08);
    // Asymmetric: the zero point's rounding moves an end level by up to half a step, beyond
    // float's range for weights at its very top.
    const Scheme asymmetric =
        Scheme::asymmetric_int(4, Granularity::per_group(32), ScalarFormat::f32);
    if (top < 3e38f) {
      CHECK(relative_error(w, lowbit::quantize_linear(view(w), asymmetric), top) < 0.07);
      CHECK(relative_error(w, lowbit::quantize_rtn(view(w), asymmetric), top) < 0.07);
    } else {
      CHECK_THROWS_WITH(lowbit::quantize_linear(view(w), asymmetric),
                        Catch::Contains("beyond float's range"));
    }
    lowbit::HqqOptions hqq;
    hqq.scale_format = ScalarFormat::f32;
    hqq.zero_format = lowbit::ZeroFormat::f32;
    CHECK(relative_error(w, lowbit::quantize_hqq(view(w), 4, hqq), top) < 0.07);
    lowbit::Nf4Options nf4;  // f32 scales: the absmax itself; NF4's widest gap is 1 - 0.7230
    CHECK(relative_error(w, lowbit::quantize_nf4(view(w), nf4), top) < 0.139);
    CHECK(relative_error(w, lowbit::quantize_fp8(view(w)), top) < 0.07);
  }
}

TEST_CASE("the Hadamard rotation of large weights is exact up to rounding, or an error",
          "[quant][huge][hadamard]") {
  // 1e37 * 64 overflows float inside the unnormalized butterflies, but the normalized result
  // (at most sqrt(64) * 1e37) fits.
  std::vector<float> x(64), expected(64);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = (i % 3 == 0 ? 1e37f : -0.5e37f);
  std::vector<float> small(x);
  for (float& v : small) v /= 1e30f;
  lowbit::hadamard_transform(small);
  lowbit::hadamard_transform(x);
  for (std::size_t i = 0; i < x.size(); ++i) {
    INFO(i);
    REQUIRE(std::isfinite(x[i]));
    CHECK(x[i] == Approx(small[i] * 1e30f).epsilon(1e-5).margin(1e31));
  }

  // Rotated weights beyond float's range: an error that says so, never "NaN" for finite input.
  const std::vector<float> w = weights_up_to(FLT_MAX);
  lowbit::MethodOptions options = method("hadamard-rtn");
  options.scale_format = ScalarFormat::f32;
  CHECK_THROWS_WITH(lowbit::Quantizer(options).quantize(view(w), "wq"),
                    Catch::Contains("overflows float") && !Catch::Contains("NaN"));
  // Large but representable after the rotation: quantized, with f32 scales.
  const std::vector<float> large = weights_up_to(1e36f);
  const QuantizedMatrix q = lowbit::Quantizer(options).quantize(view(large), "wq");
  const std::vector<float> rotated =
      lowbit::rotated_copy(view(large), *q.input_rotation());  // q is in the rotated basis
  const std::vector<float> back = q.dequantize();
  double worst = 0.0;
  for (std::size_t i = 0; i < back.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(back[i]) - rotated[i]) / 8e36);
  CHECK(worst < 0.07);

  lowbit::HiggsOptions higgs;
  higgs.tensor_name = "wq";
  CHECK_THROWS_WITH(lowbit::quantize_higgs(view(weights_up_to(1e38f)), higgs),
                    Catch::Contains("wq") && !Catch::Contains("NaN"));
}

TEST_CASE("GPTQ refuses a negative damping and an all-zero Hessian", "[algo][gptq][huge]") {
  const std::vector<float> w = weights_up_to(1.0f);
  const Scheme scheme = Scheme::asymmetric_int(4, Granularity::per_group(32));
  lowbit::SymmetricMatrix identity(kCols);
  for (std::size_t j = 0; j < kCols; ++j) identity.set(j, j, 1.0);
  lowbit::GptqOptions options;
  options.percdamp = -0.01;
  CHECK_THROWS_AS(lowbit::quantize_gptq(view(w), identity, scheme, options),
                  lowbit::invalid_argument);
  options.percdamp = std::nan("");
  CHECK_THROWS_AS(lowbit::quantize_gptq(view(w), identity, scheme, options),
                  lowbit::invalid_argument);
  options.percdamp = 0.01;
  options.tensor_name = "layers.0.wk";
  CHECK_THROWS_WITH(lowbit::quantize_gptq(view(w), lowbit::SymmetricMatrix(kCols), scheme, options),
                    Catch::Contains("layers.0.wk") && Catch::Contains("Hessian is zero"));
  // One live input is enough: the dead columns are zeroed, as the references do.
  lowbit::SymmetricMatrix one(kCols);
  one.set(5, 5, 2.0);
  CHECK_NOTHROW(lowbit::quantize_gptq(view(w), one, scheme, options));
}
