#include <catch2/catch.hpp>

#include "support/random_data.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lowbit/algo/awq.hpp"
#include "lowbit/algo/calibration.hpp"
#include "lowbit/algo/gptq.hpp"
#include "lowbit/algo/hqq.hpp"
#include "lowbit/algo/rtn.hpp"
#include "lowbit/quant/codebook.hpp"
#include "lowbit/quant/fp8.hpp"
#include "lowbit/quant/grid.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quant/microscaling.hpp"
#include "lowbit/quant/nf4.hpp"

using lowbit::ElementFormat;
using lowbit::Granularity;
using lowbit::GroupParams;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;
using lowbit::ScalarFormat;
using lowbit::Scheme;

namespace {

struct Mat {
  std::size_t rows, cols;
  std::vector<float> v;
  MatrixView<const float> view() const { return {v.data(), rows, cols}; }
  float& operator()(std::size_t r, std::size_t c) { return v[r * cols + c]; }
};

/// 11 x 70 weights with outliers (a ragged last group for every group size used), an all-zero
/// group, a constant group, a negative constant group and a row of subnormals.
Mat awkward_weights() {
  Mat w{11, 70, lowbit::test::weights_with_outliers(11, 70, 5)};
  for (std::size_t c = 32; c < 64; ++c) w(3, c) = 0.0f;
  for (std::size_t c = 0; c < 32; ++c) w(5, c) = 0.03f;
  for (std::size_t c = 0; c < 16; ++c) w(6, c) = -0.5f;
  for (std::size_t c = 0; c < 70; ++c)
    w(8, c) =
        static_cast<float>(static_cast<int>(c) - 35) * std::numeric_limits<float>::denorm_min();
  return w;
}

/// Everything a QuantizedMatrix stores, compared field by field.
void check_identical(const QuantizedMatrix& a, const QuantizedMatrix& b) {
  REQUIRE(a.scheme() == b.scheme());
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  for (std::size_t r = 0; r < a.rows(); ++r) {
    INFO("row " << r);
    const auto wa = a.row_words(r), wb = b.row_words(r);
    CHECK(std::equal(wa.begin(), wa.end(), wb.begin(), wb.end()));
  }
  CHECK(std::ranges::equal(a.scale_bytes(), b.scale_bytes()));
  CHECK(std::ranges::equal(a.zero_bytes(), b.zero_bytes()));
  for (std::size_t k = 0; k < a.scale_grid().size(); ++k) CHECK(a.zero(k) == b.zero(k));
  CHECK(std::ranges::equal(a.codebook_bytes(), b.codebook_bytes()));
  CHECK(a.tensor_scale() == b.tensor_scale());
}

}  // namespace

TEST_CASE("RTN over make_grid is quantize_linear, with and without the clip search",
          "[quant][grid]") {
  const Mat w = awkward_weights();
  const std::vector<Scheme> schemes = {
      Scheme::asymmetric_int(4, Granularity::per_group(32)),
      Scheme::symmetric_int(4, Granularity::per_group(32)),
      Scheme::asymmetric_int(3, Granularity::per_group(16), ScalarFormat::bf16),
      Scheme::symmetric_int(4, Granularity::per_group(32), ScalarFormat::e8m0),
      Scheme::asymmetric_int(2, Granularity::per_group(64), ScalarFormat::f32),
      Scheme::asymmetric_int(8, Granularity::per_channel()),
      Scheme::symmetric_int(8, Granularity::per_tensor(), ScalarFormat::f32),
      Scheme::asymmetric_int(4, Granularity::per_tensor()),
  };
  for (const Scheme& scheme : schemes)
    for (bool clip : {false, true}) {
      INFO(scheme.to_string() << (clip ? " +clip" : ""));
      lowbit::LinearQuantizeOptions linear;
      lowbit::RtnOptions rtn;
      if (clip) linear.clip = rtn.clip = lowbit::ClipSearch::mse();
      check_identical(lowbit::quantize_rtn(w.view(), scheme, rtn),
                      lowbit::quantize_linear(w.view(), scheme, linear));
    }
}

