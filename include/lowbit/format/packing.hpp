// Sub-byte codes packed into bytes and 32-bit words, in the orders that checkpoints use.
//
// Words are composed from bits arithmetically, never by reinterpreting memory, so the layout does
// not depend on the host's endianness; the bytes form of any order is the little-endian bytes of
// its words. Widths of 1 to 8 bits are accepted. get_code and set_code compile for CUDA devices;
// the span functions are host only and check their arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "lowbit/config.hpp"
#include "lowbit/detail/checked_arithmetic.hpp"
#include "lowbit/error.hpp"

namespace lowbit {

/// How the codes of a row are laid out in its packed words.
enum class PackOrder : std::uint8_t {
  /// Element i occupies bits [i*b, (i+1)*b) of a little-endian bit stream: in a byte the low bits
  /// hold element 0, in a 32-bit word element 0 sits in the least significant bits. Codes may
  /// straddle byte and word boundaries, which is how GPTQ packs 3-bit weights (32 codes in 3
  /// words).
  low_first,
  /// AutoAWQ's 4-bit order: in each 32-bit word of 8 nibbles, nibble slot s holds element
  /// order[s] of that word's 8 elements, order = {0, 2, 4, 6, 1, 3, 5, 7}. Only for 4 bits. A
  /// trailing partial word holds zeros in place of its missing elements.
  awq_interleaved,
};

/// Bytes needed for `count` codes of `bits` bits in low_first order: ceil(count*bits/8).
constexpr std::size_t packed_bytes(std::size_t count, int bits) noexcept {
  return (count * static_cast<std::size_t>(bits) + 7) / 8;
}

/// 32-bit words needed for `count` codes of `bits` bits: ceil(count*bits/32), in either order.
/// Unchecked, for loops over sizes already checked: count * bits must not overflow. A count that
/// comes from a file or a caller goes through checked_packed_words first (Scheme::storage does).
constexpr std::size_t packed_words(std::size_t count, int bits) noexcept {
  return (count * static_cast<std::size_t>(bits) + 31) / 32;
}

/// packed_words with the product checked: invalid (detail::CheckedSize) when count * bits
/// overflows, or for a width outside [0, 32].
constexpr detail::CheckedSize checked_packed_words(detail::CheckedSize count, int bits) noexcept {
  if (bits < 0 || bits > 32) return detail::CheckedSize::invalid();
  return ceil_div(count * static_cast<std::size_t>(bits), 32);
}

/// Bytes needed in a given order. awq_interleaved scatters a word's elements over all 4 of its
/// bytes, so it always takes whole words: 4 * packed_words.
constexpr std::size_t packed_bytes(std::size_t count, int bits, PackOrder order) noexcept {
  return order == PackOrder::awq_interleaved ? 4 * packed_words(count, bits)
                                             : packed_bytes(count, bits);
}

/// Same as packed_words(count, bits); for symmetry with the bytes form.
constexpr std::size_t packed_words(std::size_t count, int bits, PackOrder) noexcept {
  return packed_words(count, bits);
}

namespace detail {

// AWQ: element e of a word sits in nibble slot (e / 2) + 4 * (e % 2), the inverse of
// order = {0, 2, 4, 6, 1, 3, 5, 7}. Arithmetic rather than a table, so device code needs no memory.
LOWBIT_HOST_DEVICE constexpr unsigned awq_slot_of_element(unsigned element) noexcept {
  return (element >> 1) | ((element & 1u) << 2);
}

}  // namespace detail

/// Code `index` of a word-packed row. For awq_interleaved `bits` must be 4. Reads only the words
/// that hold the code.
LOWBIT_HOST_DEVICE constexpr std::uint8_t get_code(const std::uint32_t* words, std::size_t index,
                                                   int bits, PackOrder order) noexcept {
  if (order == PackOrder::awq_interleaved) {
    const unsigned shift = 4 * detail::awq_slot_of_element(static_cast<unsigned>(index % 8));
    return static_cast<std::uint8_t>((words[index / 8] >> shift) & 0xFu);
  }
  const std::uint32_t mask = (1u << bits) - 1u;
  const std::size_t first_bit = index * static_cast<std::size_t>(bits);
  const std::size_t word = first_bit / 32;
  const unsigned shift = static_cast<unsigned>(first_bit % 32);
  std::uint32_t value = words[word] >> shift;
  if (shift + static_cast<unsigned>(bits) > 32) value |= words[word + 1] << (32 - shift);
  return static_cast<std::uint8_t>(value & mask);
}

/// Stores `code` (its bits above `bits` are dropped) as code `index` of a word-packed row, leaving
/// its neighbours untouched. For awq_interleaved `bits` must be 4.
LOWBIT_HOST_DEVICE constexpr void set_code(std::uint32_t* words, std::size_t index, int bits,
                                           PackOrder order, std::uint8_t code) noexcept {
  if (order == PackOrder::awq_interleaved) {
    const unsigned shift = 4 * detail::awq_slot_of_element(static_cast<unsigned>(index % 8));
    std::uint32_t& word = words[index / 8];
    word = (word & ~(0xFu << shift)) | ((code & 0xFu) << shift);
    return;
  }
  const std::uint32_t mask = (1u << bits) - 1u;
  const std::uint32_t value = code & mask;
  const std::size_t first_bit = index * static_cast<std::size_t>(bits);
  const std::size_t word = first_bit / 32;
  const unsigned shift = static_cast<unsigned>(first_bit % 32);
  words[word] = (words[word] & ~(mask << shift)) | (value << shift);
  if (shift + static_cast<unsigned>(bits) > 32) {
    const unsigned spilled = 32 - shift;  // bits of the code that did fit in `word`
    words[word + 1] = (words[word + 1] & ~(mask >> spilled)) | (value >> spilled);
  }
}

namespace detail {

inline void check_width(int bits, PackOrder order, const char* function) {
  if (bits < 1 || bits > 8)
    throw invalid_argument(std::string(function) + ": bits must be in [1, 8], got " +
                           std::to_string(bits));
  if (order == PackOrder::awq_interleaved && bits != 4)
    throw invalid_argument(std::string(function) + ": awq_interleaved order needs 4 bits, got " +
                           std::to_string(bits));
  if (order != PackOrder::low_first && order != PackOrder::awq_interleaved)
    throw invalid_argument(std::string(function) + ": unknown PackOrder " +
                           std::to_string(static_cast<int>(order)));
}

inline void check_size(std::size_t actual, std::size_t expected, const char* function,
                       const char* what) {
  if (actual != expected)
    throw invalid_argument(std::string(function) + ": " + what + " holds " +
                           std::to_string(actual) + ", needs exactly " + std::to_string(expected));
}

// One OR over all codes first (cheap and vectorizable); the slow search for the culprit runs only
// when there is one.
inline void check_codes_fit(std::span<const std::uint8_t> codes, int bits, const char* function) {
  unsigned all = 0;
  for (const std::uint8_t code : codes) all |= code;
  if ((all >> bits) == 0) return;
  for (std::size_t i = 0; i < codes.size(); ++i)
    if ((codes[i] >> bits) != 0)
      throw invalid_argument(std::string(function) + ": code " + std::to_string(codes[i]) +
                             " at index " + std::to_string(i) + " does not fit in " +
                             std::to_string(bits) + " bits");
}

// The packers produce whole 32-bit words and hand each to `sink(word_index, word)`; the unpackers
// take them from `source(word_index)`. One implementation per order thus serves words and bytes.

// low_first when codes never straddle a word (Bits divides 32): unrolled per word.
template <int Bits, class Sink>
void pack_low_first_aligned(const std::uint8_t* codes, std::size_t count, Sink&& sink) {
  constexpr std::size_t per_word = 32 / Bits;
  const std::size_t full_words = count / per_word;
  for (std::size_t w = 0; w < full_words; ++w) {
    const std::uint8_t* group = codes + w * per_word;
    std::uint32_t word = 0;
    for (std::size_t j = 0; j < per_word; ++j) word |= std::uint32_t{group[j]} << (j * Bits);
    sink(w, word);
  }
  const std::size_t rest = count - full_words * per_word;
  if (rest == 0) return;
  std::uint32_t word = 0;
  for (std::size_t j = 0; j < rest; ++j)
    word |= std::uint32_t{codes[full_words * per_word + j]} << (j * Bits);
  sink(full_words, word);
}

// low_first for any width: a bit accumulator that emits a word whenever 32 bits are ready.
template <class Sink>
void pack_low_first_stream(const std::uint8_t* codes, std::size_t count, int bits, Sink&& sink) {
  std::uint64_t pending = 0;
  int pending_bits = 0;
  std::size_t w = 0;
  for (std::size_t i = 0; i < count; ++i) {
    pending |= std::uint64_t{codes[i]} << pending_bits;
    pending_bits += bits;
    if (pending_bits >= 32) {
      sink(w++, static_cast<std::uint32_t>(pending));
      pending >>= 32;
      pending_bits -= 32;
    }
  }
  if (pending_bits > 0) sink(w, static_cast<std::uint32_t>(pending));
}

template <class Sink>
void pack_awq(const std::uint8_t* codes, std::size_t count, Sink&& sink) {
  const std::size_t words = (count + 7) / 8;
  for (std::size_t w = 0; w < words; ++w) {
    const std::size_t in_word = count - w * 8 < 8 ? count - w * 8 : 8;
    std::uint32_t word = 0;
    for (unsigned e = 0; e < in_word; ++e)
      word |= std::uint32_t{codes[w * 8 + e]} << (4 * awq_slot_of_element(e));
    sink(w, word);
  }
}

template <class Sink>
void pack_any(std::span<const std::uint8_t> codes, int bits, PackOrder order, Sink&& sink) {
  const std::uint8_t* data = codes.data();
  const std::size_t count = codes.size();
  if (order == PackOrder::awq_interleaved) return pack_awq(data, count, sink);
  switch (bits) {
    case 1:
      return pack_low_first_aligned<1>(data, count, sink);
    case 2:
      return pack_low_first_aligned<2>(data, count, sink);
    case 4:
      return pack_low_first_aligned<4>(data, count, sink);
    case 8:
      return pack_low_first_aligned<8>(data, count, sink);
    default:
      return pack_low_first_stream(data, count, bits, sink);
  }
}

template <int Bits, class Source>
void unpack_low_first_aligned(Source&& source, std::uint8_t* codes, std::size_t count) {
  constexpr std::size_t per_word = 32 / Bits;
  constexpr std::uint32_t mask = (1u << Bits) - 1u;
  const std::size_t full_words = count / per_word;
  for (std::size_t w = 0; w < full_words; ++w) {
    const std::uint32_t word = source(w);
    std::uint8_t* group = codes + w * per_word;
    for (std::size_t j = 0; j < per_word; ++j)
      group[j] = static_cast<std::uint8_t>((word >> (j * Bits)) & mask);
  }
  const std::size_t rest = count - full_words * per_word;
  if (rest == 0) return;
  const std::uint32_t word = source(full_words);
  for (std::size_t j = 0; j < rest; ++j)
    codes[full_words * per_word + j] = static_cast<std::uint8_t>((word >> (j * Bits)) & mask);
}

// Fetches a word only when the pending bits run short, so it reads exactly packed_words words.
template <class Source>
void unpack_low_first_stream(Source&& source, std::uint8_t* codes, std::size_t count, int bits) {
  const std::uint64_t mask = (1u << bits) - 1u;
  std::uint64_t pending = 0;
  int pending_bits = 0;
  std::size_t w = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (pending_bits < bits) {
      pending |= std::uint64_t{source(w++)} << pending_bits;
      pending_bits += 32;
    }
    codes[i] = static_cast<std::uint8_t>(pending & mask);
    pending >>= bits;
    pending_bits -= bits;
  }
}

template <class Source>
void unpack_awq(Source&& source, std::uint8_t* codes, std::size_t count) {
  const std::size_t words = (count + 7) / 8;
  for (std::size_t w = 0; w < words; ++w) {
    const std::size_t in_word = count - w * 8 < 8 ? count - w * 8 : 8;
    const std::uint32_t word = source(w);
    for (unsigned e = 0; e < in_word; ++e)
      codes[w * 8 + e] = static_cast<std::uint8_t>((word >> (4 * awq_slot_of_element(e))) & 0xFu);
  }
}

template <class Source>
void unpack_any(Source&& source, int bits, PackOrder order, std::span<std::uint8_t> codes) {
  std::uint8_t* data = codes.data();
  const std::size_t count = codes.size();
  if (order == PackOrder::awq_interleaved) return unpack_awq(source, data, count);
  switch (bits) {
    case 1:
      return unpack_low_first_aligned<1>(source, data, count);
    case 2:
      return unpack_low_first_aligned<2>(source, data, count);
    case 4:
      return unpack_low_first_aligned<4>(source, data, count);
    case 8:
      return unpack_low_first_aligned<8>(source, data, count);
    default:
      return unpack_low_first_stream(source, data, count, bits);
  }
}

}  // namespace detail

