#include <catch2/catch.hpp>

#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>

#include "lowbit/cpu_features.hpp"
#include "lowbit/scheme.hpp"

using lowbit::ElementFormat;
using lowbit::Granularity;
using lowbit::ScalarFormat;
using lowbit::Scheme;
using lowbit::ZeroFormat;

TEST_CASE("schemes describe themselves", "[scheme]") {
  CHECK(Scheme::symmetric_int(4, Granularity::per_group(128)).to_string() ==
        "int4 sym g128 scale=f16");
  CHECK(Scheme::asymmetric_int(3, Granularity::per_channel(), ScalarFormat::bf16).to_string() ==
        "uint3 asym channel scale=bf16 zero=code");
  CHECK(Scheme::symmetric_int(8, Granularity::per_tensor(), ScalarFormat::f32).to_string() ==
        "int8 sym tensor scale=f32");
}

TEST_CASE("invalid schemes are rejected with the reason", "[scheme]") {
  CHECK_THROWS_AS(Scheme::symmetric_int(1, Granularity::per_channel()), lowbit::invalid_argument);
  CHECK_THROWS_AS(Scheme::symmetric_int(9, Granularity::per_channel()), lowbit::invalid_argument);
  CHECK_THROWS_AS(Scheme::symmetric_int(4, Granularity::per_group(0)), lowbit::invalid_argument);
  const Scheme fp4{.element = ElementFormat::fp4_e2m1,
                   .bits = 3,
                   .granularity = Granularity::per_group(32),
                   .scale_format = ScalarFormat::e8m0};
  CHECK_THROWS_WITH(fp4.validate(), Catch::Contains("e2m1 elements have 4 bits"));
  Scheme awq = Scheme::asymmetric_int(3, Granularity::per_group(128));
  awq.pack_order = lowbit::PackOrder::awq_interleaved;
  CHECK_THROWS_AS(awq.validate(), lowbit::invalid_argument);
}

TEST_CASE("zero formats", "[scheme]") {
  CHECK(Scheme::asymmetric_int(3, Granularity::per_group(64)).zero_bits() == 3);
  CHECK(Scheme::asymmetric_int(3, Granularity::per_group(64), ScalarFormat::f16, ZeroFormat::bf16)
            .zero_bits() == 16);
  CHECK(Scheme::asymmetric_int(3, Granularity::per_group(64), ScalarFormat::f16, ZeroFormat::f32)
            .to_string() == "uint3 asym g64 scale=f16 zero=f32");
}

TEST_CASE("the scale grid follows the granularity, with a ragged last group", "[scheme]") {
  const auto grid = [](Granularity g, std::size_t rows, std::size_t cols) {
    const auto sg = Scheme::symmetric_int(4, g).scale_grid(rows, cols);
    return std::pair{sg.rows, sg.cols};
  };
  CHECK(grid(Granularity::per_tensor(), 64, 172) == std::pair<std::size_t, std::size_t>{1, 1});
  CHECK(grid(Granularity::per_channel(), 64, 172) == std::pair<std::size_t, std::size_t>{64, 1});
  CHECK(grid(Granularity::per_group(32), 64, 172) == std::pair<std::size_t, std::size_t>{64, 6});
  CHECK(grid(Granularity::per_group(172), 64, 172) == std::pair<std::size_t, std::size_t>{64, 1});
  CHECK(grid(Granularity::per_group(256), 64, 172) == std::pair<std::size_t, std::size_t>{64, 1});
}

TEST_CASE("bits per weight count codes, scales and zero points", "[scheme]") {
  // The figures docs/formats.md quotes.
  CHECK(Scheme::symmetric_int(4, Granularity::per_group(128)).bits_per_weight(4096, 4096) ==
        Approx(4.125));
  // Integer zero points are packed codes of the element width, as in GPTQ/AWQ checkpoints ...
  CHECK(Scheme::asymmetric_int(4, Granularity::per_group(128)).bits_per_weight(4096, 4096) ==
        Approx(4.0 + 20.0 / 128));
  // ... or floats, for fractional zero points.
  CHECK(Scheme::asymmetric_int(4, Granularity::per_group(128), ScalarFormat::f16,
                               lowbit::ZeroFormat::f16)
            .bits_per_weight(4096, 4096) == Approx(4.25));
  CHECK(Scheme::symmetric_int(4, Granularity::per_group(32)).bits_per_weight(4096, 4096) ==
        Approx(4.5));
  CHECK(Scheme::symmetric_int(8, Granularity::per_channel()).bits_per_weight(4096, 4096) ==
        Approx(8.0 + 16.0 / 4096));
  CHECK(Scheme::symmetric_int(3, Granularity::per_tensor(), ScalarFormat::f32)
            .bits_per_weight(64, 64) == Approx(3.0 + 32.0 / 4096));
  // Ragged: 172 columns in groups of 32 make 6 groups a row.
  CHECK(Scheme::symmetric_int(4, Granularity::per_group(32)).bits_per_weight(64, 172) ==
        Approx((172.0 * 4 + 6 * 16) / 172));
}

namespace {

/// Each row's name parses back to its value, and no value or name appears twice.
template <class Row, std::size_t N, class Parse>
void check_table(const Row (&table)[N], Parse parse) {
  for (std::size_t i = 0; i < N; ++i) {
    INFO(table[i].name);
    CHECK(parse(table[i].name) == table[i].value);
    for (std::size_t j = 0; j < i; ++j) {
      CHECK(table[j].value != table[i].value);
      CHECK(std::string_view(table[j].name) != table[i].name);
    }
  }
  CHECK_FALSE(parse("no-such-name").has_value());
}

}  // namespace

TEST_CASE("the traits tables name every value once and parse the names back", "[scheme][tables]") {
  check_table(lowbit::element_format_table, lowbit::parse_element_format);
  check_table(lowbit::scalar_format_table, lowbit::parse_scalar_format);
  check_table(lowbit::zero_format_table, lowbit::parse_zero_format);
  check_table(lowbit::ggml_type_table, lowbit::parse_ggml_type);
  check_table(lowbit::isa_table, lowbit::parse_isa);
  // One row for every enumerator (the enumerations end with higgs, e4m3 and bf16).
  CHECK(std::size(lowbit::element_format_table) ==
        static_cast<std::size_t>(ElementFormat::higgs) + 1);
  CHECK(std::size(lowbit::scalar_format_table) == static_cast<std::size_t>(ScalarFormat::e4m3) + 1);
  CHECK(std::size(lowbit::zero_format_table) == static_cast<std::size_t>(ZeroFormat::bf16) + 1);
  // to_string reads the same rows; a value outside the enumeration is "?".
  CHECK(std::string_view(lowbit::to_string(ElementFormat::codebook)) == "cb");
  CHECK(std::string_view(lowbit::to_string(lowbit::GgmlType::q4_k)) == "q4_K");
  CHECK(std::string_view(lowbit::to_string(static_cast<ScalarFormat>(77))) == "?");
  CHECK(lowbit::scalar_bits(static_cast<ScalarFormat>(77)) == 0);
  CHECK(lowbit::zero_scalar_format(ZeroFormat::bf16) == ScalarFormat::bf16);
  // The ggml rows carry what Scheme::ggml_blocks builds.
  for (const lowbit::GgmlTypeTraits& row : lowbit::ggml_type_table) {
    const Scheme s = Scheme::ggml_blocks(row.value);
    CHECK(s.bits == row.code_bits);
    CHECK(s.block_weights() == row.block_weights);
    CHECK(s.block_bytes() == row.block_bytes);
    CHECK(s.to_string() == row.layout_name);
  }
}