TEST_CASE("RTN over make_grid is each format's own quantizer", "[quant][grid]") {
  const Mat w = awkward_weights();
  SECTION("NF4 without double quantization") {
    for (ScalarFormat format : {ScalarFormat::f32, ScalarFormat::f16, ScalarFormat::bf16})
      for (std::size_t block : {16, 64}) {
        lowbit::Nf4Options options;
        options.block = block;
        options.scale_format = format;
        INFO(lowbit::nf4_scheme(options).to_string());
        check_identical(lowbit::quantize_rtn(w.view(), lowbit::nf4_scheme(options)),
                        lowbit::quantize_nf4(w.view(), options));
      }
  }
  SECTION("MXFP4, MXFP8 (E4M3 and E5M2)") {
    for (ElementFormat e :
         {ElementFormat::fp4_e2m1, ElementFormat::fp8_e4m3, ElementFormat::fp8_e5m2}) {
      INFO(lowbit::mx_scheme(e).to_string());
      check_identical(lowbit::quantize_rtn(w.view(), lowbit::mx_scheme(e)),
                      lowbit::quantize_mx(w.view(), e));
    }
  }
  SECTION("NVFP4, whose tensor scale the grid prepares") {
    check_identical(lowbit::quantize_rtn(w.view(), lowbit::nvfp4_scheme()),
                    lowbit::quantize_nvfp4(w.view()));
    const Mat zeros{4, 48, std::vector<float>(4 * 48, 0.0f)};
    check_identical(lowbit::quantize_rtn(zeros.view(), lowbit::nvfp4_scheme()),
                    lowbit::quantize_nvfp4(zeros.view()));
  }
  SECTION("FP8 with float scales per tensor, channel, group and 2-D block") {
    for (ElementFormat e : {ElementFormat::fp8_e4m3, ElementFormat::fp8_e5m2})
      for (Granularity g : {Granularity::per_tensor(), Granularity::per_channel(),
                            Granularity::per_group(32), Granularity::per_block(4, 32)})
        for (ScalarFormat format : {ScalarFormat::f32, ScalarFormat::bf16}) {
          lowbit::Fp8Options options;
          options.element = e;
          options.granularity = g;
          options.scale_format = format;
          INFO(lowbit::fp8_scheme(options).to_string());
          check_identical(lowbit::quantize_rtn(w.view(), lowbit::fp8_scheme(options)),
                          lowbit::quantize_fp8(w.view(), options));
        }
  }
  SECTION("scalar k-means codebooks: the same codebooks, and every weight at its nearest entry") {
    const Scheme scheme{.element = ElementFormat::codebook,
                        .bits = 3,
                        .granularity = Granularity::none(),
                        .codebook_granularity = Granularity::per_channel(),
                        .codebook_format = ScalarFormat::f16};
    const QuantizedMatrix rtn = lowbit::quantize_rtn(w.view(), scheme);
    const QuantizedMatrix learned = lowbit::quantize_codebook(w.view(), scheme);
    CHECK(std::ranges::equal(rtn.codebook_bytes(), learned.codebook_bytes()));
    const std::vector<float> back = rtn.dequantize();
    for (std::size_t r = 0; r < w.rows; ++r)
      for (std::size_t c = 0; c < w.cols; ++c) {
        const float x = w.v[r * w.cols + c];
        float nearest = std::numeric_limits<float>::infinity();
        for (std::size_t e = 0; e < scheme.codebook_entries(); ++e)
          nearest =
              std::min(nearest, std::abs(x - rtn.codebook_value(rtn.codebook_index(r, c), e, 0)));
        CHECK(std::abs(x - back[r * w.cols + c]) == nearest);
      }
  }
}

