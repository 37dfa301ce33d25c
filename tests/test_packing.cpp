#include <array>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/format/packing.hpp"

namespace {

using lowbit::PackOrder;

std::vector<std::uint8_t> random_codes(std::size_t count, int bits, std::uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_int_distribution<int> distribution(0, (1 << bits) - 1);
  std::vector<std::uint8_t> codes(count);
  for (auto& code : codes) code = static_cast<std::uint8_t>(distribution(generator));
  return codes;
}

// The independent reference for low_first: a plain little-endian stream of single bits.
std::vector<bool> bit_stream(const std::vector<std::uint8_t>& codes, int bits) {
  std::vector<bool> stream;
  for (const std::uint8_t code : codes)
    for (int b = 0; b < bits; ++b) stream.push_back(((code >> b) & 1) != 0);
  return stream;
}

std::vector<std::uint32_t> reference_words(const std::vector<std::uint8_t>& codes, int bits) {
  std::vector<bool> stream = bit_stream(codes, bits);
  std::vector<std::uint32_t> words((stream.size() + 31) / 32, 0);
  for (std::size_t i = 0; i < stream.size(); ++i)
    if (stream[i]) words[i / 32] |= std::uint32_t{1} << (i % 32);
  return words;
}

std::vector<std::uint8_t> reference_bytes(const std::vector<std::uint8_t>& codes, int bits) {
  std::vector<bool> stream = bit_stream(codes, bits);
  std::vector<std::uint8_t> bytes((stream.size() + 7) / 8, 0);
  for (std::size_t i = 0; i < stream.size(); ++i)
    if (stream[i]) bytes[i / 8] = static_cast<std::uint8_t>(bytes[i / 8] | (1u << (i % 8)));
  return bytes;
}

// The independent reference for AWQ, written as AutoAWQ's WQLinear_GEMM.from_linear packs a row:
//   for i in range(8): qweight[:, col] |= intweight[:, col * 8 + order_map[i]] << (4 * i)
// with missing trailing elements taken as zero.
std::vector<std::uint32_t> reference_awq_words(const std::vector<std::uint8_t>& codes) {
  constexpr std::array<std::size_t, 8> order_map = {0, 2, 4, 6, 1, 3, 5, 7};
  std::vector<std::uint32_t> words((codes.size() + 7) / 8, 0);
  for (std::size_t col = 0; col < words.size(); ++col)
    for (std::size_t i = 0; i < 8; ++i) {
      const std::size_t element = col * 8 + order_map[i];
      const std::uint32_t code = element < codes.size() ? codes[element] : 0;
      words[col] |= code << (4 * i);
    }
  return words;
}

std::vector<std::uint8_t> little_endian_bytes(const std::vector<std::uint32_t>& words) {
  std::vector<std::uint8_t> bytes;
  for (const std::uint32_t word : words)
    for (int k = 0; k < 4; ++k) bytes.push_back(static_cast<std::uint8_t>(word >> (8 * k)));
  return bytes;
}

std::vector<std::uint32_t> pack_words(const std::vector<std::uint8_t>& codes, int bits,
                                      PackOrder order = PackOrder::low_first) {
  std::vector<std::uint32_t> words(lowbit::packed_words(codes.size(), bits));
  lowbit::pack_words(codes, bits, words, order);
  return words;
}

std::vector<std::uint8_t> pack_bytes(const std::vector<std::uint8_t>& codes, int bits,
                                     PackOrder order = PackOrder::low_first) {
  std::vector<std::uint8_t> bytes(lowbit::packed_bytes(codes.size(), bits, order));
  lowbit::pack_bytes(codes, bits, bytes, order);
  return bytes;
}

constexpr std::array<std::size_t, 17> counts = {0,  1,  2,  3,  7,   8,   9,    15,  16,
                                                31, 32, 33, 63, 100, 257, 1000, 4099};

}  // namespace

