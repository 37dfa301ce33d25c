#include "lowbit/format/nf4.hpp"

#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "lowbit/error.hpp"

namespace {

using lowbit::nf4;

// bitsandbytes' table, as it prints it (the shortest decimal of each float32).
constexpr double bitsandbytes_nf4[16] = {-1.0,
                                         -0.6961928009986877,
                                         -0.5250730514526367,
                                         -0.39491748809814453,
                                         -0.28444138169288635,
                                         -0.18477343022823334,
                                         -0.09105003625154495,
                                         0.0,
                                         0.07958029955625534,
                                         0.16093020141124725,
                                         0.24611230194568634,
                                         0.33791524171829224,
                                         0.44070982933044434,
                                         0.5626170039176941,
                                         0.7229568362236023,
                                         1.0};

static_assert(nf4::values[0] == -1.0f && nf4::values[7] == 0.0f && nf4::values[15] == 1.0f);
static_assert(nf4::from_bits(7).to_float() == 0.0f);
static_assert(nf4::from_bits(0x1F).code == 0xF);
static_assert(nf4::encode_nearest(0.0f).code == 7);
static_assert(nf4::encode_nearest(-0.0f).code == 7);
static_assert(nf4::encode_nearest(5.0f).code == 15 && nf4::encode_nearest(-5.0f).code == 0);
static_assert(nf4::encode_nearest(0.8f).code == 14 && nf4::encode_nearest(0.9f).code == 15);
static_assert(sizeof(nf4) == 1 && std::is_trivial_v<nf4>);

TEST_CASE("[format] nf4 table is bitsandbytes' table", "[format]") {
  for (unsigned code = 0; code < 16; ++code) {
    INFO("code " << code);
    CHECK(static_cast<double>(nf4::values[code]) == bitsandbytes_nf4[code]);  // exact floats
    const auto f = nf4::from_bits(static_cast<std::uint8_t>(code));
    CHECK(f.to_float() == nf4::values[code]);
    CHECK(nf4::encode_nearest(f.to_float()).code == code);
    CHECK(nf4::from_float(f.to_float()) == f);
    if (code > 0) CHECK(nf4::values[code - 1] < nf4::values[code]);
  }
}

TEST_CASE("[format] nf4 thresholds are bitsandbytes' dQuantizeNF4 midpoints", "[format]") {
  for (unsigned i = 0; i < 15; ++i) {
    INFO("threshold " << i);
    const float threshold = lowbit::detail::nf4_threshold(i);
    // Each is one of the two floats nearest the exact midpoint of the two values (bitsandbytes
    // writes the double midpoint in decimal; as a float literal that rounds either way).
    const double midpoint = (bitsandbytes_nf4[i] + bitsandbytes_nf4[i + 1]) / 2;  // exact
    CHECK(static_cast<double>(std::nextafter(threshold, -2.0f)) < midpoint);
    CHECK(static_cast<double>(std::nextafter(threshold, 2.0f)) > midpoint);
    // x > threshold goes up; the threshold itself goes down.
    CHECK(nf4::encode_nearest(threshold).code == i);
    CHECK(nf4::encode_nearest(std::nextafter(threshold, 2.0f)).code == i + 1);
    CHECK(nf4::encode_nearest(std::nextafter(threshold, -2.0f)).code == i);
  }
}

TEST_CASE("[format] nf4 encoding is the nearest value, as bitsandbytes decides it", "[format]") {
  // Reference: the nearest value in exact (double) arithmetic, ties to the lower code. It
  // differs from bitsandbytes' float thresholds only at a threshold that was rounded up from a
  // midpoint between two floats (thresholds 1, 3, 4, 8): there x == threshold is nearer the upper
  // value, yet bitsandbytes (and lowbit) give the lower code. Out of range saturates.
  auto reference = [](float x) -> unsigned {
    const double v = std::fmax(-1.0, std::fmin(1.0, static_cast<double>(x)));
    unsigned best = 0;
    for (unsigned code = 1; code < 16; ++code)
      if (std::fabs(v - bitsandbytes_nf4[code]) < std::fabs(v - bitsandbytes_nf4[best]))
        best = code;
    return best;
  };
  auto rounded_up_threshold = [](float x) {
    for (unsigned i = 0; i < 15; ++i) {
      const float threshold = lowbit::detail::nf4_threshold(i);
      const double midpoint = (bitsandbytes_nf4[i] + bitsandbytes_nf4[i + 1]) / 2;
      if (x == threshold && static_cast<double>(threshold) > midpoint) return true;
    }
    return false;
  };

  std::vector<float> inputs;
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> in_range(-1.25f, 1.25f);
  for (int i = 0; i < 200000; ++i) inputs.push_back(in_range(rng));
  for (unsigned i = 0; i < 15; ++i) {
    float x = lowbit::detail::nf4_threshold(i);
    for (int step = 0; step < 8; ++step) x = std::nextafter(x, -2.0f);
    for (int step = 0; step < 16; ++step, x = std::nextafter(x, 2.0f)) inputs.push_back(x);
  }
  for (float x : {0.0f, -0.0f, 1.0f, -1.0f, 1e-30f, -1e-30f, 1e30f, -1e30f,
                  std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::denorm_min()})
    inputs.push_back(x);

  std::set<float> exceptions;
  for (float x : inputs) {
    INFO("x = " << x << " (bits 0x" << std::hex << std::bit_cast<std::uint32_t>(x) << ")");
    const unsigned code = nf4::encode_nearest(x).code;
    if (rounded_up_threshold(x)) {
      exceptions.insert(x);
      CHECK(code + 1 == reference(x));
      continue;
    }
    CHECK(code == reference(x));
  }
  CHECK(exceptions.size() == 4);
}

TEST_CASE("[format] nf4 refuses NaN", "[format]") {
  CHECK_THROWS_AS(nf4::from_float(std::numeric_limits<float>::quiet_NaN()), lowbit::invalid_value);
  CHECK(nf4::encode_nearest(std::numeric_limits<float>::quiet_NaN()).code == 0);  // as bitsandbytes
  CHECK(std::string(nf4::name()) == "nf4");
}

}  // namespace