TEST_CASE("every grid: fake-quantize, quantize_group and quantize_column agree with dequantize",
          "[quant][grid]") {
  const Mat w = awkward_weights();
  lowbit::Nf4Options nf4;
  nf4.block = 32;
  const std::vector<Scheme> schemes = {
      Scheme::asymmetric_int(4, Granularity::per_group(32)),
      Scheme::symmetric_int(3, Granularity::per_channel()),
      lowbit::nf4_scheme(nf4),
      lowbit::mx_scheme(ElementFormat::fp4_e2m1),
      lowbit::nvfp4_scheme(),
      lowbit::fp8_scheme({}),
      Scheme{.element = ElementFormat::codebook,
             .bits = 2,
             .granularity = Granularity::per_group(32),
             .codebook_granularity = Granularity::per_tensor(),
             .codebook_format = ScalarFormat::f32},
  };
  for (const Scheme& scheme : schemes) {
    INFO(scheme.to_string());
    const std::unique_ptr<lowbit::Grid> grid = lowbit::make_grid(scheme);
    const QuantizedMatrix q = lowbit::quantize_rtn(w.view(), *grid);  // leaves grid prepared on w
    const std::vector<float> back = q.dequantize();
    const std::size_t span = scheme.granularity.row_span(w.cols);
    for (std::size_t r = 0; r < w.rows; ++r)
      for (std::size_t start = 0; start < w.cols; start += span) {
        const std::size_t length = std::min(span, w.cols - start);
        const std::span<const float> part = w.view().row(r).subspan(start, length);
        const GroupParams p = {q.scale(q.scale_index(r, start)), q.zero(q.scale_index(r, start))};
        std::vector<float> fake(length), dequantized(length);
        std::vector<std::uint8_t> codes(length);
        grid->fake_quantize(q, r, start, part, p, fake);
        grid->quantize_group(q, r, start, part, p, codes, dequantized);
        CHECK(fake == dequantized);
        for (std::size_t i = 0; i < length; ++i) {
          CHECK(codes[i] == q.code(r, start + i));
          CHECK(fake[i] == back[r * w.cols + start + i]);
        }
      }
    // A column, each row with its own group's parameters.
    const std::size_t column = 37;
    std::vector<float> column_values(w.rows), dequantized(w.rows);
    std::vector<GroupParams> params(w.rows);
    std::vector<std::uint8_t> codes(w.rows);
    for (std::size_t r = 0; r < w.rows; ++r) {
      column_values[r] = w.v[r * w.cols + column];
      params[r] = {q.scale(q.scale_index(r, column)), q.zero(q.scale_index(r, column))};
    }
    grid->quantize_column(q, column, column_values.data(), params.data(), w.rows, codes.data(),
                          dequantized.data());
    for (std::size_t r = 0; r < w.rows; ++r) {
      CHECK(codes[r] == q.code(r, column));
      CHECK(dequantized[r] == back[r * w.cols + column]);
    }
  }
}