TEST_CASE("packed sizes round up to whole bytes and words", "[packing]") {
  STATIC_REQUIRE(lowbit::packed_bytes(0, 4) == 0);
  STATIC_REQUIRE(lowbit::packed_bytes(1, 4) == 1);
  STATIC_REQUIRE(lowbit::packed_bytes(3, 4) == 2);
  STATIC_REQUIRE(lowbit::packed_bytes(8, 3) == 3);
  STATIC_REQUIRE(lowbit::packed_bytes(9, 3) == 4);
  STATIC_REQUIRE(lowbit::packed_words(0, 3) == 0);
  STATIC_REQUIRE(lowbit::packed_words(32, 3) == 3);
  STATIC_REQUIRE(lowbit::packed_words(33, 3) == 4);
  STATIC_REQUIRE(lowbit::packed_words(9, 4) == 2);
  STATIC_REQUIRE(lowbit::packed_words(5, 8) == 2);
  // AWQ's bytes form always takes whole words, since a word's elements spread over all its bytes.
  STATIC_REQUIRE(lowbit::packed_bytes(3, 4, PackOrder::awq_interleaved) == 4);
  STATIC_REQUIRE(lowbit::packed_bytes(8, 4, PackOrder::awq_interleaved) == 4);
  STATIC_REQUIRE(lowbit::packed_bytes(9, 4, PackOrder::awq_interleaved) == 8);
  STATIC_REQUIRE(lowbit::packed_bytes(3, 4, PackOrder::low_first) == 2);
  STATIC_REQUIRE(lowbit::packed_words(9, 4, PackOrder::awq_interleaved) == 2);
}

TEST_CASE("known answers: 4-bit low_first", "[packing]") {
  const std::vector<std::uint8_t> codes = {1, 2, 3, 4, 5, 6, 7, 8};
  CHECK(pack_words(codes, 4) == std::vector<std::uint32_t>{0x87654321u});
  CHECK(pack_bytes(codes, 4) == std::vector<std::uint8_t>{0x21, 0x43, 0x65, 0x87});
  // A ragged count: the unused high nibble of the last byte and word is zero.
  const std::vector<std::uint8_t> three = {0xA, 0xB, 0xC};
  CHECK(pack_words(three, 4) == std::vector<std::uint32_t>{0x00000CBAu});
  CHECK(pack_bytes(three, 4) == std::vector<std::uint8_t>{0xBA, 0x0C});
}

TEST_CASE("known answers: 2-bit and 8-bit low_first", "[packing]") {
  CHECK(pack_bytes({0, 1, 2, 3}, 2) == std::vector<std::uint8_t>{0xE4});
  CHECK(pack_words({0, 1, 2, 3, 3}, 2) == std::vector<std::uint32_t>{0x3E4u});
  const std::vector<std::uint8_t> bytes = {0x01, 0xFF, 0x80, 0x7F, 0x42};
  CHECK(pack_bytes(bytes, 8) == bytes);  // 8 bits low_first is a copy
  CHECK(pack_words(bytes, 8) == std::vector<std::uint32_t>{0x7F80FF01u, 0x42u});
}

TEST_CASE("known answers: AutoAWQ's interleaved 4-bit order", "[packing]") {
  const std::vector<std::uint8_t> codes = {0, 1, 2, 3, 4, 5, 6, 7};
  CHECK(pack_words(codes, 4, PackOrder::awq_interleaved) ==
        std::vector<std::uint32_t>{0x75316420u});
  CHECK(pack_bytes(codes, 4, PackOrder::awq_interleaved) ==
        std::vector<std::uint8_t>{0x20, 0x64, 0x31, 0x75});
  CHECK(reference_awq_words(codes) == std::vector<std::uint32_t>{0x75316420u});
  // Ragged: element 1 lands in slot 4, so 3 elements already reach the third byte.
  const std::vector<std::uint8_t> three = {0xA, 0xB, 0xC};
  CHECK(pack_words(three, 4, PackOrder::awq_interleaved) ==
        std::vector<std::uint32_t>{0x000B00CAu});
  CHECK(pack_bytes(three, 4, PackOrder::awq_interleaved) ==
        std::vector<std::uint8_t>{0xCA, 0x00, 0x0B, 0x00});
}

