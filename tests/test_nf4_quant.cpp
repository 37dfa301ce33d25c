#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "lowbit/format/dynamic_map.hpp"
#include "lowbit/quant/nf4.hpp"

using lowbit::MatrixView;
using lowbit::Nf4Options;
using lowbit::QuantizedMatrix;
using lowbit::ScalarFormat;

namespace {

// bitsandbytes.functional.create_dynamic_map(signed=True) as float32 bits, re-derived in numpy
// float32 from bitsandbytes' code over torch's current (scalar) CPU linspace kernel.
constexpr std::uint32_t expected_dynamic_map[256] = {
    0xbf7e3333u, 0xbf7a999au, 0xbf770000u, 0xbf736666u, 0xbf6fcccdu, 0xbf6c3333u, 0xbf68999au,
    0xbf650000u, 0xbf616666u, 0xbf5dcccdu, 0xbf5a3333u, 0xbf56999au, 0xbf530000u, 0xbf4f6666u,
    0xbf4bcccdu, 0xbf483333u, 0xbf44999au, 0xbf410000u, 0xbf3d6667u, 0xbf39cccdu, 0xbf363333u,
    0xbf32999au, 0xbf2f0000u, 0xbf2b6667u, 0xbf27cccdu, 0xbf243333u, 0xbf20999au, 0xbf1d0000u,
    0xbf196667u, 0xbf15cccdu, 0xbf123333u, 0xbf0e999au, 0xbf0b0000u, 0xbf076666u, 0xbf03cccdu,
    0xbf003333u, 0xbef93332u, 0xbef20000u, 0xbeeaccccu, 0xbee39999u, 0xbedc6666u, 0xbed53332u,
    0xbece0000u, 0xbec6ccccu, 0xbebf999au, 0xbeb86666u, 0xbeb13332u, 0xbeaa0000u, 0xbea2ccccu,
    0xbe9b999au, 0xbe946666u, 0xbe8d3333u, 0xbe860000u, 0xbe7d9999u, 0xbe6f3333u, 0xbe60cccdu,
    0xbe526666u, 0xbe440000u, 0xbe359999u, 0xbe273333u, 0xbe18cccdu, 0xbe0a6666u, 0xbdf80000u,
    0xbddb3334u, 0xbdc9eb85u, 0xbdc428f7u, 0xbdbe6667u, 0xbdb8a3d7u, 0xbdb2e148u, 0xbdad1eb8u,
    0xbda75c2au, 0xbda1999au, 0xbd9bd70bu, 0xbd96147bu, 0xbd9051ebu, 0xbd8a8f5du, 0xbd84cccdu,
    0xbd7e147bu, 0xbd728f5du, 0xbd670a3du, 0xbd5b8520u, 0xbd500000u, 0xbd447ae1u, 0xbd38f5c2u,
    0xbd2d70a3u, 0xbd21eb85u, 0xbd166667u, 0xbd0ae147u, 0xbcfeb852u, 0xbce7ae13u, 0xbcd0a3d7u,
    0xbcb9999au, 0xbca28f5cu, 0xbc8b851fu, 0xbc68f5c3u, 0xbc3ae148u, 0xbc1f3b64u, 0xbc160418u,
    0xbc0ccccdu, 0xbc039581u, 0xbbf4bc6au, 0xbbe24dd3u, 0xbbcfdf3cu, 0xbbbd70a4u, 0xbbab020du,
    0xbb989374u, 0xbb8624ddu, 0xbb676c8au, 0xbb428f5cu, 0xbb1db22du, 0xbaf1a9fcu, 0xbaa7ef9du,
    0xba7765ffu, 0xba59e83eu, 0xba3c6a80u, 0xba1eecc1u, 0xba016f00u, 0xb9c7e282u, 0xb98ce705u,
    0xb923d70bu, 0xb8ba1f4bu, 0xb88aefb3u, 0xb8378034u, 0xb7b24206u, 0xb70205ffu, 0xb65a1a94u,
    0xb513a3b7u, 0x00000000u, 0x3513a3b7u, 0x365a1a94u, 0x370205ffu, 0x37b24206u, 0x38378034u,
    0x388aefb3u, 0x38ba1f4bu, 0x3923d70bu, 0x398ce705u, 0x39c7e282u, 0x3a016f00u, 0x3a1eecc1u,
    0x3a3c6a80u, 0x3a59e83eu, 0x3a7765ffu, 0x3aa7ef9du, 0x3af1a9fcu, 0x3b1db22du, 0x3b428f5cu,
    0x3b676c8au, 0x3b8624ddu, 0x3b989374u, 0x3bab020du, 0x3bbd70a4u, 0x3bcfdf3cu, 0x3be24dd3u,
    0x3bf4bc6au, 0x3c039581u, 0x3c0ccccdu, 0x3c160418u, 0x3c1f3b64u, 0x3c3ae148u, 0x3c68f5c3u,
    0x3c8b851fu, 0x3ca28f5cu, 0x3cb9999au, 0x3cd0a3d7u, 0x3ce7ae13u, 0x3cfeb852u, 0x3d0ae147u,
    0x3d166667u, 0x3d21eb85u, 0x3d2d70a3u, 0x3d38f5c2u, 0x3d447ae1u, 0x3d500000u, 0x3d5b8520u,
    0x3d670a3du, 0x3d728f5du, 0x3d7e147bu, 0x3d84cccdu, 0x3d8a8f5du, 0x3d9051ebu, 0x3d96147bu,
    0x3d9bd70bu, 0x3da1999au, 0x3da75c2au, 0x3dad1eb8u, 0x3db2e148u, 0x3db8a3d7u, 0x3dbe6667u,
    0x3dc428f7u, 0x3dc9eb85u, 0x3ddb3334u, 0x3df80000u, 0x3e0a6666u, 0x3e18cccdu, 0x3e273333u,
    0x3e359999u, 0x3e440000u, 0x3e526666u, 0x3e60cccdu, 0x3e6f3333u, 0x3e7d9999u, 0x3e860000u,
    0x3e8d3333u, 0x3e946666u, 0x3e9b999au, 0x3ea2ccccu, 0x3eaa0000u, 0x3eb13332u, 0x3eb86666u,
    0x3ebf999au, 0x3ec6ccccu, 0x3ece0000u, 0x3ed53332u, 0x3edc6666u, 0x3ee39999u, 0x3eeaccccu,
    0x3ef20000u, 0x3ef93332u, 0x3f003333u, 0x3f03cccdu, 0x3f076666u, 0x3f0b0000u, 0x3f0e999au,
    0x3f123333u, 0x3f15cccdu, 0x3f196667u, 0x3f1d0000u, 0x3f20999au, 0x3f243333u, 0x3f27cccdu,
    0x3f2b6667u, 0x3f2f0000u, 0x3f32999au, 0x3f363333u, 0x3f39cccdu, 0x3f3d6667u, 0x3f410000u,
    0x3f44999au, 0x3f483333u, 0x3f4bcccdu, 0x3f4f6666u, 0x3f530000u, 0x3f56999au, 0x3f5a3333u,
    0x3f5dcccdu, 0x3f616666u, 0x3f650000u, 0x3f68999au, 0x3f6c3333u, 0x3f6fcccdu, 0x3f736666u,
    0x3f770000u, 0x3f7a999au, 0x3f7e3333u, 0x3f800000u,
};

// Nearest table entry by distance (in double); random inputs never sit exactly on a threshold,
// where bitsandbytes' decisions are documented in nf4.hpp and dynamic_map.hpp.
std::uint8_t nearest_nf4(float y) {
  unsigned best = 0;
  for (unsigned c = 1; c < 16; ++c)
    if (std::abs(static_cast<double>(lowbit::nf4::values[c]) - y) <
        std::abs(static_cast<double>(lowbit::nf4::values[best]) - y))
      best = c;
  return static_cast<std::uint8_t>(best);
}

std::uint8_t nearest_dynamic(float y) {
  const auto& map = lowbit::dynamic_map_signed();
  unsigned best = 0;
  for (unsigned c = 1; c < 256; ++c)
    if (std::abs(static_cast<double>(map[c]) - y) < std::abs(static_cast<double>(map[best]) - y))
      best = c;
  return static_cast<std::uint8_t>(best);
}

std::vector<float> test_matrix(std::size_t rows, std::size_t cols, std::uint32_t seed, bool heavy) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> w(rows * cols);
  for (float& x : w) x = heavy ? 0.01f * t(rng) : normal(rng);
  return w;
}