TEST_CASE("RTN: NaN/Inf, empty matrices and grids that do not exist", "[quant][grid]") {
  const Scheme int4 = Scheme::asymmetric_int(4, Granularity::per_group(32));
  Mat w{2, 40, std::vector<float>(80, 0.5f)};
  w(1, 7) = std::numeric_limits<float>::quiet_NaN();
  try {
    lowbit::RtnOptions options;
    options.tensor_name = "layers.0.wq";
    lowbit::quantize_rtn(w.view(), int4, options);
    FAIL("NaN accepted");
  } catch (const lowbit::invalid_value& e) {
    CHECK_THAT(e.what(), Catch::Contains("NaN") && Catch::Contains("row 1, column 7") &&
                             Catch::Contains("layers.0.wq"));
  }
  w(1, 7) = -std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(lowbit::quantize_rtn(w.view(), lowbit::mx_scheme(ElementFormat::fp4_e2m1)),
                  lowbit::invalid_value);

  for (const Scheme& scheme :
       {int4, Scheme::symmetric_int(8, Granularity::per_tensor()), lowbit::nvfp4_scheme()}) {
    const Mat empty{0, 32, {}};
    INFO(scheme.to_string());
    const QuantizedMatrix q = lowbit::quantize_rtn(empty.view(), scheme);
    CHECK(q.rows() == 0);
    CHECK(q.dequantize().empty());
  }

  Scheme double_quant = Scheme::symmetric_int(4, Granularity::per_group(32), ScalarFormat::f32);
  double_quant.double_quant_block = 64;
  lowbit::Nf4Options nf4_dq;
  nf4_dq.double_quant = true;
  const Scheme vector_codebook{.element = ElementFormat::codebook,
                               .bits = 4,
                               .granularity = Granularity::none(),
                               .vector_dim = 2,
                               .codebook_granularity = Granularity::per_tensor(),
                               .codebook_format = ScalarFormat::f16};
  for (const Scheme& scheme : {double_quant, lowbit::nf4_scheme(nf4_dq), vector_codebook,
                               Scheme::ggml_blocks(lowbit::GgmlType::q4_0)}) {
    INFO(scheme.to_string());
    CHECK_THROWS_AS(lowbit::make_grid(scheme), lowbit::unsupported);
  }
  lowbit::GridOptions clip;
  clip.clip = lowbit::ClipSearch::mse();
  CHECK_THROWS_AS(lowbit::make_grid(lowbit::mx_scheme(ElementFormat::fp4_e2m1), clip),
                  lowbit::unsupported);
  Scheme invalid = int4;
  invalid.bits = 9;
  CHECK_THROWS_AS(lowbit::make_grid(invalid), lowbit::invalid_argument);
}

namespace {

/// A grid lowbit does not ship: ternary weights {-1, 0, +1} times an absmax scale per group, in a
/// 2-bit signed Scheme (whose -2 it never uses). Written against the interface alone.
class TernaryGrid final : public lowbit::Grid {
 public:
  explicit TernaryGrid(std::size_t group)
      : scheme_(Scheme::symmetric_int(2, Granularity::per_group(group), ScalarFormat::f32)) {}
  const Scheme& scheme() const noexcept override { return scheme_; }
  GroupParams fit(std::span<const float> values, const QuantizedMatrix&) const override {
    float absmax = 0.0f;
    for (float x : values) absmax = std::max(absmax, std::abs(x));
    return {absmax, 0.0f};
  }
  GroupParams store(QuantizedMatrix& q, std::size_t index, const GroupParams& p) const override {
    return {q.set_scale(index, p.scale), 0.0f};
  }
  void quantize_group(const QuantizedMatrix&, std::size_t, std::size_t,
                      std::span<const float> values, const GroupParams& p,
                      std::span<std::uint8_t> codes, std::span<float> dequantized) const override {
    for (std::size_t i = 0; i < values.size(); ++i) {
      const int level = p.scale > 0.0f
                            ? std::clamp(static_cast<int>(std::lround(values[i] / p.scale)), -1, 1)
                            : 0;
      if (!codes.empty()) codes[i] = lowbit::to_code(level, 2);
      if (!dequantized.empty()) dequantized[i] = static_cast<float>(level) * p.scale;
    }
  }

 private:
  Scheme scheme_;
};

}  // namespace