TEST_CASE("known answers: GPTQ's 3-bit packing, 32 values into 3 words", "[packing]") {
  std::vector<std::uint8_t> ramp(32);
  for (std::size_t i = 0; i < ramp.size(); ++i) ramp[i] = static_cast<std::uint8_t>(i % 8);
  std::vector<std::uint8_t> descending(32);
  for (std::size_t i = 0; i < descending.size(); ++i)
    descending[i] = static_cast<std::uint8_t>((7 * i + 3) % 8);

  // Constants computed independently (Python big integers).
  CHECK(pack_words(ramp, 3) == std::vector<std::uint32_t>{0x88FAC688u, 0xC688FAC6u, 0xFAC688FAu});
  CHECK(pack_words(descending, 3) ==
        std::vector<std::uint32_t>{0x53977053u, 0x70539770u, 0x97705397u});

  // GPTQ's own loop (quant.py, QuantLinear.pack, bits == 3), transcribed: codes 10 and 21 straddle
  // the word boundaries.
  const auto gptq_pack = [](const std::vector<std::uint8_t>& w) {
    std::vector<std::uint32_t> q(3, 0);
    std::size_t i = 0;
    for (std::size_t j = i; j < i + 10; ++j) q[0] |= std::uint32_t{w[j]} << (3 * (j - i));
    i += 10;
    q[0] |= std::uint32_t{w[i]} << 30;
    q[1] |= (std::uint32_t{w[i]} >> 2) & 1;
    i += 1;
    for (std::size_t j = i; j < i + 10; ++j) q[1] |= std::uint32_t{w[j]} << (3 * (j - i) + 1);
    i += 10;
    q[1] |= std::uint32_t{w[i]} << 31;
    q[2] |= (std::uint32_t{w[i]} >> 1) & 0x3;
    i += 1;
    for (std::size_t j = i; j < i + 10; ++j) q[2] |= std::uint32_t{w[j]} << (3 * (j - i) + 2);
    return q;
  };
  const std::vector<std::uint8_t> random = random_codes(32, 3, 7);
  const std::array<const std::vector<std::uint8_t>*, 3> all = {&ramp, &descending, &random};
  for (const std::vector<std::uint8_t>* codes : all) {
    CHECK(pack_words(*codes, 3) == gptq_pack(*codes));
    CHECK(pack_words(*codes, 3) == reference_words(*codes, 3));
  }
}

TEST_CASE("low_first round trips for every width and ragged counts", "[packing]") {
  for (int bits = 1; bits <= 8; ++bits) {
    for (const std::size_t count : counts) {
      INFO("bits " << bits << ", count " << count);
      const auto codes = random_codes(count, bits, static_cast<std::uint32_t>(count * 8 + bits));

      const auto words = pack_words(codes, bits);
      CHECK(words == reference_words(codes, bits));
      std::vector<std::uint8_t> from_words(count, 0xFF);
      lowbit::unpack_words(words, bits, from_words);
      CHECK(from_words == codes);

      const auto bytes = pack_bytes(codes, bits);
      CHECK(bytes == reference_bytes(codes, bits));
      std::vector<std::uint8_t> from_bytes(count, 0xFF);
      lowbit::unpack_bytes(bytes, bits, from_bytes);
      CHECK(from_bytes == codes);

      // The bytes form is the little-endian bytes of the words, cut to the bytes needed.
      auto word_bytes = little_endian_bytes(words);
      word_bytes.resize(bytes.size());
      CHECK(word_bytes == bytes);
    }
  }
}

TEST_CASE("awq_interleaved round trips, ragged counts padded with zeros", "[packing]") {
  for (const std::size_t count : counts) {
    INFO("count " << count);
    const auto codes = random_codes(count, 4, static_cast<std::uint32_t>(count + 99));

    const auto words = pack_words(codes, 4, PackOrder::awq_interleaved);
    CHECK(words == reference_awq_words(codes));
    std::vector<std::uint8_t> from_words(count, 0xFF);
    lowbit::unpack_words(words, 4, from_words, PackOrder::awq_interleaved);
    CHECK(from_words == codes);

    const auto bytes = pack_bytes(codes, 4, PackOrder::awq_interleaved);
    CHECK(bytes == little_endian_bytes(words));
    std::vector<std::uint8_t> from_bytes(count, 0xFF);
    lowbit::unpack_bytes(bytes, 4, from_bytes, PackOrder::awq_interleaved);
    CHECK(from_bytes == codes);
  }
}

