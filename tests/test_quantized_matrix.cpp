#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include "lowbit/quantized_matrix.hpp"

using lowbit::ElementFormat;
using lowbit::Granularity;
using lowbit::QuantizedMatrix;
using lowbit::ScalarFormat;
using lowbit::Scheme;

TEST_CASE("a new QuantizedMatrix is zero-filled and sized by its scheme", "[quantized_matrix]") {
  const QuantizedMatrix q(Scheme::asymmetric_int(3, Granularity::per_group(32)), 5, 70);
  CHECK(q.rows() == 5);
  CHECK(q.cols() == 70);
  CHECK(q.words_per_row() == 7);  // 70 * 3 = 210 bits
  CHECK(q.packed_codes().size() == 35);
  CHECK(q.scale_grid().rows == 5);
  CHECK(q.scale_grid().cols == 3);
  CHECK(q.scale_bytes().size() == 5 * 3 * 2);
  CHECK(q.zero_bytes().empty());
  CHECK(q.zero_codes().size() == 5);  // three 3-bit zero codes fit one word per scale row
  CHECK(q.storage_bytes() == 35 * 4 + 5 * 4 + 30);
  for (float x : q.dequantize()) CHECK(x == 0.0f);
}

TEST_CASE("codes are set and read back through the packing", "[quantized_matrix]") {
  for (auto order : {lowbit::PackOrder::low_first, lowbit::PackOrder::awq_interleaved}) {
    Scheme scheme = Scheme::asymmetric_int(4, Granularity::per_channel());
    scheme.pack_order = order;
    QuantizedMatrix q(scheme, 3, 19);
    for (std::size_t r = 0; r < 3; ++r)
      for (std::size_t c = 0; c < 19; ++c)
        q.set_code(r, c, static_cast<std::uint8_t>((r * 7 + c) % 16));
    for (std::size_t r = 0; r < 3; ++r)
      for (std::size_t c = 0; c < 19; ++c) CHECK(q.code(r, c) == (r * 7 + c) % 16);
  }
}

TEST_CASE("scale_index maps elements to their group's scale", "[quantized_matrix]") {
  const QuantizedMatrix grouped(Scheme::symmetric_int(4, Granularity::per_group(32)), 4, 100);
  CHECK(grouped.scale_index(0, 0) == 0);
  CHECK(grouped.scale_index(0, 31) == 0);
  CHECK(grouped.scale_index(0, 32) == 1);
  CHECK(grouped.scale_index(0, 99) == 3);  // the ragged fourth group
  CHECK(grouped.scale_index(2, 40) == 2 * 4 + 1);
  const QuantizedMatrix channel(Scheme::symmetric_int(4, Granularity::per_channel()), 4, 100);
  CHECK(channel.scale_index(3, 99) == 3);
  const QuantizedMatrix tensor(Scheme::symmetric_int(4, Granularity::per_tensor()), 4, 100);
  CHECK(tensor.scale_index(3, 99) == 0);
}

TEST_CASE("dequantize applies (value - zero) * scale per group", "[quantized_matrix]") {
  QuantizedMatrix q(Scheme::asymmetric_int(4, Granularity::per_group(2), ScalarFormat::f32), 1, 3);
  q.set_code(0, 0, 3);
  q.set_code(0, 1, 0);
  q.set_code(0, 2, 15);
  CHECK(q.set_scale(0, 0.5f) == 0.5f);
  CHECK(q.set_zero(0, 1.0f) == 1.0f);
  q.set_scale(1, 2.0f);
  q.set_zero(1, 8.0f);
  CHECK(q.dequantize() == std::vector<float>{1.0f, -0.5f, 14.0f});
}