TEST_CASE("a user's own grid runs through RTN, GPTQ, AWQ", "[quant][grid]") {
  const std::size_t rows = 16, cols = 64;
  const Mat w{rows, cols, lowbit::test::weights_with_outliers(rows, cols, 3)};
  const TernaryGrid grid(32);

  const QuantizedMatrix rtn = lowbit::quantize_rtn(w.view(), grid);
  const std::vector<float> back = rtn.dequantize();
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      const float s = rtn.scale(rtn.scale_index(r, c));
      const float level = back[r * cols + c] / s;
      CHECK((level == -1.0f || level == 0.0f || level == 1.0f));
    }

  // GPTQ with a diagonal Hessian has no error to feed back: RTN's codes.
  const Mat x{256, cols, lowbit::test::gaussian(256 * cols, 9, 1.0f)};
  lowbit::SymmetricMatrix diagonal(cols);
  for (std::size_t j = 0; j < cols; ++j) diagonal.set(j, j, 1.0 + static_cast<double>(j));
  check_identical(lowbit::quantize_gptq(w.view(), diagonal, grid).weights, rtn);

  // With the inputs' Hessian GPTQ lowers the proxy loss below RTN's, and AWQ's s = 1 candidate is
  // RTN on this grid.
  lowbit::InputStatistics stats(cols);
  stats.add(x.view());
  const lowbit::GptqResult gptq = lowbit::quantize_gptq(w.view(), stats.hessian(), grid);
  const lowbit::AwqScaleResult awq = lowbit::awq_search_scales(
      std::span<const MatrixView<const float>>(std::vector{w.view()}), x.view(), grid);
  CHECK(awq.error <= awq.rtn_error);
  const std::vector<float> gptq_back = gptq.weights.dequantize();
  double rtn_loss = 0.0, gptq_loss = 0.0;  // ||X (W - Q)^T||^2
  for (std::size_t t = 0; t < x.rows; ++t)
    for (std::size_t r = 0; r < rows; ++r) {
      double e_rtn = 0.0, e_gptq = 0.0;
      for (std::size_t c = 0; c < cols; ++c) {
        const double xv = x.v[t * cols + c], wv = w.v[r * cols + c];
        e_rtn += xv * (wv - back[r * cols + c]);
        e_gptq += xv * (wv - gptq_back[r * cols + c]);
      }
      rtn_loss += e_rtn * e_rtn;
      gptq_loss += e_gptq * e_gptq;
    }
  CHECK(gptq_loss < rtn_loss);
  const QuantizedMatrix awq_q = lowbit::quantize_awq(w.view(), x.view(), grid);
  CHECK(awq_q.scheme() == grid.scheme());
}

TEST_CASE("AWQ runs over any grid fitted group by group, and refuses matrix-wide state",
          "[quant][grid][awq]") {
  const std::size_t rows = 12, cols = 64;
  const Mat w{rows, cols, lowbit::test::weights_with_outliers(rows, cols, 21)};
  const Mat x{128, cols, lowbit::test::gaussian(128 * cols, 4, 1.0f)};
  lowbit::Nf4Options nf4;
  nf4.block = 32;
  for (const Scheme& scheme : {lowbit::nf4_scheme(nf4), lowbit::mx_scheme(ElementFormat::fp4_e2m1),
                               lowbit::fp8_scheme({})}) {
    INFO(scheme.to_string());
    // The s = 1 candidate is RTN over the grid, measured on the inputs.
    const lowbit::AwqScaleResult found = lowbit::awq_search_scales(w.view(), x.view(), scheme);
    std::vector<float> fake(rows * cols);
    lowbit::detail::awq_fake_quantize(*lowbit::make_grid(scheme), w.view(), {}, fake.data());
    CHECK(fake == lowbit::quantize_rtn(w.view(), scheme).dequantize());
    CHECK(found.error <= found.rtn_error);
    lowbit::AwqOptions no_clip;
    no_clip.clip = false;
    check_identical(lowbit::quantize_awq(w.view(), x.view(), scheme, no_clip),
                    lowbit::quantize_rtn(w.view(), scheme));
  }
  const Scheme codebook{.element = ElementFormat::codebook,
                        .bits = 2,
                        .granularity = Granularity::none(),
                        .codebook_granularity = Granularity::per_tensor(),
                        .codebook_format = ScalarFormat::f16};
  lowbit::Fp8Options blocks;
  blocks.granularity = Granularity::per_block(4, 32);
  for (const Scheme& scheme : {lowbit::nvfp4_scheme(), codebook, lowbit::fp8_scheme(blocks)}) {
    INFO(scheme.to_string());
    CHECK_THROWS_AS(lowbit::awq_search_scales(w.view(), x.view(), scheme), lowbit::unsupported);
    CHECK_THROWS_AS(lowbit::quantize_awq(w.view(), x.view(), scheme), lowbit::unsupported);
  }
}