/// Packs `codes` (each in its low `bits` bits) into exactly packed_bytes(codes.size(), bits, order)
/// bytes; unused trailing bits are zero. Throws lowbit::invalid_argument for a bad width or order,
/// a code with bits above `bits`, or an `out` of any other size.
inline void pack_bytes(std::span<const std::uint8_t> codes, int bits, std::span<std::uint8_t> out,
                       PackOrder order = PackOrder::low_first) {
  constexpr const char* function = "pack_bytes";
  detail::check_width(bits, order, function);
  detail::check_size(out.size(), packed_bytes(codes.size(), bits, order), function,
                     "the output (bytes)");
  detail::check_codes_fit(codes, bits, function);
  if (bits == 8 && order == PackOrder::low_first) {
    if (!codes.empty()) std::memcpy(out.data(), codes.data(), codes.size());
    return;
  }
  std::uint8_t* bytes = out.data();
  const std::size_t size = out.size();
  detail::pack_any(codes, bits, order, [bytes, size](std::size_t w, std::uint32_t word) {
    const std::size_t first = 4 * w;
    const std::size_t n = size - first < 4 ? size - first : 4;  // the last word may be cut short
    for (std::size_t k = 0; k < n; ++k)
      bytes[first + k] = static_cast<std::uint8_t>(word >> (8 * k));
  });
}