TEST_CASE("zero points are codes, or floats when the scheme says so", "[quantized_matrix]") {
  QuantizedMatrix coded(Scheme::asymmetric_int(3, Granularity::per_group(4)), 3, 40);
  for (std::size_t i = 0; i < coded.scale_grid().size(); ++i)
    CHECK(coded.set_zero(i, static_cast<float>(i % 8)) == static_cast<float>(i % 8));
  for (std::size_t i = 0; i < coded.scale_grid().size(); ++i)
    CHECK(coded.zero(i) == static_cast<float>(i % 8));
  CHECK_THROWS_AS(coded.set_zero(0, 8.0f), lowbit::invalid_value);
  CHECK_THROWS_AS(coded.set_zero(0, 2.5f), lowbit::invalid_value);
  CHECK_THROWS_AS(coded.set_zero(0, -1.0f), lowbit::invalid_value);

  QuantizedMatrix fractional(Scheme::asymmetric_int(3, Granularity::per_group(4), ScalarFormat::f16,
                                                    lowbit::ZeroFormat::f16),
                             1, 8);
  CHECK(fractional.set_zero(1, 2.5f) == 2.5f);
  CHECK(fractional.zero(1) == 2.5f);
  CHECK(fractional.zero_bytes().size() == 4);
  CHECK(fractional.zero_codes().empty());
}

TEST_CASE("signed integer codes are two's complement", "[quantized_matrix]") {
  QuantizedMatrix q(Scheme::symmetric_int(4, Granularity::per_tensor(), ScalarFormat::f32), 1, 4);
  q.set_scale(0, 1.0f);
  q.set_code(0, 0, 0x7);
  q.set_code(0, 1, 0x8);
  q.set_code(0, 2, 0xF);
  q.set_code(0, 3, 0x0);
  CHECK(q.dequantize() == std::vector<float>{7.0f, -8.0f, -1.0f, 0.0f});
  CHECK_THROWS_AS(q.set_zero(0, 1.0f), lowbit::invalid_argument);
}