TEST_CASE("get_code and set_code agree with pack and unpack", "[packing]") {
  struct Case {
    int bits;
    PackOrder order;
  };
  std::vector<Case> cases;
  for (int bits = 1; bits <= 8; ++bits) cases.push_back({bits, PackOrder::low_first});
  cases.push_back({4, PackOrder::awq_interleaved});

  for (const Case c : cases) {
    for (const std::size_t count :
         {std::size_t{1}, std::size_t{9}, std::size_t{33}, std::size_t{100}, std::size_t{257}}) {
      INFO("bits " << c.bits << ", awq " << (c.order == PackOrder::awq_interleaved) << ", count "
                   << count);
      const auto codes =
          random_codes(count, c.bits, static_cast<std::uint32_t>(count * 3 + c.bits));
      const auto packed = pack_words(codes, c.bits, c.order);

      bool all_read = true;
      for (std::size_t i = 0; i < count; ++i)
        all_read = all_read && lowbit::get_code(packed.data(), i, c.bits, c.order) == codes[i];
      CHECK(all_read);

      // Setting every code into zeroed words rebuilds exactly what pack_words wrote.
      std::vector<std::uint32_t> built(packed.size(), 0);
      for (std::size_t i = 0; i < count; ++i)
        lowbit::set_code(built.data(), i, c.bits, c.order, codes[i]);
      CHECK(built == packed);

      // Overwriting codes (in reverse, so straddling neighbours were already set) changes only
      // the codes written.
      auto expected = codes;
      auto rewritten = packed;
      const auto replacements = random_codes(count, c.bits, static_cast<std::uint32_t>(count + 5));
      for (std::size_t i = count; i-- > 0;) {
        if (i % 3 != 0) continue;
        expected[i] = replacements[i];
        lowbit::set_code(rewritten.data(), i, c.bits, c.order, replacements[i]);
      }
      std::vector<std::uint8_t> unpacked(count);
      lowbit::unpack_words(rewritten, c.bits, unpacked, c.order);
      CHECK(unpacked == expected);
      CHECK(rewritten == pack_words(expected, c.bits, c.order));
    }
  }
}

TEST_CASE("set_code drops bits above the width", "[packing]") {
  std::array<std::uint32_t, 2> words = {0, 0};
  lowbit::set_code(words.data(), 10, 3, PackOrder::low_first, 0xFF);  // straddles words 0 and 1
  CHECK(words[0] == 0xC0000000u);
  CHECK(words[1] == 0x1u);
  CHECK(lowbit::get_code(words.data(), 10, 3, PackOrder::low_first) == 7);
  CHECK(lowbit::get_code(words.data(), 9, 3, PackOrder::low_first) == 0);
  CHECK(lowbit::get_code(words.data(), 11, 3, PackOrder::low_first) == 0);
}

TEST_CASE("get_code and set_code are constexpr", "[packing]") {
  constexpr auto built = [] {
    std::array<std::uint32_t, 1> words{};
    for (std::size_t i = 0; i < 8; ++i)
      lowbit::set_code(words.data(), i, 4, PackOrder::awq_interleaved,
                       static_cast<std::uint8_t>(i));
    return words;
  }();
  STATIC_REQUIRE(built[0] == 0x75316420u);
  STATIC_REQUIRE(lowbit::get_code(built.data(), 1, 4, PackOrder::awq_interleaved) == 1);
  STATIC_REQUIRE(lowbit::get_code(built.data(), 1, 4, PackOrder::low_first) == 2);
}

