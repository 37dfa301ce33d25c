#include "lowbit/format/minifloat.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/format/half.hpp"

namespace {

using lowbit::NonFinite;
using lowbit::Overflow;

// ---- Compile-time facts. -----------------------------------------------------------------------

static_assert(lowbit::float8_e4m3::max_finite() == 448.0f);
static_assert(lowbit::float8_e4m3::min_normal() == 0x1p-6f);
static_assert(lowbit::float8_e4m3::min_subnormal() == 0x1p-9f);
static_assert(lowbit::float8_e5m2::max_finite() == 57344.0f);
static_assert(lowbit::float8_e5m2::min_subnormal() == 0x1p-16f);
static_assert(lowbit::float6_e2m3::max_finite() == 7.5f);
static_assert(lowbit::float6_e3m2::max_finite() == 28.0f);
static_assert(lowbit::float4_e1m2<>::max_finite() == 3.5f);
static_assert(lowbit::float4_e3m0<>::max_finite() == 16.0f);
static_assert(lowbit::float4_e3m0<>::min_subnormal() == 0.25f);
static_assert(lowbit::float16::max_finite() == 65504.0f);
static_assert(lowbit::float16::min_subnormal() == 0x1p-24f);
static_assert(lowbit::bfloat16::max_finite() == 0x1.FEp127f);
static_assert(lowbit::bfloat16::min_subnormal() == 0x1p-133f);
static_assert(lowbit::float8_e8m0::max_finite() == 0x1p127f);
static_assert(lowbit::float8_e8m0::min() == 0x1p-127f);

constexpr bool e2m1_values_are_the_ocp_list() {
  constexpr float expected[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  for (std::uint8_t code = 0; code < 8; ++code) {
    if (lowbit::float4_e2m1::from_bits(code).to_float() != expected[code]) return false;
    if (lowbit::float4_e2m1::from_bits(static_cast<std::uint8_t>(code | 8)).to_float() !=
        -expected[code])
      return false;
  }
  return true;
}
static_assert(e2m1_values_are_the_ocp_list());

// The overflow rule, after rounding, as ml_dtypes implements it.
static_assert(lowbit::float8_e4m3::encode(464.0f, Overflow::to_nonfinite).code == 0x7E);
static_assert(lowbit::float8_e4m3::encode(465.0f, Overflow::to_nonfinite).code == 0x7F);
static_assert(lowbit::float8_e4m3::encode(465.0f).code == 0x7E);
static_assert(lowbit::float8_e4m3::encode(-1e30f).code == 0xFE);
static_assert(lowbit::float8_e5m2::encode(61440.0f, Overflow::to_nonfinite).code == 0x7C);
static_assert(lowbit::float8_e5m2::encode(61439.0f, Overflow::to_nonfinite).code == 0x7B);
static_assert(lowbit::float4_e2m1::encode(7.0f, Overflow::to_nonfinite).code == 0x7);
static_assert(lowbit::float4_e2m1::encode(-0.25f).code == 0x8);  // a tie to (signed) zero
static_assert(lowbit::float4_e2m1::encode(0.75f).code == 0x2);   // tie to even: 1.0, not 0.5
static_assert(!lowbit::float4_e2m1::encode(std::numeric_limits<float>::quiet_NaN()).ok);
static_assert(lowbit::float8_e8m0::encode(1.5f).code == 0x80);
static_assert(!lowbit::float8_e8m0::encode(0.0f).ok);

static_assert(std::string_view(lowbit::float8_e4m3::name()) == "float8_e4m3");
static_assert(std::string_view(lowbit::float8_e5m2::name()) == "float8_e5m2");
static_assert(std::string_view(lowbit::float4_e2m1::name()) == "float4_e2m1");
static_assert(std::string_view(lowbit::float4_e1m2<>::name()) == "float4_e1m2");
static_assert(std::string_view(lowbit::float4_e1m2<1>::name()) == "float4_e1m2_b1");
static_assert(std::string_view(lowbit::float4_e3m0<>::name()) == "float4_e3m0");
static_assert(std::string_view(lowbit::float6_e2m3::name()) == "float6_e2m3");
static_assert(std::string_view(lowbit::float6_e3m2::name()) == "float6_e3m2");
static_assert(std::string_view(lowbit::float16::name()) == "float16");
static_assert(std::string_view(lowbit::bfloat16::name()) == "bfloat16");
static_assert(std::string_view(lowbit::minifloat<4, 3, 7, NonFinite::ieee>::name()) ==
              "float8_e4m3_inf");
static_assert(std::string_view(lowbit::float8_e8m0::name()) == "float8_e8m0");

static_assert(sizeof(lowbit::float8_e4m3) == 1 && sizeof(lowbit::float16) == 2);
static_assert(std::is_trivial_v<lowbit::float8_e5m2> && std::is_trivial_v<lowbit::bfloat16>);
static_assert(std::is_same_v<lowbit::float6_e3m2::storage_type, std::uint8_t>);
static_assert(std::is_same_v<lowbit::float16::storage_type, std::uint16_t>);

// ---- An independent reference: enumerate the finite codes, pick the nearest in double. ---------

/// Everything the reference knows about a format, computed from its parameters alone.
template <class Format>
struct Reference {
  static constexpr int E = Format::exponent_bits;
  static constexpr int M = Format::mantissa_bits;
  static constexpr std::uint32_t sign_bit = 1u << (E + M);
  static constexpr std::uint32_t exponent_ones = (1u << E) - 1u;

  std::vector<std::pair<double, std::uint32_t>> finite;  // ascending magnitudes with their codes
  std::uint32_t max_code = 0;
  double beyond_max = 0;  // the value one code above max would have with an unbounded exponent

  static double value_of(std::uint32_t magnitude) {
    const std::uint32_t exponent = magnitude >> M;
    const std::uint32_t mantissa = magnitude & ((1u << M) - 1u);
    if (exponent == 0) return std::ldexp(static_cast<double>(mantissa), 1 - Format::bias - M);
    return std::ldexp(static_cast<double>((1u << M) + mantissa),
                      static_cast<int>(exponent) - Format::bias - M);
  }
  static bool is_finite_code(std::uint32_t magnitude) {
    if (Format::non_finite == NonFinite::ieee) return (magnitude >> M) != exponent_ones;
    if (Format::non_finite == NonFinite::nan_only) return magnitude != sign_bit - 1u;
    return true;
  }
  /// The integer significand, implicit bit included: its parity is what "ties to even" means.
  static std::uint32_t significand(std::uint32_t magnitude) {
    const std::uint32_t mantissa = magnitude & ((1u << M) - 1u);
    return (magnitude >> M) == 0 ? mantissa : (1u << M) + mantissa;
  }

  Reference() {
    for (std::uint32_t magnitude = 0; magnitude < sign_bit; ++magnitude)
      if (is_finite_code(magnitude)) finite.emplace_back(value_of(magnitude), magnitude);
    max_code = finite.back().second;
    const int max_exponent = static_cast<int>(max_code >> M) - Format::bias;
    beyond_max = finite.back().first + std::ldexp(1.0, max_exponent - M);
  }

  std::uint32_t overflow_code(Overflow mode) const {
    if (mode == Overflow::saturate) return max_code;
    if (Format::non_finite == NonFinite::ieee) return exponent_ones << M;
    if (Format::non_finite == NonFinite::nan_only) return sign_bit - 1u;
    return max_code;
  }

  /// Of two neighbours at equal distance: the even significand; both odd (no mantissa bits),
  /// the larger, as the carry into the exponent gives.
  static std::uint32_t tie_break(std::uint32_t lower, std::uint32_t upper) {
    if (significand(lower) % 2 == 0) return lower;
    return upper;
  }

  /// The expected code of a non-NaN float.
  std::uint32_t encode(float x, Overflow mode) const {
    const std::uint32_t sign = std::signbit(x) ? sign_bit : 0u;
    if (std::isinf(x)) return sign | overflow_code(mode);
    const double a = std::fabs(static_cast<double>(x));
    const auto upper =
        std::lower_bound(finite.begin(), finite.end(), a,
                         [](const auto& entry, double v) { return entry.first < v; });
    if (upper == finite.end()) {
      const double midpoint = (finite.back().first + beyond_max) / 2;
      if (a < midpoint) return sign | max_code;
      if (a == midpoint && significand(max_code) % 2 == 0) return sign | max_code;
      return sign | overflow_code(mode);
    }
    if (upper->first == a) return sign | upper->second;
    const auto lower = upper - 1;  // a > 0 == finite.front().first, so there is one
    const double midpoint = (lower->first + upper->first) / 2;
    if (a < midpoint) return sign | lower->second;
    if (a > midpoint) return sign | upper->second;
    return sign | tie_break(lower->second, upper->second);
  }
};

float float_from_bits(std::uint32_t bits) { return std::bit_cast<float>(bits); }
std::uint32_t bits_of(float x) { return std::bit_cast<std::uint32_t>(x); }

/// Inputs that probe every float32 binade and every rounding boundary of the format.
template <class Format>
std::vector<float> sweep_inputs(const Reference<Format>& reference) {
  std::vector<float> inputs;
  std::mt19937 rng(20240611u + static_cast<unsigned>(Format::bits * 100 + Format::mantissa_bits));
  std::uniform_int_distribution<std::uint32_t> any_mantissa(0, 0x7F'FFFFu);
  constexpr std::uint32_t edge_mantissas[] = {0,         1,         2,         3,         0x1F'FFFF,
                                              0x20'0000, 0x3F'FFFF, 0x40'0000, 0x40'0001, 0x5F'FFFF,
                                              0x60'0000, 0x60'0001, 0x7F'FFFE, 0x7F'FFFF};
  for (std::uint32_t exponent = 0; exponent < 255;
       ++exponent) {  // all finite binades, subnormals too
    for (std::uint32_t sign : {0u, 0x8000'0000u}) {
      for (std::uint32_t mantissa : edge_mantissas)
        inputs.push_back(float_from_bits(sign | (exponent << 23) | mantissa));
      for (int i = 0; i < 24; ++i)
        inputs.push_back(float_from_bits(sign | (exponent << 23) | any_mantissa(rng)));
    }
  }
  // Every value, every midpoint between neighbours (ties), and one float ulp either side.
  auto add_with_neighbours = [&](double v) {
    if (v > static_cast<double>(std::numeric_limits<float>::max())) return;  // bf16's 2^128
    const auto f = static_cast<float>(v);
    REQUIRE(static_cast<double>(f) == v);  // midpoints of these formats are float32 values
    for (float s : {f, -f}) {
      inputs.push_back(s);
      inputs.push_back(std::nextafter(s, std::numeric_limits<float>::infinity()));
      inputs.push_back(std::nextafter(s, -std::numeric_limits<float>::infinity()));
    }
  };
  const auto& finite = reference.finite;
  for (std::size_t i = 0; i < finite.size(); ++i) {
    add_with_neighbours(finite[i].first);
    const double next = i + 1 < finite.size() ? finite[i + 1].first : reference.beyond_max;
    add_with_neighbours((finite[i].first + next) / 2);
  }
  add_with_neighbours(reference.beyond_max);
  for (float special : {0.0f, -0.0f, std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::max(),
                        -std::numeric_limits<float>::max()})
    inputs.push_back(special);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  for (int i = 0; i < 20000; ++i) {
    const float x = float_from_bits(any_bits(rng));
    if (!std::isnan(x)) inputs.push_back(x);
  }
  return inputs;
}

template <class Format>
void check_all_codes() {
  using Code = typename Format::storage_type;
  const Reference<Format> reference;
  const std::uint32_t count = 1u << Format::bits;
  const std::uint32_t quiet_bit = Format::mantissa_bits > 0 ? 1u << (Format::mantissa_bits - 1) : 0;
  float previous_positive = -1.0f;
  for (std::uint32_t code = 0; code < count; ++code) {
    const auto f = Format::from_bits(static_cast<Code>(code));
    const std::uint32_t magnitude = code & (Reference<Format>::sign_bit - 1u);
    const bool negative = (code & Reference<Format>::sign_bit) != 0;
    const float value = f.to_float();
    INFO(Format::name() << " code 0x" << std::hex << code);
    REQUIRE(f.code == code);
    if (!Reference<Format>::is_finite_code(magnitude)) {
      const bool is_inf = Format::non_finite == NonFinite::ieee &&
                          (magnitude & ((1u << Format::mantissa_bits) - 1u)) == 0;
      CHECK(f.is_inf() == is_inf);
      CHECK(f.is_nan() == !is_inf);
      CHECK(std::signbit(value) == negative);
      if (is_inf) {
        CHECK(std::isinf(value));
        CHECK(Format::encode(value, Overflow::to_nonfinite).code == code);
        CHECK(Format::encode(value).code ==
              (code & Reference<Format>::sign_bit) + reference.max_code);
        continue;
      }
      CHECK(std::isnan(value));
      CHECK((bits_of(value) & 0x0040'0000u) != 0);  // quiet
      // Re-encoding gives the same NaN, quieted: payloads survive the round trip.
      const auto again = Format::encode(value);
      CHECK(again.ok);
      CHECK(Format::from_bits(again.code).is_nan());
      CHECK(again.code == (code | quiet_bit));
      continue;
    }
    CHECK_FALSE(f.is_nan());
    CHECK_FALSE(f.is_inf());
    const double expected = Reference<Format>::value_of(magnitude);
    CHECK(static_cast<double>(value) == (negative ? -expected : expected));
    CHECK(std::signbit(value) == negative);
    for (Overflow mode : {Overflow::saturate, Overflow::to_nonfinite}) {
      const auto again = Format::encode(value, mode);
      CHECK(again.ok);
      CHECK(again.code == code);
    }
    CHECK(Format::from_float(value) == f);
    if (!negative) {
      CHECK(value > previous_positive);  // codes are ordered like values
      previous_positive = value;
    }
  }
  CHECK(Format::from_bits(static_cast<Code>(reference.max_code)).to_float() ==
        Format::max_finite());
}

template <class Format>
void check_sweep() {
  const Reference<Format> reference;
  const std::vector<float> inputs = sweep_inputs(reference);
  for (Overflow mode : {Overflow::saturate, Overflow::to_nonfinite}) {
    std::size_t mismatches = 0;
    for (float x : inputs) {
      const std::uint32_t expected = reference.encode(x, mode);
      const auto got = Format::encode(x, mode);
      if (got.ok && got.code == expected) continue;
      if (++mismatches <= 5) {
        INFO(Format::name() << (mode == Overflow::saturate ? " saturate" : " to_nonfinite")
                            << ": input bits 0x" << std::hex << bits_of(x) << " (" << x
                            << "), expected 0x" << expected << ", got 0x" << +got.code
                            << (got.ok ? "" : " (not ok)"));
        CHECK(false);
      }
    }
    INFO(Format::name() << ": " << inputs.size() << " inputs");
    CHECK(mismatches == 0);
  }
}

template <class Format>
void check_nan_inputs() {
  constexpr std::uint32_t nan_patterns[] = {0x7FC0'0000u, 0xFFC0'0000u, 0x7F80'0001u, 0xFF80'0001u,
                                            0x7FFF'FFFFu, 0xFFFF'FFFFu, 0x7FA0'0000u, 0x7FE0'0000u,
                                            0x7F90'0000u, 0xFFC0'0001u};
  constexpr int M = Format::mantissa_bits;
  for (std::uint32_t pattern : nan_patterns) {
    const float x = float_from_bits(pattern);
    INFO(Format::name() << " NaN bits 0x" << std::hex << pattern);
    const std::uint32_t sign = (pattern >> 31) != 0 ? Reference<Format>::sign_bit : 0u;
    for (Overflow mode : {Overflow::saturate, Overflow::to_nonfinite}) {
      const auto result = Format::encode(x, mode);
      if constexpr (Format::non_finite == NonFinite::none) {
        CHECK_FALSE(result.ok);
      } else if constexpr (Format::non_finite == NonFinite::nan_only) {
        CHECK(result.ok);
        CHECK(result.code == (sign | (Reference<Format>::sign_bit - 1u)));
      } else {
        const std::uint32_t payload = (pattern & 0x7F'FFFFu) >> (23 - M);
        CHECK(result.ok);
        CHECK(result.code ==
              (sign | (Reference<Format>::exponent_ones << M) | (1u << (M - 1)) | payload));
      }
    }
    if constexpr (Format::non_finite == NonFinite::none) {
      CHECK_THROWS_AS(Format::from_float(x), lowbit::invalid_value);
    } else {
      CHECK(Format::from_float(x).is_nan());
    }
  }
}

template <class... Formats>
struct format_list {};

using all_minifloats = format_list<
    lowbit::float8_e4m3, lowbit::float8_e5m2, lowbit::float4_e2m1, lowbit::float4_e1m2<>,
    lowbit::float4_e1m2<1>, lowbit::float4_e3m0<>, lowbit::float4_e3m0<7>, lowbit::float6_e2m3,
    lowbit::float6_e3m2, lowbit::float16, lowbit::bfloat16,
    // Other shapes the template allows, to exercise the generic paths.
    lowbit::minifloat<4, 3, 7, NonFinite::ieee>, lowbit::minifloat<3, 4, 3, NonFinite::ieee>,
    lowbit::minifloat<5, 3, 15, NonFinite::nan_only>,
    lowbit::minifloat<3, 0, 2, NonFinite::nan_only>, lowbit::minifloat<8, 0, 128, NonFinite::none>,
    lowbit::minifloat<2, 13, 1, NonFinite::none>>;

template <class... Formats, class Check>
void for_each_format(format_list<Formats...>, Check check) {
  (check(static_cast<Formats*>(nullptr)), ...);
}

TEST_CASE("[format] every minifloat code decodes exactly and re-encodes to itself", "[format]") {
  for_each_format(all_minifloats{}, [](auto* tag) {
    using Format = std::remove_pointer_t<decltype(tag)>;
    check_all_codes<Format>();
  });
}

TEST_CASE("[format] minifloat encoding matches a brute-force nearest-value reference", "[format]") {
  for_each_format(all_minifloats{}, [](auto* tag) {
    using Format = std::remove_pointer_t<decltype(tag)>;
    check_sweep<Format>();
  });
}

TEST_CASE("[format] NaN inputs keep their sign, or are refused without NaN", "[format]") {
  for_each_format(all_minifloats{}, [](auto* tag) {
    using Format = std::remove_pointer_t<decltype(tag)>;
    check_nan_inputs<Format>();
  });
  try {
    (void)lowbit::float4_e2m1::from_float(std::numeric_limits<float>::quiet_NaN());
    FAIL("expected invalid_value");
  } catch (const lowbit::invalid_value& e) {
    CHECK_THAT(e.what(), Catch::Contains("nan") && Catch::Contains("float4_e2m1"));
  }
}

TEST_CASE("[format] minifloat rounding at the edges", "[format]") {
  using lowbit::float4_e2m1;
  using lowbit::float8_e4m3;
  using lowbit::float8_e5m2;
  const float inf = std::numeric_limits<float>::infinity();

  SECTION("saturate and to_nonfinite") {
    CHECK(float8_e4m3::encode(inf).code == 0x7E);
    CHECK(float8_e4m3::encode(-inf).code == 0xFE);
    CHECK(float8_e4m3::encode(inf, Overflow::to_nonfinite).code == 0x7F);
    CHECK(float8_e5m2::encode(inf).code == 0x7B);
    CHECK(float8_e5m2::encode(-inf, Overflow::to_nonfinite).code == 0xFC);
    CHECK(float8_e5m2::encode(61440.0f).code == 0x7B);
    CHECK(float4_e2m1::encode(inf, Overflow::to_nonfinite).code == 0x7);
    CHECK(float4_e2m1::encode(-inf, Overflow::to_nonfinite).code == 0xF);
    CHECK(float8_e4m3::from_float(1e6f, Overflow::to_nonfinite).is_nan());
    CHECK(float8_e5m2::from_float(1e6f, Overflow::to_nonfinite).is_inf());
  }
  SECTION("subnormals and zero") {
    // E4M3: smallest subnormal 2^-9; half of it is a tie that goes to (signed) zero.
    CHECK(float8_e4m3::encode(0x1p-10f).code == 0x00);
    CHECK(float8_e4m3::encode(-0x1p-10f).code == 0x80);
    CHECK(float8_e4m3::encode(std::nextafter(0x1p-10f, 1.0f)).code == 0x01);
    CHECK(float8_e4m3::encode(0x1.8p-9f).code == 0x02);  // 1.5 * 2^-9: tie to even (2)
    CHECK(float8_e4m3::encode(0x1.4p-8f).code == 0x02);  // 2.5 * 2^-9: tie to even (2)
    CHECK(float8_e4m3::encode(0x1.Cp-8f).code == 0x04);  // 3.5 * 2^-9: tie to even (4)
    // Largest subnormal 7 * 2^-9 rounds up into the smallest normal 2^-6 = 8 * 2^-9 from 7.5.
    CHECK(float8_e4m3::encode(7.5f * 0x1p-9f).code == 0x08);
    CHECK(float8_e4m3::encode(std::nextafter(7.5f * 0x1p-9f, 0.0f)).code == 0x07);
    CHECK(float8_e4m3::encode(1e-40f).code == 0x00);  // float32 subnormal input
    CHECK(float8_e4m3::encode(-0.0f).code == 0x80);
  }
}

TEST_CASE("[format] float8_e8m0 codes, rounding and refusals", "[format]") {
  using lowbit::float8_e8m0;
  for (int code = 0; code < 255; ++code) {
    const auto f = float8_e8m0::from_bits(static_cast<std::uint8_t>(code));
    INFO("code " << code);
    CHECK(static_cast<double>(f.to_float()) == std::ldexp(1.0, code - 127));
    CHECK_FALSE(f.is_nan());
    CHECK(float8_e8m0::encode(f.to_float()).code == code);
    CHECK(float8_e8m0::encode(f.to_float(), Overflow::to_nonfinite).code == code);
    CHECK(float8_e8m0::from_float(f.to_float()) == f);
  }
  CHECK(float8_e8m0::from_bits(0xFF).is_nan());
  CHECK(std::isnan(float8_e8m0::from_bits(0xFF).to_float()));

  // Reference: the nearest power of two 2^k, k in [-127, 127], a tie (1.5 * 2^k) going up.
  auto expected = [](float x, Overflow mode) -> int {
    const double a = static_cast<double>(x);
    if (std::isinf(x)) return mode == Overflow::saturate ? 0xFE : 0xFF;
    if (a < std::ldexp(1.0, -127)) return 0;  // no zero: the smallest value
    int below = -127;                         // the largest power of two <= a
    while (below < 128 && std::ldexp(1.0, below + 1) <= a) ++below;
    const int nearest = a >= 1.5 * std::ldexp(1.0, below) ? below + 1 : below;
    if (nearest > 127) return mode == Overflow::saturate ? 0xFE : 0xFF;
    return nearest + 127;
  };
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> any_mantissa(0, 0x7F'FFFFu);
  std::size_t mismatches = 0;
  for (std::uint32_t exponent = 0; exponent <= 255; ++exponent) {
    std::vector<std::uint32_t> mantissas = {0,         1,         0x3F'FFFF, 0x40'0000, 0x40'0001,
                                            0x5F'FFFF, 0x60'0000, 0x60'0001, 0x7F'FFFF};
    for (int i = 0; i < 32; ++i) mantissas.push_back(any_mantissa(rng));
    for (std::uint32_t mantissa : mantissas) {
      const std::uint32_t bits = (exponent << 23) | mantissa;
      const float x = float_from_bits(bits);
      const float negative = float_from_bits(bits | 0x8000'0000u);
      for (Overflow mode : {Overflow::saturate, Overflow::to_nonfinite}) {
        const auto got = float8_e8m0::encode(x, mode);
        const auto got_negative = float8_e8m0::encode(negative, mode);
        CHECK(got_negative.code == 0xFF);
        if (std::isnan(x)) {
          CHECK((got.ok && got.code == 0xFF));
          CHECK(got_negative.ok);
          continue;
        }
        CHECK_FALSE(got_negative.ok);
        if (bits == 0) {
          CHECK_FALSE(got.ok);
          continue;
        }
        if (!(got.ok && got.code == expected(x, mode)) && ++mismatches <= 5) {
          INFO("input bits 0x" << std::hex << bits << " expected 0x" << expected(x, mode)
                               << " got 0x" << +got.code);
          CHECK(false);
        }
      }
    }
  }
  CHECK(mismatches == 0);

  // Where ml_dtypes (0.6) differs: it rounds float32 subnormals in (2^-127, 1.5 * 2^-127) up.
  CHECK(float8_e8m0::encode(0x1.4p-127f).code == 0x00);
  CHECK(float8_e8m0::encode(0x1.8p-127f).code == 0x01);
  CHECK(float8_e8m0::encode(1e-45f).code == 0x00);  // below the smallest: the smallest
  CHECK(float8_e8m0::encode(0x1.8p127f).code == 0xFE);
  CHECK(float8_e8m0::encode(0x1.8p127f, Overflow::to_nonfinite).code == 0xFF);
  CHECK(float8_e8m0::encode(0x1.7FFFFEp127f, Overflow::to_nonfinite).code == 0xFE);

  for (float bad : {0.0f, -0.0f, -1.0f, -std::numeric_limits<float>::infinity(),
                    std::numeric_limits<float>::quiet_NaN()})
    CHECK_THROWS_AS(float8_e8m0::from_float(bad), lowbit::invalid_value);
}

}  // namespace