TEST_CASE("floating-point and NF4 elements decode through their tables", "[quantized_matrix]") {
  QuantizedMatrix fp4(Scheme{.element = ElementFormat::fp4_e2m1,
                             .bits = 4,
                             .granularity = Granularity::per_group(32),
                             .scale_format = ScalarFormat::e8m0},
                      1, 16);
  fp4.set_scale(0, 0.5f);
  for (std::size_t c = 0; c < 16; ++c) fp4.set_code(0, c, static_cast<std::uint8_t>(c));
  const std::vector<float> e2m1 = {0,     0.5f,  1,  1.5f,  2,  3,  4,  6,
                                   -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  const auto values = fp4.dequantize();
  for (std::size_t c = 0; c < 16; ++c) CHECK(values[c] == e2m1[c] * 0.5f);

  QuantizedMatrix nf4(Scheme{.element = ElementFormat::nf4,
                             .bits = 4,
                             .granularity = Granularity::per_group(64),
                             .scale_format = ScalarFormat::f32},
                      1, 2);
  nf4.set_scale(0, 2.0f);
  nf4.set_code(0, 0, 0);
  nf4.set_code(0, 1, 15);
  CHECK(nf4.dequantize() == std::vector<float>{-2.0f, 2.0f});

  QuantizedMatrix fp8(Scheme{.element = ElementFormat::fp8_e4m3,
                             .bits = 8,
                             .granularity = Granularity::per_channel(),
                             .scale_format = ScalarFormat::f32},
                      1, 1);
  fp8.set_scale(0, 1.0f);
  fp8.set_code(0, 0, 0x7E);
  CHECK(fp8.dequantize() == std::vector<float>{448.0f});
}

TEST_CASE("dequantize checks the output shape", "[quantized_matrix]") {
  const QuantizedMatrix q(Scheme::symmetric_int(8, Granularity::per_channel()), 2, 3);
  std::vector<float> out(6);
  CHECK_THROWS_AS(q.dequantize(lowbit::MatrixView<float>(out.data(), 3, 2)),
                  lowbit::invalid_argument);
}

TEST_CASE("empty matrices are valid", "[quantized_matrix]") {
  const QuantizedMatrix q(Scheme::symmetric_int(4, Granularity::per_group(32)), 0, 0);
  CHECK(q.dequantize().empty());
  CHECK(q.bits_per_weight() == 0.0);
}

TEST_CASE("scalar codebooks: each code looks up the codebook of its group",
          "[quantized_matrix][codebook]") {
  Scheme scheme{.element = ElementFormat::codebook,
                .bits = 2,
                .granularity = Granularity::none(),
                .codebook_granularity = Granularity::per_group(4),
                .codebook_format = ScalarFormat::f32};
  scheme.validate();
  QuantizedMatrix q(scheme, 2, 6);  // groups of 4: a whole one and a ragged one of 2 per row
  CHECK(q.scale_grid().size() == 0);
  CHECK(q.codebook_grid().rows == 2);
  CHECK(q.codebook_grid().cols == 2);
  CHECK(q.codebook_values() == 4);
  for (std::size_t b = 0; b < 4; ++b) {
    const float base = static_cast<float>(10 * b);
    q.set_codebook(b, std::vector<float>{base, base + 1, base + 2, base + 3});
  }
  for (std::size_t r = 0; r < 2; ++r)
    for (std::size_t c = 0; c < 6; ++c) q.set_code(r, c, static_cast<std::uint8_t>(c % 4));
  // Row 0: codebooks 0 (cols 0-3) and 1 (cols 4-5); row 1: codebooks 2 and 3.
  CHECK(q.dequantize() == std::vector<float>{0, 1, 2, 3, 10, 11, 20, 21, 22, 23, 30, 31});
  CHECK_THROWS_AS(q.set_codebook(0, std::vector<float>{1, 2}), lowbit::invalid_argument);
  CHECK_THROWS_AS(q.set_scale(0, 1.0f), lowbit::invalid_argument);
}

TEST_CASE("vector codebooks: one code stands for vector_dim weights",
          "[quantized_matrix][codebook]") {
  Scheme scheme{.element = ElementFormat::codebook,
                .bits = 1,
                .granularity = Granularity::per_channel(),
                .scale_format = ScalarFormat::f32,
                .vector_dim = 2,
                .codebook_granularity = Granularity::per_tensor(),
                .codebook_format = ScalarFormat::f16};
  scheme.validate();
  QuantizedMatrix q(scheme, 2, 5);  // 3 codes a row, the last one for a single weight
  CHECK(q.words_per_row() == 1);
  const std::vector<float> stored = q.set_codebook(0, std::vector<float>{1.0f, -1.0f, 0.5f, 0.25f});
  CHECK(stored == std::vector<float>{1.0f, -1.0f, 0.5f, 0.25f});
  q.set_scale(0, 2.0f);
  q.set_scale(1, -1.0f);
  const std::uint8_t codes[2][3] = {{0, 1, 1}, {1, 0, 0}};
  for (std::size_t r = 0; r < 2; ++r)
    for (std::size_t j = 0; j < 3; ++j) q.set_code(r, j, codes[r][j]);
  CHECK(q.dequantize() == std::vector<float>{2, -2, 1, 0.5f, 1, -0.5f, -0.25f, -1, 1, -1});
  CHECK(scheme.bits_per_weight(2, 5) == Approx((2.0 * 3 * 1 + 2 * 32 + 4 * 16) / 10.0));
}

TEST_CASE("the tensor scale multiplies every group's scale", "[quantized_matrix]") {
  Scheme scheme{.element = ElementFormat::fp4_e2m1,
                .bits = 4,
                .granularity = Granularity::per_group(16),
                .scale_format = ScalarFormat::e4m3,
                .tensor_scale = true};
  scheme.validate();
  QuantizedMatrix q(scheme, 1, 2);
  CHECK(q.tensor_scale() == 1.0f);
  q.set_scale(0, 3.0f);
  q.set_tensor_scale(0.125f);
  q.set_code(0, 0, 0x7);  // 6
  q.set_code(0, 1, 0xA);  // -1
  CHECK(q.dequantize() == std::vector<float>{6.0f * 0.375f, -0.375f});
  QuantizedMatrix plain(Scheme::symmetric_int(4, Granularity::per_channel()), 1, 1);
  CHECK_THROWS_AS(plain.set_tensor_scale(2.0f), lowbit::invalid_argument);
  CHECK(scheme.bits_per_weight(64, 64) == Approx(4.0 + 8.0 / 16 + 32.0 / 4096));
}

TEST_CASE("double-quantized scales decode through the dynamic map", "[quantized_matrix]") {
  Scheme scheme{.element = ElementFormat::nf4,
                .bits = 4,
                .granularity = Granularity::per_group(2),
                .scale_format = ScalarFormat::f32,
                .double_quant_block = 2};
  scheme.validate();
  QuantizedMatrix q(scheme, 1, 6);  // 3 scales in 2 blocks
  REQUIRE(q.scale_block_absmax().size() == 2);
  const auto& map = lowbit::dynamic_map_signed();
  q.set_double_quantized_scale(0, 255);  // 1.0
  q.set_double_quantized_scale(1, 127);  // 0.0
  q.set_double_quantized_scale(2, 255);
  q.scale_block_absmax()[0] = 0.5f;
  q.scale_block_absmax()[1] = 0.25f;
  q.set_scale_offset(1.0f);
  CHECK(map[255] == 1.0f);
  CHECK(map[127] == 0.0f);
  CHECK(q.scale(0) == 1.5f);
  CHECK(q.scale(1) == 1.0f);
  CHECK(q.scale(2) == 1.25f);
  CHECK_THROWS_AS(q.set_scale(0, 1.0f), lowbit::invalid_argument);
  // 4-bit codes, 8-bit scales per 64, an fp32 absmax per 256 scales and one fp32 mean (QLoRA).
  Scheme nf4_dq = scheme;
  nf4_dq.granularity = Granularity::per_group(64);
  nf4_dq.double_quant_block = 256;
  CHECK(nf4_dq.bits_per_weight(4096, 4096) ==
        Approx(4.0 + 8.0 / 64 + 32.0 / (64 * 256) + 32.0 / (4096.0 * 4096)));
}

TEST_CASE("the dynamic map is bitsandbytes' signed 8-bit map", "[format]") {
  const auto& map = lowbit::dynamic_map_signed();
  CHECK(std::is_sorted(map.begin(), map.end()));
  CHECK(map.front() == Approx(-0.99296875f));
  CHECK(map.back() == 1.0f);
  CHECK(std::count(map.begin(), map.end(), 0.0f) == 1);
  // The smallest positive value: 1e-6 times the mean of linspace(0.1, 1, 2).
  CHECK(map[128] == Approx(0.55e-6f));
}

TEST_CASE("codebook and second-level scheme fields are validated", "[scheme]") {
  Scheme no_scales = Scheme::symmetric_int(4, Granularity::per_group(32));
  no_scales.granularity = Granularity::none();
  CHECK_THROWS_WITH(no_scales.validate(),
                    Catch::Contains("only codebook elements can go without scales"));
  Scheme vectors{.element = ElementFormat::codebook,
                 .bits = 8,
                 .granularity = Granularity::per_group(30),
                 .vector_dim = 4};
  CHECK_THROWS_WITH(vectors.validate(), Catch::Contains("multiple of vector_dim"));
  Scheme fp8_book{
      .element = ElementFormat::codebook, .bits = 4, .codebook_format = ScalarFormat::e4m3};
  CHECK_THROWS_WITH(fp8_book.validate(),
                    Catch::Contains("codebooks are stored in f32, f16 or bf16"));
  Scheme dq{.element = ElementFormat::nf4,
            .bits = 4,
            .granularity = Granularity::per_group(64),
            .scale_format = ScalarFormat::f16,
            .double_quant_block = 256};
  CHECK_THROWS_WITH(dq.validate(), Catch::Contains("double quantization takes f32 scales"));
  Scheme named{.element = ElementFormat::codebook,
               .bits = 8,
               .granularity = Granularity::none(),
               .vector_dim = 2,
               .codebook_granularity = Granularity::per_tensor(),
               .codebook_format = ScalarFormat::f32};
  CHECK(named.to_string() == "cb8x2 unscaled codebook=tensor/f32");
}
