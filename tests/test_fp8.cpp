#include <catch2/catch.hpp>

#include "support/random_data.hpp"
#include "support/temp_dir.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/format/minifloat.hpp"
#include "lowbit/io/quantized_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/quant/fp8.hpp"

using lowbit::ElementFormat;
using lowbit::Fp8Options;
using lowbit::Granularity;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;
using lowbit::ScalarFormat;

namespace {

/// Checks every scale and code of q against the definition in quant/fp8.hpp, computed here
/// element by element from the weights (amax over the weights each scale serves).
void check_definition(const QuantizedMatrix& q, const std::vector<float>& w) {
  const float element_max = q.scheme().element == ElementFormat::fp8_e4m3
                                ? lowbit::float8_e4m3::max_finite()
                                : lowbit::float8_e5m2::max_finite();
  std::vector<float> amax(q.scale_grid().size(), 0.0f);
  for (std::size_t r = 0; r < q.rows(); ++r)
    for (std::size_t c = 0; c < q.cols(); ++c) {
      float& m = amax[q.scale_index(r, c)];
      m = std::max(m, std::abs(w[r * q.cols() + c]));
    }
  std::size_t wrong_scales = 0, wrong_codes = 0;
  for (std::size_t i = 0; i < amax.size(); ++i) {
    const float expected =
        amax[i] > 0.0f ? lowbit::round_scalar_up(q.scheme().scale_format,
                                                 std::max(amax[i] / element_max,
                                                          std::numeric_limits<float>::denorm_min()))
                       : 1.0f;
    wrong_scales += q.scale(i) != expected;
    // The scale covers its weights, but for the rounding of amax / max (the codes saturate).
    CHECK(static_cast<double>(q.scale(i)) * element_max >= amax[i] * (1.0 - 0x1p-23));
  }
  for (std::size_t r = 0; r < q.rows(); ++r)
    for (std::size_t c = 0; c < q.cols(); ++c) {
      const float x = w[r * q.cols() + c] / q.scale(q.scale_index(r, c));
      const std::uint8_t expected = q.scheme().element == ElementFormat::fp8_e4m3
                                        ? lowbit::float8_e4m3::encode(x).code
                                        : lowbit::float8_e5m2::encode(x).code;
      wrong_codes += q.code(r, c) != expected;
    }
  CHECK(wrong_scales == 0);
  CHECK(wrong_codes == 0);
}

}  // namespace

TEST_CASE("FP8 2-D block scales: one scale per block_rows x block_cols tile", "[fp8]") {
  const Granularity blocks = Granularity::per_block(128, 128);
  CHECK(blocks.row_span(1000) == 128);
  const lowbit::Scheme scheme = lowbit::fp8_scheme({.granularity = blocks});
  CHECK(scheme.to_string() == "e4m3 b128x128 scale=f32");
  // 300 x 200: 3 block rows (the last of 44 rows) and 2 block columns (the last of 72).
  const lowbit::ScaleGrid grid = scheme.scale_grid(300, 200);
  CHECK(grid.rows == 3);
  CHECK(grid.cols == 2);
  CHECK(lowbit::grid_index(blocks, grid, 0, 0) == 0);
  CHECK(lowbit::grid_index(blocks, grid, 127, 127) == 0);
  CHECK(lowbit::grid_index(blocks, grid, 127, 128) == 1);
  CHECK(lowbit::grid_index(blocks, grid, 128, 0) == 2);
  CHECK(lowbit::grid_index(blocks, grid, 299, 199) == 5);
  // A single block row serves every row, however few.
  CHECK(lowbit::grid_index(blocks, scheme.scale_grid(5, 200), 4, 130) == 1);
  // Storage: 8 bits a weight plus 6 f32 scales.
  CHECK(scheme.bits_per_weight(300, 200) == Approx(8.0 + 6.0 * 32 / 60000.0));
}

TEST_CASE("Scheme refuses 2-D blocks where no quantizer makes them", "[fp8][scheme]") {
  lowbit::Scheme scheme = lowbit::Scheme::symmetric_int(8, Granularity::per_channel());
  scheme.granularity = Granularity::per_block(128, 128);
  CHECK_THROWS_AS(scheme.validate(), lowbit::invalid_argument);  // integers: one row at a time
  scheme = lowbit::fp8_scheme();
  scheme.granularity = Granularity::per_block(0, 128);
  CHECK_THROWS_AS(scheme.validate(), lowbit::invalid_argument);
  scheme.granularity = Granularity::per_block(128, 128);
  scheme.scale_format = ScalarFormat::e8m0;
  CHECK_THROWS_AS(scheme.validate(), lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::fp8_scheme({.element = ElementFormat::fp4_e2m1}),
                  lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::fp8_scheme({.granularity = Granularity::none()}),
                  lowbit::invalid_argument);
}

