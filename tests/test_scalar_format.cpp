#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <random>

#include "lowbit/format/scalar_format.hpp"

using lowbit::ScalarFormat;

namespace {
constexpr std::array all_formats = {ScalarFormat::f32, ScalarFormat::f16, ScalarFormat::bf16,
                                    ScalarFormat::e8m0, ScalarFormat::e4m3};
}

TEST_CASE("scalar formats store little-endian bytes and load them back", "[format][scalar]") {
  std::array<std::uint8_t, 4> bytes{};
  lowbit::store_scalar(ScalarFormat::f16, 1.0f, bytes.data());
  CHECK(bytes[0] == 0x00);
  CHECK(bytes[1] == 0x3C);
  lowbit::store_scalar(ScalarFormat::bf16, -2.0f, bytes.data());
  CHECK(bytes[0] == 0x00);
  CHECK(bytes[1] == 0xC0);
  lowbit::store_scalar(ScalarFormat::f32, 1.0f, bytes.data());
  CHECK(bytes == std::array<std::uint8_t, 4>{0x00, 0x00, 0x80, 0x3F});
  lowbit::store_scalar(ScalarFormat::e8m0, 0.25f, bytes.data());
  CHECK(bytes[0] == 125);
  lowbit::store_scalar(ScalarFormat::e4m3, 448.0f, bytes.data());
  CHECK(bytes[0] == 0x7E);

  for (ScalarFormat format : all_formats) {
    for (float value : {1.0f, 0.5f, 2.0f, 0.125f, 64.0f}) {
      lowbit::store_scalar(format, value, bytes.data());
      CHECK(lowbit::load_scalar(format, bytes.data()) == value);
    }
  }
}

TEST_CASE("scalar format sizes", "[format][scalar]") {
  STATIC_REQUIRE(lowbit::scalar_bytes(ScalarFormat::f32) == 4);
  STATIC_REQUIRE(lowbit::scalar_bytes(ScalarFormat::f16) == 2);
  STATIC_REQUIRE(lowbit::scalar_bytes(ScalarFormat::bf16) == 2);
  STATIC_REQUIRE(lowbit::scalar_bytes(ScalarFormat::e8m0) == 1);
  STATIC_REQUIRE(lowbit::scalar_bytes(ScalarFormat::e4m3) == 1);
}

TEST_CASE("values a format cannot hold are errors, overflow saturates", "[format][scalar]") {
  std::array<std::uint8_t, 4> bytes{};
  lowbit::store_scalar(ScalarFormat::f16, std::nanf(""), bytes.data());
  CHECK(std::isnan(lowbit::load_scalar(ScalarFormat::f16, bytes.data())));
  CHECK_THROWS_AS(lowbit::store_scalar(ScalarFormat::e8m0, -1.0f, bytes.data()),
                  lowbit::invalid_value);
  CHECK(lowbit::round_scalar(ScalarFormat::f16, 1e6f) == 65504.0f);
  CHECK(lowbit::round_scalar(ScalarFormat::e4m3, 1e6f) == 448.0f);
}

TEST_CASE("round_scalar_up gives the smallest stored value not below the input",
          "[format][scalar]") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exponent(-20.0f, 8.0f);  // inside every format's range
  for (ScalarFormat format : all_formats) {
    for (int i = 0; i < 2000; ++i) {
      const float value = std::exp2(exponent(rng));
      const float up = lowbit::round_scalar_up(format, value);
      REQUIRE(up >= value);
      // Nothing the format holds lies in [value, up): the value just below `up` is below `value`.
      const float nearest = lowbit::round_scalar(format, value);
      if (nearest >= value)
        CHECK(up == nearest);
      else
        CHECK(up > nearest);
    }
  }
  CHECK(lowbit::round_scalar_up(ScalarFormat::f16, 1e9f) == 65504.0f);  // nothing above: saturate
  CHECK(lowbit::round_scalar_up(ScalarFormat::e8m0, 0.3f) == 0.5f);
  CHECK(lowbit::round_scalar_up(ScalarFormat::bf16, 1.0f + 0x1p-20f) == 1.0f + 0x1p-7f);
}