// The reference: absmax per block, codes by brute force against x * (1 / absmax); double
// quantization written out from QLoRA's description.
void check_nf4(const std::vector<float>& w, std::size_t rows, std::size_t cols,
               const Nf4Options& options) {
  const QuantizedMatrix q =
      lowbit::quantize_nf4(MatrixView<const float>(w.data(), rows, cols), options);
  const std::size_t block = options.block;
  const std::size_t groups = (cols + block - 1) / block;
  std::vector<float> absmax(rows * groups), scales(rows * groups);
  std::vector<std::uint8_t> codes(rows * cols);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t g = 0; g < groups; ++g) {
      const std::size_t start = g * block, end = std::min(start + block, cols);
      float a = 0.0f;
      for (std::size_t c = start; c < end; ++c) a = std::max(a, std::abs(w[r * cols + c]));
      if (!options.double_quant) a = lowbit::round_scalar_up(options.scale_format, a);
      absmax[r * groups + g] = a;
      for (std::size_t c = start; c < end; ++c) {
        const float x = w[r * cols + c];
        const float inverse = 1.0f / a;
        codes[r * cols + c] =
            a == 0.0f ? 7 : nearest_nf4(std::isinf(inverse) ? x / a : x * inverse);
      }
    }
  scales = absmax;
  if (options.double_quant) {
    double sum = 0.0;
    for (float a : absmax) sum += a;
    const float offset = static_cast<float>(sum / static_cast<double>(absmax.size()));
    CHECK(q.scale_offset() == offset);
    const std::size_t dq = options.double_quant_block;
    for (std::size_t b = 0; b * dq < absmax.size(); ++b) {
      const std::size_t end = std::min((b + 1) * dq, absmax.size());
      float amax = 0.0f;
      for (std::size_t i = b * dq; i < end; ++i)
        amax = std::max(amax, std::abs(absmax[i] - offset));
      REQUIRE(q.scale_block_absmax()[b] == amax);
      for (std::size_t i = b * dq; i < end; ++i) {
        const std::uint8_t code =
            amax == 0.0f ? 127 : nearest_dynamic((absmax[i] - offset) * (1.0f / amax));
        INFO("scale " << i);
        REQUIRE(q.scale_bytes()[i] == code);
        scales[i] = lowbit::dynamic_map_signed()[code] * amax + offset;
      }
    }
  }
  for (std::size_t i = 0; i < scales.size(); ++i) {
    INFO("scale " << i);
    REQUIRE(std::bit_cast<std::uint32_t>(q.scale(i)) == std::bit_cast<std::uint32_t>(scales[i]));
  }
  const std::vector<float> back = q.dequantize();
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      INFO("row " << r << ", column " << c);
      REQUIRE(q.code(r, c) == codes[r * cols + c]);
      const float expected =
          lowbit::nf4::values[codes[r * cols + c]] * scales[r * groups + c / block];
      REQUIRE(std::bit_cast<std::uint32_t>(back[r * cols + c]) ==
              std::bit_cast<std::uint32_t>(expected));
    }
}

}  // namespace