TEST_CASE("packing rejects bad arguments", "[packing]") {
  const std::vector<std::uint8_t> codes = {1, 2, 3, 4, 5};
  std::vector<std::uint8_t> bytes3(3), bytes2(2), bytes4(4);
  std::vector<std::uint32_t> words1(1), words2(2);
  std::vector<std::uint8_t> out5(5);

  SECTION("output of the wrong size") {
    CHECK_THROWS_AS(lowbit::pack_bytes(codes, 4, bytes2), lowbit::invalid_argument);
    CHECK_THROWS_AS(lowbit::pack_bytes(codes, 4, bytes4), lowbit::invalid_argument);
    CHECK_THROWS_AS(lowbit::pack_words(codes, 4, words2), lowbit::invalid_argument);
    CHECK_THROWS_AS(lowbit::pack_words(codes, 8, words1), lowbit::invalid_argument);
    // AWQ needs a whole word of bytes even for 5 codes.
    CHECK_THROWS_AS(lowbit::pack_bytes(codes, 4, bytes3, PackOrder::awq_interleaved),
                    lowbit::invalid_argument);
    CHECK_NOTHROW(lowbit::pack_bytes(codes, 4, bytes4, PackOrder::awq_interleaved));
    CHECK_NOTHROW(lowbit::pack_bytes(codes, 4, bytes3));
    CHECK_NOTHROW(lowbit::pack_words(codes, 4, words1));
  }
  SECTION("packed input of the wrong size") {
    CHECK_THROWS_AS(lowbit::unpack_bytes(bytes2, 4, out5), lowbit::invalid_argument);
    CHECK_THROWS_AS(lowbit::unpack_bytes(bytes4, 4, out5), lowbit::invalid_argument);
    CHECK_THROWS_AS(lowbit::unpack_words(words2, 4, out5), lowbit::invalid_argument);
    CHECK_THROWS_AS(lowbit::unpack_bytes(bytes3, 4, out5, PackOrder::awq_interleaved),
                    lowbit::invalid_argument);
    CHECK_NOTHROW(lowbit::unpack_bytes(bytes3, 4, out5));
  }
  SECTION("a code with bits above the width") {
    const std::vector<std::uint8_t> too_wide = {1, 2, 16, 4, 5};
    CHECK_THROWS_AS(lowbit::pack_bytes(too_wide, 4, bytes3), lowbit::invalid_argument);
    CHECK_THROWS_AS(lowbit::pack_words(too_wide, 4, words1), lowbit::invalid_argument);
    CHECK_THROWS_AS(lowbit::pack_words(too_wide, 4, words1, PackOrder::awq_interleaved),
                    lowbit::invalid_argument);
    CHECK_THROWS_AS(lowbit::pack_words(codes, 2, words1), lowbit::invalid_argument);  // 4 and 5
    try {
      lowbit::pack_words(too_wide, 4, words1);
    } catch (const lowbit::invalid_argument& e) {
      CHECK(std::string(e.what()).find("index 2") != std::string::npos);
    }
  }
  SECTION("awq_interleaved with a width other than 4") {
    std::vector<std::uint32_t> words(lowbit::packed_words(codes.size(), 3));
    CHECK_THROWS_AS(lowbit::pack_words(codes, 3, words, PackOrder::awq_interleaved),
                    lowbit::invalid_argument);
    CHECK_THROWS_AS(lowbit::unpack_words(words, 3, out5, PackOrder::awq_interleaved),
                    lowbit::invalid_argument);
    std::vector<std::uint8_t> bytes(lowbit::packed_bytes(codes.size(), 8));
    CHECK_THROWS_AS(lowbit::pack_bytes(codes, 8, bytes, PackOrder::awq_interleaved),
                    lowbit::invalid_argument);
  }
  SECTION("widths outside [1, 8] and unknown orders") {
    std::vector<std::uint8_t> none;
    std::vector<std::uint32_t> no_words;
    CHECK_THROWS_AS(lowbit::pack_bytes(none, 0, none), lowbit::invalid_argument);
    CHECK_THROWS_AS(lowbit::pack_words(none, 9, no_words), lowbit::invalid_argument);
    CHECK_THROWS_AS(lowbit::unpack_bytes(none, -1, none), lowbit::invalid_argument);
    CHECK_THROWS_AS(lowbit::pack_words(none, 4, no_words, static_cast<PackOrder>(7)),
                    lowbit::invalid_argument);
  }
}
