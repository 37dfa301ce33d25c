#include <catch2/catch.hpp>

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
