// llama.cpp's ggml block formats Q4_0, Q8_0 and Q4_K, and its 16-bit float types F16 and BF16 (as
// "blocks" of one weight): the byte layout of one block (as ggml/src/ggml-common.h defines it) and
// its dequantization, bit for bit as ggml's dequantize_row_q4_0 / _q8_0 / _q4_K and its fp16 /
// bf16 conversions compute it. The quantizers are in lowbit/quant/ggml.hpp.
//
//   Q4_0  32 weights, 18 bytes: fp16 d, then 16 bytes of nibbles; byte j holds weight j in its low
//         nibble and weight j + 16 in its high nibble.   value = (q - 8) * d
//   Q8_0  32 weights, 34 bytes: fp16 d, then 32 int8.     value = q * d
//   Q4_K  256 weights (8 sub-blocks of 32), 144 bytes: fp16 d, fp16 dmin, 12 bytes of 6-bit
//         sub-block scales sc and mins m (scale_min_k4 below), then 128 bytes of nibbles: each
//         64 weights take 32 bytes, the low nibbles the first 32 weights, the high nibbles the
//         next 32.                                         value = (d * sc) * q - dmin * m
//   F16   1 weight, 2 bytes: IEEE binary16.   BF16  1 weight, 2 bytes: the top half of a float32.
//
// All arithmetic is float32, one rounding per operation, in ggml's order ((d * sc) * q - dmin * m
// is two products and a subtraction: lowbit is built as ISO C++, so the compiler does not contract
// it into a fused multiply-add). The fp16 fields are IEEE binary16 bits, little-endian as in GGUF
// files; the structs hold them in host order, which is the same on the little-endian hosts lowbit
// supports. Every struct has ggml's size and an alignment of 2, so a row of blocks may be read in
// place from a buffer that starts on an even address.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "lowbit/config.hpp"
#include "lowbit/detail/enum_table.hpp"
#include "lowbit/format/detail/minifloat_codec.hpp"
#include "lowbit/format/half.hpp"

