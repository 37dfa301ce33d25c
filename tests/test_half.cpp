#include "lowbit/format/half.hpp"

#include <catch2/catch.hpp>

#include <Eigen/Core>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace {

using lowbit::bfloat16;
using lowbit::float16;
using lowbit::Overflow;

static_assert(float16::from_bits(0x3C00).to_float() == 1.0f);
static_assert(float16::from_bits(0x7BFF).to_float() == 65504.0f);
static_assert(float16::from_bits(0x0001).to_float() == 0x1p-24f);
static_assert(float16::encode(65520.0f, Overflow::to_nonfinite).code == 0x7C00);  // tie -> Inf
static_assert(float16::encode(65519.0f, Overflow::to_nonfinite).code == 0x7BFF);
static_assert(float16::encode(65520.0f).code == 0x7BFF);
static_assert(bfloat16::from_bits(0x3F80).to_float() == 1.0f);
static_assert(bfloat16::encode(1.00390625f).code == 0x3F80);  // 1 + 2^-8: tie to even
static_assert(bfloat16::encode(1.01171875f).code == 0x3F82);  // 1 + 3 * 2^-8: tie to even
static_assert(bfloat16::from_bits(0x0001).to_float() == 0x1p-133f);

std::uint16_t eigen_half_bits(float x) {
  return Eigen::numext::bit_cast<std::uint16_t>(Eigen::half(x));
}
std::uint16_t eigen_bfloat16_bits(float x) {
  return Eigen::numext::bit_cast<std::uint16_t>(Eigen::bfloat16(x));
}
float eigen_half_value(std::uint16_t code) {
  return static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(code));
}
float eigen_bfloat16_value(std::uint16_t code) {
  return static_cast<float>(Eigen::numext::bit_cast<Eigen::bfloat16>(code));
}