TEST_CASE("the signed dynamic map equals bitsandbytes' create_dynamic_map bit for bit",
          "[format][dynamic_map]") {
  const auto& map = lowbit::dynamic_map_signed();
  for (std::size_t i = 0; i < 256; ++i) {
    INFO("code " << i);
    CHECK(std::bit_cast<std::uint32_t>(map[i]) == expected_dynamic_map[i]);
  }
  CHECK(map[127] == 0.0f);
  CHECK(map[255] == 1.0f);
  CHECK(std::is_sorted(map.begin(), map.end()));
}

TEST_CASE("dynamic_map_signed_encode is bitsandbytes' dQuantize", "[format][dynamic_map]") {
  const auto& map = lowbit::dynamic_map_signed();
  for (unsigned c = 0; c < 256; ++c) CHECK(lowbit::dynamic_map_signed_encode(map[c]) == c);
  CHECK(lowbit::dynamic_map_signed_encode(-1.0f) == 0);
  CHECK(lowbit::dynamic_map_signed_encode(1.5f) == 255);
  CHECK(lowbit::dynamic_map_signed_encode(0.0f) == 127);
  // Ties between neighbours: the search ends on the upper one for x > value, ...
  for (unsigned c = 1; c < 255; ++c) {
    const float mid = (map[c] + map[c + 1]) * 0.5f;
    const unsigned got = lowbit::dynamic_map_signed_encode(mid);
    CHECK((got == c || got == c + 1));
  }
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int i = 0; i < 20000; ++i) {
    const float x = uniform(rng) * (i % 2 == 0 ? 1.0f : 1e-4f);
    const auto code = lowbit::dynamic_map_signed_encode(x);
    const double here = std::abs(static_cast<double>(map[code]) - x);
    for (unsigned c = 0; c < 256; ++c) REQUIRE(here <= std::abs(static_cast<double>(map[c]) - x));
  }
}