/// Unpacks codes.size() codes from exactly packed_bytes(codes.size(), bits, order) bytes. Throws
/// lowbit::invalid_argument for a bad width or order, or a `packed` of any other size.
inline void unpack_bytes(std::span<const std::uint8_t> packed, int bits,
                         std::span<std::uint8_t> codes, PackOrder order = PackOrder::low_first) {
  constexpr const char* function = "unpack_bytes";
  detail::check_width(bits, order, function);
  detail::check_size(packed.size(), packed_bytes(codes.size(), bits, order), function,
                     "the packed input (bytes)");
  if (bits == 8 && order == PackOrder::low_first) {
    if (!codes.empty()) std::memcpy(codes.data(), packed.data(), codes.size());
    return;
  }
  const std::uint8_t* bytes = packed.data();
  const std::size_t size = packed.size();
  detail::unpack_any(
      [bytes, size](std::size_t w) {
        const std::size_t first = 4 * w;
        const std::size_t n =
            size - first < 4 ? size - first : 4;  // the last word may be cut short
        std::uint32_t word = 0;
        for (std::size_t k = 0; k < n; ++k) word |= std::uint32_t{bytes[first + k]} << (8 * k);
        return word;
      },
      bits, order, codes);
}

/// Packs `codes` (each in its low `bits` bits) into exactly packed_words(codes.size(), bits) words;
/// unused trailing bits are zero. Throws lowbit::invalid_argument for a bad width or order, a code
/// with bits above `bits`, or an `out` of any other size.
inline void pack_words(std::span<const std::uint8_t> codes, int bits, std::span<std::uint32_t> out,
                       PackOrder order = PackOrder::low_first) {
  constexpr const char* function = "pack_words";
  detail::check_width(bits, order, function);
  detail::check_size(out.size(), packed_words(codes.size(), bits), function, "the output (words)");
  detail::check_codes_fit(codes, bits, function);
  std::uint32_t* words = out.data();
  detail::pack_any(codes, bits, order,
                   [words](std::size_t w, std::uint32_t word) { words[w] = word; });
}

/// Unpacks codes.size() codes from exactly packed_words(codes.size(), bits) words. Throws
/// lowbit::invalid_argument for a bad width or order, or a `packed` of any other size.
inline void unpack_words(std::span<const std::uint32_t> packed, int bits,
                         std::span<std::uint8_t> codes, PackOrder order = PackOrder::low_first) {
  constexpr const char* function = "unpack_words";
  detail::check_width(bits, order, function);
  detail::check_size(packed.size(), packed_words(codes.size(), bits), function,
                     "the packed input (words)");
  const std::uint32_t* words = packed.data();
  detail::unpack_any([words](std::size_t w) { return words[w]; }, bits, order, codes);
}

}  // namespace lowbit