/// float32 inputs for a 16-bit format: every binade (edges and random mantissas), and for every
/// code its value, the midpoint to the next code and one float ulp either side of both.
template <class Format, class Decode>
std::vector<float> half_sweep(Decode eigen_decode) {
  std::vector<float> inputs;
  std::mt19937 rng(Format::mantissa_bits);
  std::uniform_int_distribution<std::uint32_t> any_mantissa(0, 0x7F'FFFFu);
  for (std::uint32_t exponent = 0; exponent < 255; ++exponent)
    for (std::uint32_t sign : {0u, 0x8000'0000u}) {
      for (std::uint32_t mantissa :
           {0u, 1u, 0x7F'FFFFu, 0x40'0000u, 0x3F'FFFFu, 0x40'0001u, 0x00'1000u, 0x00'0FFFu,
            0x00'1001u, 0x00'8000u, 0x00'7FFFu, 0x00'8001u, 0x01'8000u, 0x00'3000u})
        inputs.push_back(std::bit_cast<float>(sign | (exponent << 23) | mantissa));
      for (int i = 0; i < 32; ++i)
        inputs.push_back(std::bit_cast<float>(sign | (exponent << 23) | any_mantissa(rng)));
    }
  auto push_around = [&](double v) {
    if (!(v <= static_cast<double>(std::numeric_limits<float>::max()))) return;
    const auto f = static_cast<float>(v);
    for (float s : {f, -f}) {
      inputs.push_back(s);
      inputs.push_back(std::nextafter(s, std::numeric_limits<float>::infinity()));
      inputs.push_back(std::nextafter(s, -std::numeric_limits<float>::infinity()));
    }
  };
  // Positive finite codes run from 0 to just below +Inf's code (0x7C00 for fp16, 0x7F80 for bf16).
  const std::uint32_t inf_code = ((1u << Format::exponent_bits) - 1u) << Format::mantissa_bits;
  for (std::uint32_t code = 0; code < inf_code; ++code) {
    const auto value = static_cast<double>(eigen_decode(static_cast<std::uint16_t>(code)));
    const auto next = static_cast<double>(eigen_decode(static_cast<std::uint16_t>(code + 1)));
    const auto previous =
        code == 0 ? 0.0 : static_cast<double>(eigen_decode(static_cast<std::uint16_t>(code - 1)));
    push_around(value);
    // Above the largest finite value the next step would be as wide as the previous one.
    push_around(std::isinf(next) ? value + (value - previous) / 2 : (value + next) / 2);
  }
  std::uniform_int_distribution<std::uint32_t> any_bits;
  for (int i = 0; i < 200000; ++i) inputs.push_back(std::bit_cast<float>(any_bits(rng)));
  inputs.push_back(std::numeric_limits<float>::infinity());
  inputs.push_back(-std::numeric_limits<float>::infinity());
  return inputs;
}

template <class Format, class EigenEncode, class EigenDecode>
void check_against_eigen(EigenEncode eigen_encode, EigenDecode eigen_decode) {
  // Every code decodes like Eigen's (NaNs: both NaN with the same sign) and re-encodes.
  std::size_t decode_mismatches = 0;
  for (std::uint32_t code = 0; code < 0x10000u; ++code) {
    const auto c = static_cast<std::uint16_t>(code);
    const float ours = Format::from_bits(c).to_float();
    const float theirs = eigen_decode(c);
    const bool same =
        std::isnan(theirs)
            ? std::isnan(ours) && std::signbit(ours) == std::signbit(theirs)
            : std::bit_cast<std::uint32_t>(ours) == std::bit_cast<std::uint32_t>(theirs);
    if (!same && ++decode_mismatches <= 5) {
      INFO(Format::name() << " code 0x" << std::hex << code);
      CHECK(false);
    }
  }
  CHECK(decode_mismatches == 0);

  // Eigen rounds to nearest even and overflows to Inf: our to_nonfinite mode, bit for bit.
  const std::vector<float> inputs = half_sweep<Format>(eigen_decode);
  std::size_t encode_mismatches = 0;
  for (float x : inputs) {
    const std::uint16_t theirs = eigen_encode(x);
    const auto ours = Format::encode(x, Overflow::to_nonfinite);
    bool same = ours.ok && ours.code == theirs;
    if (std::isnan(x))  // Eigen drops NaN payloads; lowbit keeps the top bits (both quiet)
      same = ours.ok && Format::from_bits(ours.code).is_nan() &&
             (ours.code & 0x8000u) == (theirs & 0x8000u);
    if (!same && ++encode_mismatches <= 5) {
      INFO(Format::name() << " input bits 0x" << std::hex << std::bit_cast<std::uint32_t>(x)
                          << ": Eigen 0x" << theirs << ", lowbit 0x" << ours.code);
      CHECK(false);
    }
  }
  INFO(Format::name() << ": " << inputs.size() << " inputs");
  CHECK(encode_mismatches == 0);
}

TEST_CASE("[format] float16 agrees with Eigen::half on all codes and a float32 sweep", "[format]") {
  check_against_eigen<float16>(eigen_half_bits, eigen_half_value);
}

TEST_CASE("[format] bfloat16 agrees with Eigen::bfloat16 on all codes and a float32 sweep",
          "[format]") {
  check_against_eigen<bfloat16>(eigen_bfloat16_bits, eigen_bfloat16_value);
}

TEST_CASE("[format] float16 and bfloat16 special values", "[format]") {
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(float16::encode(inf, Overflow::to_nonfinite).code == 0x7C00);
  CHECK(float16::encode(-inf).code == 0xFBFF);
  CHECK(float16::from_bits(0x7C00).is_inf());
  CHECK(float16::from_bits(0x7C01).is_nan());
  CHECK(float16::encode(std::numeric_limits<float>::quiet_NaN()).code == 0x7E00);
  CHECK(float16::encode(-0.0f).code == 0x8000);
  CHECK(float16::encode(0x1p-25f).code == 0x0000);  // tie to zero
  CHECK(float16::encode(std::nextafter(0x1p-25f, 1.0f)).code == 0x0001);
  CHECK(float16::encode(0x1.FFCp-15f).code == 0x0400);  // largest subnormal + half: smallest normal
  CHECK(bfloat16::encode(inf, Overflow::to_nonfinite).code == 0x7F80);
  CHECK(bfloat16::encode(std::numeric_limits<float>::max(), Overflow::to_nonfinite).code == 0x7F80);
  CHECK(bfloat16::encode(std::numeric_limits<float>::max()).code == 0x7F7F);
  CHECK(bfloat16::encode(std::numeric_limits<float>::denorm_min()).code == 0x0000);
  CHECK(bfloat16::encode(-std::numeric_limits<float>::quiet_NaN()).code == 0xFFC0);
  CHECK(std::string(bfloat16::name()) == "bfloat16");
}

}  // namespace
