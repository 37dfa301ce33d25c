#include <catch2/catch.hpp>
#include <cstdint>
#include <type_traits>

#include "lowbit/error.hpp"
#include "lowbit/format/intn.hpp"

namespace {

// Facts that must hold at compile time: the ranges, and that encode/decode is constexpr.
static_assert(lowbit::int4b::bits == 4 && lowbit::int4b::is_signed);
static_assert(!lowbit::uint4b::is_signed);
static_assert(lowbit::int4b::min_value == -8 && lowbit::int4b::max_value == 7);
static_assert(lowbit::uint4b::min_value == 0 && lowbit::uint4b::max_value == 15);
static_assert(lowbit::int2b::min_value == -2 && lowbit::int2b::max_value == 1);
static_assert(lowbit::uint2b::max_value == 3);
static_assert(lowbit::int3b::min_value == -4 && lowbit::int3b::max_value == 3);
static_assert(lowbit::int8b::min_value == -128 && lowbit::int8b::max_value == 127);
static_assert(lowbit::uint8b::max_value == 255);
static_assert(lowbit::int4b::from_bits(0xF).value() == -1);
static_assert(lowbit::int4b::from_bits(0xF8).code == 0x8);  // high bits dropped
static_assert(lowbit::int4b::saturating(-100).value() == -8);
static_assert(lowbit::uint3b::saturating(100).value() == 7);
static_assert(lowbit::int4b::checked(-3).code == 0xD);
static_assert(lowbit::int4b::checked(5) == lowbit::int4b::from_bits(5));
static_assert(lowbit::to_code(-1, 3) == 0x7 && lowbit::from_code(0x7, 3, true) == -1);
static_assert(lowbit::from_code(0x7, 3, false) == 7);
static_assert(lowbit::int_min(5, true) == -16 && lowbit::int_max(5, false) == 31);
// The type is one trivial byte, so arrays of it can be memcpy'd and used in device code.
static_assert(sizeof(lowbit::int4b) == 1);
static_assert(std::is_trivial_v<lowbit::int4b> && std::is_standard_layout_v<lowbit::int4b>);

template <int Bits, bool Signed>
void check_width() {
  using T = lowbit::integer_subbyte<Bits, Signed>;
  INFO("bits " << Bits << (Signed ? " signed" : " unsigned"));
  const int span = 1 << Bits;
  const int lo = Signed ? -(span / 2) : 0;
  const int hi = Signed ? span / 2 - 1 : span - 1;
  CHECK(T::min_value == lo);
  CHECK(T::max_value == hi);
  CHECK(lowbit::int_min(Bits, Signed) == lo);
  CHECK(lowbit::int_max(Bits, Signed) == hi);

  // Every code decodes into the range and re-encodes to itself; every value round-trips too.
  for (int code = 0; code < span; ++code) {
    const auto x = T::from_bits(static_cast<std::uint8_t>(code));
    CHECK(x.code == code);
    CHECK(x.value() >= lo);
    CHECK(x.value() <= hi);
    CHECK(T::checked(x.value()).code == code);
    CHECK(lowbit::to_code(x.value(), Bits) == code);
    CHECK(lowbit::from_code(static_cast<std::uint8_t>(code), Bits, Signed) == x.value());
  }
  for (int value = lo; value <= hi; ++value) {
    CHECK(T::checked(value).value() == value);
    CHECK(T::saturating(value).value() == value);
    CHECK(lowbit::from_code(lowbit::to_code(value, Bits), Bits, Signed) == value);
  }
  // Two's complement: the code of a negative value is value + 2^Bits.
  if constexpr (Signed) {
    CHECK(T::checked(-1).code == span - 1);
    CHECK(T::checked(lo).code == span / 2);
  }

  // from_bits ignores bits above the width; from_code does as well.
  CHECK(T::from_bits(static_cast<std::uint8_t>(0xFF)).code == span - 1);
  CHECK(lowbit::from_code(static_cast<std::uint8_t>(0xFF), Bits, false) == span - 1);

  CHECK(T::saturating(hi + 1).value() == hi);
  CHECK(T::saturating(lo - 1).value() == lo);
  CHECK(T::saturating(1 << 20).value() == hi);
  CHECK(T::saturating(-(1 << 20)).value() == lo);

  CHECK_THROWS_AS(T::checked(hi + 1), lowbit::invalid_argument);
  CHECK_THROWS_AS(T::checked(lo - 1), lowbit::invalid_argument);
}

template <bool Signed>
void check_all_widths() {
  check_width<2, Signed>();
  check_width<3, Signed>();
  check_width<4, Signed>();
  check_width<5, Signed>();
  check_width<6, Signed>();
  check_width<7, Signed>();
  check_width<8, Signed>();
}

}  // namespace

TEST_CASE("integer_subbyte: signed ranges and every code of 2 to 8 bits", "[format]") {
  check_all_widths<true>();
}

TEST_CASE("integer_subbyte: unsigned ranges and every code of 2 to 8 bits", "[format]") {
  check_all_widths<false>();
}

TEST_CASE("integer_subbyte: known codes", "[format]") {
  CHECK(lowbit::int4b::checked(-8).code == 0x8);
  CHECK(lowbit::int4b::checked(7).code == 0x7);
  CHECK(lowbit::int2b::from_bits(0x2).value() == -2);
  CHECK(lowbit::int2b::from_bits(0x3).value() == -1);
  CHECK(lowbit::int8b::from_bits(0x80).value() == -128);
  CHECK(lowbit::uint8b::from_bits(0x80).value() == 128);
  CHECK(lowbit::int6b::saturating(40).code == 0x1F);
  CHECK(lowbit::int6b::saturating(-40).code == 0x20);
}

TEST_CASE("integer_subbyte: checked names the value and the range", "[format]") {
  try {
    (void)lowbit::int4b::checked(9);
    FAIL("checked(9) should throw for int4b");
  } catch (const lowbit::invalid_argument& e) {
    const std::string message = e.what();
    CHECK(message.find('9') != std::string::npos);
    CHECK(message.find("[-8, 7]") != std::string::npos);
  }
}

TEST_CASE("runtime-width helpers agree with the templates for 1 bit too", "[format]") {
  CHECK(lowbit::int_min(1, true) == -1);
  CHECK(lowbit::int_max(1, true) == 0);
  CHECK(lowbit::int_max(1, false) == 1);
  CHECK(lowbit::from_code(1, 1, true) == -1);
  CHECK(lowbit::to_code(-1, 1) == 1);
}