namespace lowbit {

/// ggml's numbers for the tensor types lowbit stores (enum ggml_type; GGUF's tensor infos use
/// them).
enum class GgmlType : std::uint32_t { f16 = 1, q4_0 = 2, q8_0 = 8, q4_k = 12, bf16 = 30 };

/// One row of ggml's type_traits, for the types lowbit stores.
struct GgmlTypeTraits {
  GgmlType value;
  const char* name;           // ggml's type name: "q4_0", "q4_K", "f16", ...
  const char* layout_name;    // the name of lowbit's Scheme that stores these blocks, in files too
  std::size_t block_weights;  // weights in one block
  std::size_t block_bytes;    // bytes of one block (checked against the structs below)
  bool signed_codes;          // the codes' element in lowbit's terms: int (true) or uint
  int code_bits;              // and their width (16: the raw bits of F16 and BF16)
};

inline constexpr GgmlTypeTraits ggml_type_table[] = {
    {GgmlType::f16, "f16", "ggml_f16", 1, 2, false, 16},
    {GgmlType::q4_0, "q4_0", "ggml_q4_0", 32, 18, false, 4},  // uint4, zero point the constant 8
    {GgmlType::q8_0, "q8_0", "ggml_q8_0", 32, 34, true, 8},
    {GgmlType::q4_k, "q4_K", "ggml_q4_k", 256, 144, false, 4},
    {GgmlType::bf16, "bf16", "ggml_bf16", 1, 2, false, 16},
};

/// The traits of `type`, or nullptr for a number ggml_type_table does not hold.
constexpr const GgmlTypeTraits* find_ggml_traits(GgmlType type) noexcept {
  return detail::row_of(ggml_type_table, type);
}
/// The traits of a GgmlType that is one of the enumerators.
constexpr const GgmlTypeTraits& ggml_traits(GgmlType type) noexcept {
  for (const GgmlTypeTraits& row : ggml_type_table)
    if (row.value == type) return row;
  return ggml_type_table[0];
}

constexpr const char* to_string(GgmlType type) noexcept {
  return detail::name_of(ggml_type_table, type);
}

/// The type of a ggml type name ("q4_K"; case as ggml writes it), or nullopt.
constexpr std::optional<GgmlType> parse_ggml_type(std::string_view name) noexcept {
  return detail::value_named(ggml_type_table, name);
}

namespace ggml {

static_assert(std::endian::native == std::endian::little,
              "ggml blocks hold their little-endian fp16 fields in host order");

inline constexpr std::size_t qk4_0 = 32;         // weights in a Q4_0 block
inline constexpr std::size_t qk8_0 = 32;         // weights in a Q8_0 block
inline constexpr std::size_t qk_k = 256;         // weights in a K-quant super-block
inline constexpr std::size_t k_scale_size = 12;  // bytes of packed 6-bit scales and mins in Q4_K

struct block_q4_0 {
  std::uint16_t d;             // fp16 bits
  std::uint8_t qs[qk4_0 / 2];  // nibbles: weight j low, weight j + 16 high
};
static_assert(sizeof(block_q4_0) == 18 && alignof(block_q4_0) == 2);

struct block_q8_0 {
  std::uint16_t d;  // fp16 bits
  std::int8_t qs[qk8_0];
};
static_assert(sizeof(block_q8_0) == 34 && alignof(block_q8_0) == 2);

struct block_q4_k {
  std::uint16_t d;                    // fp16 bits: the scale of the sub-block scales
  std::uint16_t dmin;                 // fp16 bits: the scale of the sub-block mins
  std::uint8_t scales[k_scale_size];  // 8 scales and 8 mins of 6 bits (scale_min_k4)
  std::uint8_t qs[qk_k / 2];          // nibbles, 32 bytes per 64 weights
};
static_assert(sizeof(block_q4_k) == 144 && alignof(block_q4_k) == 2);

/// F16 and BF16: one weight each (ggml_fp16_t, ggml_bf16_t).
struct block_f16 {
  std::uint16_t bits;
};
struct block_bf16 {
  std::uint16_t bits;
};
static_assert(sizeof(block_f16) == 2 && sizeof(block_bf16) == 2);

/// The block type of each GgmlType and back.
template <GgmlType Type>
struct block_of;
template <>
struct block_of<GgmlType::q4_0> {
  using type = block_q4_0;
};
template <>
struct block_of<GgmlType::q8_0> {
  using type = block_q8_0;
};
template <>
struct block_of<GgmlType::q4_k> {
  using type = block_q4_k;
};
template <>
struct block_of<GgmlType::f16> {
  using type = block_f16;
};
template <>
struct block_of<GgmlType::bf16> {
  using type = block_bf16;
};
template <class Block>
struct type_of;
template <>
struct type_of<block_q4_0> {
  static constexpr GgmlType value = GgmlType::q4_0;
};
template <>
struct type_of<block_q8_0> {
  static constexpr GgmlType value = GgmlType::q8_0;
};
template <>
struct type_of<block_q4_k> {
  static constexpr GgmlType value = GgmlType::q4_k;
};
template <>
struct type_of<block_f16> {
  static constexpr GgmlType value = GgmlType::f16;
};
template <>
struct type_of<block_bf16> {
  static constexpr GgmlType value = GgmlType::bf16;
};

/// Weights in one block of `type`.
constexpr std::size_t block_weights(GgmlType type) noexcept {
  return ggml_traits(type).block_weights;
}
/// Bytes of one block of `type`.
constexpr std::size_t block_bytes(GgmlType type) noexcept { return ggml_traits(type).block_bytes; }

template <GgmlType Type>
constexpr bool table_matches_struct() noexcept {
  return block_bytes(Type) == sizeof(typename block_of<Type>::type);
}
static_assert(table_matches_struct<GgmlType::f16>() && table_matches_struct<GgmlType::q4_0>() &&
              table_matches_struct<GgmlType::q8_0>() && table_matches_struct<GgmlType::q4_k>() &&
              table_matches_struct<GgmlType::bf16>());

/// fp16 bits to float (exact).
LOWBIT_HOST_DEVICE constexpr float fp16_to_float(std::uint16_t bits) noexcept {
  return float16::from_bits(bits).to_float();
}

/// The 6-bit scale and min of sub-block j (0..7) of a Q4_K block (ggml's get_scale_min_k4):
/// sub-blocks 0..3 keep their scale in the low 6 bits of scales[j] and their min in the low 6
/// bits of scales[j + 4]; sub-blocks 4..7 keep the low 4 bits of scale and min in the low and high
/// nibble of scales[j + 4] and their top 2 bits in the top 2 bits of scales[j - 4] and scales[j].
struct ScaleMin {
  std::uint8_t scale;
  std::uint8_t min;
};
LOWBIT_HOST_DEVICE constexpr ScaleMin scale_min_k4(int j, const std::uint8_t* scales) noexcept {
  if (j < 4)
    return {static_cast<std::uint8_t>(scales[j] & 63),
            static_cast<std::uint8_t>(scales[j + 4] & 63)};
  return {static_cast<std::uint8_t>((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4)),
          static_cast<std::uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4))};
}

/// The 32 weights of a Q4_0 block, as dequantize_row_q4_0.
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_q4_0& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < qk4_0 / 2; ++j) {
    y[j] = static_cast<float>((b.qs[j] & 0x0F) - 8) * d;
    y[j + qk4_0 / 2] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
  }
}

/// The 32 weights of a Q8_0 block, as dequantize_row_q8_0.
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_q8_0& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < qk8_0; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
}

/// The 256 weights of a Q4_K block, as dequantize_row_q4_K.
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_q4_k& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  const float dmin = fp16_to_float(b.dmin);
  const std::uint8_t* q = b.qs;
  for (int j = 0; j < 8; j += 2, q += 32, y += 64) {
    const ScaleMin low = scale_min_k4(j, b.scales), high = scale_min_k4(j + 1, b.scales);
    const float d1 = d * static_cast<float>(low.scale), m1 = dmin * static_cast<float>(low.min);
    const float d2 = d * static_cast<float>(high.scale), m2 = dmin * static_cast<float>(high.min);
    for (std::size_t l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (std::size_t l = 0; l < 32; ++l) y[l + 32] = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

/// One F16 or BF16 weight (both exact in float32; an F16 NaN comes out quiet, as F16C converts it).
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_f16& b, float* y) noexcept {
  y[0] = fp16_to_float(b.bits);
}
LOWBIT_HOST_DEVICE inline void dequantize_block(const block_bf16& b, float* y) noexcept {
  // ggml_compute_bf16_to_fp32: the bits moved up, so a signaling NaN stays one.
  y[0] = lowbit::detail::codec::bits_to_float(static_cast<std::uint32_t>(b.bits) << 16);
}

}  // namespace ggml
}  // namespace lowbit