TEST_CASE("quantize_fp8 follows its definition for every granularity and scale format", "[fp8]") {
  std::uint32_t seed = 71;
  // Ragged: 130 rows cross a 128-row block boundary, 300 columns are not whole blocks or groups.
  const std::size_t rows = 130, cols = 300;
  const auto w = lowbit::test::weights_with_outliers(rows, cols, seed++);
  const MatrixView<const float> view(w.data(), rows, cols);
  for (const ElementFormat element : {ElementFormat::fp8_e4m3, ElementFormat::fp8_e5m2})
    for (const Granularity g :
         {Granularity::per_tensor(), Granularity::per_channel(), Granularity::per_group(64),
          Granularity::per_block(128, 128), Granularity::per_block(3, 32)})
      for (const ScalarFormat s : {ScalarFormat::f32, ScalarFormat::f16, ScalarFormat::bf16}) {
        const QuantizedMatrix q =
            lowbit::quantize_fp8(view, {.element = element, .granularity = g, .scale_format = s});
        INFO(q.scheme().to_string());
        check_definition(q, w);
        // Relative error of a round to nearest in E4M3 (3 mantissa bits) or E5M2 (2 bits), for
        // normal values; subnormal ones are within half the smallest step.
        const std::vector<float> back = q.dequantize();
        const double relative = element == ElementFormat::fp8_e4m3 ? 1.0 / 16 : 1.0 / 8;
        std::size_t bad = 0;
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t c = 0; c < cols; ++c) {
            const double x = w[r * cols + c], y = back[r * cols + c];
            const double scale = q.scale(q.scale_index(r, c));
            const double smallest_step =
                element == ElementFormat::fp8_e4m3 ? std::ldexp(1.0, -9) : std::ldexp(1.0, -16);
            bad += !(std::abs(x - y) <= relative * std::abs(x) + 0.5 * smallest_step * scale);
          }
        CHECK(bad == 0);
      }
}

TEST_CASE("quantize_fp8 edge cases: zero blocks, tiny and huge values, NaN", "[fp8]") {
  SECTION("an all-zero block stores scale 1 and zero codes beside a nonzero one") {
    std::vector<float> w(4 * 64, 0.0f);
    for (std::size_t r = 0; r < 4; ++r) w[r * 64 + 40] = 0.5f;  // only in the second block
    const QuantizedMatrix q = lowbit::quantize_fp8(MatrixView<const float>(w.data(), 4, 64),
                                                   {.granularity = Granularity::per_block(4, 32)});
    CHECK(q.scale(0) == 1.0f);
    CHECK(q.scale(1) == 0.5f / 448.0f);
    CHECK(q.dequantize() == w);
  }
  SECTION("values below f16's range still get a positive scale") {
    std::vector<float> w(32, 1e-9f);
    w[3] = -3e-9f;
    const QuantizedMatrix q = lowbit::quantize_fp8(MatrixView<const float>(w.data(), 1, 32),
                                                   {.scale_format = ScalarFormat::f16});
    CHECK(q.scale(0) > 0.0f);
    check_definition(q, w);
  }
  SECTION("float32's largest values and subnormals") {
    std::vector<float> w = {std::numeric_limits<float>::max(), -1.0f,
                            std::numeric_limits<float>::denorm_min(), 0.0f};
    const QuantizedMatrix q = lowbit::quantize_fp8(MatrixView<const float>(w.data(), 1, 4));
    check_definition(q, w);
    CHECK(q.dequantize()[0] == Approx(std::numeric_limits<float>::max()).epsilon(1e-6));
    std::vector<float> tiny(8, std::numeric_limits<float>::denorm_min());
    const QuantizedMatrix t = lowbit::quantize_fp8(MatrixView<const float>(tiny.data(), 1, 8));
    check_definition(t, tiny);
    CHECK(t.dequantize() == tiny);
  }
  SECTION("NaN and Inf are refused with their position and the tensor's name") {
    std::vector<float> w(2 * 16, 0.25f);
    w[16 + 3] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(lowbit::quantize_fp8(MatrixView<const float>(w.data(), 2, 16),
                                           {.tensor_name = "layers.0.w1"}),
                      Catch::Contains("row 1, column 3") && Catch::Contains("layers.0.w1"));
  }
}

TEST_CASE("FP8 block-scaled matrices round-trip through safetensors", "[fp8][safetensors]") {
  const auto w = lowbit::test::gaussian(130 * 200, 5);
  const QuantizedMatrix q = lowbit::quantize_fp8(
      MatrixView<const float>(w.data(), 130, 200),
      {.granularity = Granularity::per_block(128, 128), .scale_format = ScalarFormat::bf16});
  CHECK(lowbit::io::scheme_from_json(lowbit::io::scheme_to_json(q.scheme())) == q.scheme());
  const lowbit::test::TempDir dir;
  const auto path = dir.path / "fp8.safetensors";
  {
    std::map<std::string, std::string> metadata;
    lowbit::io::add_quantization_metadata(metadata, "w", q.scheme(), q.rows(), q.cols(),
                                          q.input_rotation());
    lowbit::io::SafetensorsWriter writer(
        path, lowbit::io::quantized_layout("w", q.scheme(), q.rows(), q.cols()), metadata);
    lowbit::io::write_quantized(writer, "w", q);
    writer.finish();
  }
  const lowbit::io::SafetensorsFile file(path);
  const QuantizedMatrix back = lowbit::io::read_quantized(file, "w");
  CHECK(back.scheme() == q.scheme());
  CHECK(back.dequantize() == q.dequantize());
}