TEST_CASE("NF4 matches the direct reference bit for bit", "[quant][nf4]") {
  for (bool heavy : {false, true}) {
    for (std::size_t cols : {std::size_t{256}, std::size_t{172}, std::size_t{64}}) {
      const std::size_t rows = 9;
      std::vector<float> w = test_matrix(rows, cols, static_cast<std::uint32_t>(cols), heavy);
      for (std::size_t c = 0; c < std::min<std::size_t>(cols, 64); ++c) w[c] = 0.0f;  // zero block
      w[cols + 3] = 1e4f;                                                             // an outlier
      for (std::size_t c = 0; c < 16; ++c)  // subnormals: 1 / absmax overflows
        w[2 * cols + c] = static_cast<float>(static_cast<int>(c) - 8) * 1e-40f;
      for (std::size_t c = 16; c < 64; ++c) w[2 * cols + c] = 0.0f;
      for (const ScalarFormat format : {ScalarFormat::f32, ScalarFormat::f16, ScalarFormat::bf16}) {
        for (std::size_t block : {std::size_t{64}, std::size_t{32}, std::size_t{50}}) {
          INFO("cols " << cols << " heavy " << heavy << " block " << block << " "
                       << lowbit::to_string(format));
          Nf4Options options;
          options.block = block;
          options.scale_format = format;
          check_nf4(w, rows, cols, options);
          if (format == ScalarFormat::f32) {
            options.double_quant = true;
            options.double_quant_block = 7;  // several double-quant blocks, a ragged last one
            check_nf4(w, rows, cols, options);
            options.double_quant_block = 256;
            check_nf4(w, rows, cols, options);
          }
        }
      }
    }
  }
}

TEST_CASE("NF4 schemes and bits per weight", "[quant][nf4]") {
  std::vector<float> w = test_matrix(64, 4096, 1, false);
  const MatrixView<const float> view(w.data(), 64, 4096);
  const QuantizedMatrix plain = lowbit::quantize_nf4(view);
  CHECK(plain.scheme().element == lowbit::ElementFormat::nf4);
  CHECK(plain.scheme().granularity == lowbit::Granularity::per_group(64));
  CHECK(plain.bits_per_weight() == Approx(4.5));
  Nf4Options options;
  options.double_quant = true;
  const QuantizedMatrix dq = lowbit::quantize_nf4(view, options);
  // 4096 scales: 16 blocks of 256 absmax values plus the mean.
  CHECK(dq.bits_per_weight() == Approx(4.0 + 8.0 / 64 + (16 * 32 + 32) / (64.0 * 4096)));
  CHECK(dq.bits_per_weight() == Approx(4.127).epsilon(1e-3));
  options.scale_format = ScalarFormat::f16;
  CHECK_THROWS_AS(lowbit::quantize_nf4(view, options), lowbit::invalid_argument);
  options.double_quant = false;
  options.scale_format = ScalarFormat::e8m0;
  CHECK_THROWS_AS(lowbit::quantize_nf4(view, options), lowbit::invalid_argument);
  // An all-zero matrix, with and without double quantization, comes back as zeros.
  std::vector<float> zeros(3 * 100, 0.0f);
  for (bool double_quant : {false, true}) {
    Nf4Options o;
    o.double_quant = double_quant;
    const QuantizedMatrix q =
        lowbit::quantize_nf4(MatrixView<const float>(zeros.data(), 3, 100), o);
    CHECK(q.dequantize() == zeros);
  }
}
