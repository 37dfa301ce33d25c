// llama.cpp's ggml tensor types that lowbit stores: their numbers (enum ggml_type, which GGUF's
// tensor infos use), names and block sizes as one traits table, ggml_type_table (ggml's
// type_traits habit). The block structs and their dequantization are in ggml_legacy.hpp (Q4_0,
// Q4_1, Q5_0, Q5_1, Q8_0, F16, BF16), ggml_kquants.hpp (Q2_K..Q6_K) and ggml_iquants.hpp (IQ4_NL,
// IQ4_XS); ggml_blocks.hpp includes them all and checks the table against the structs.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "lowbit/config.hpp"
#include "lowbit/detail/enum_table.hpp"
#include "lowbit/format/half.hpp"

namespace lowbit {

/// ggml's numbers for the tensor types lowbit stores (F32 = 0 is read as floats, not blocks).
enum class GgmlType : std::uint32_t {
  f16 = 1,
  q4_0 = 2,
  q4_1 = 3,
  q5_0 = 6,
  q5_1 = 7,
  q8_0 = 8,
  q2_k = 10,
  q3_k = 11,
  q4_k = 12,
  q5_k = 13,
  q6_k = 14,
  iq4_nl = 20,
  iq4_xs = 23,
  bf16 = 30,
};

/// One row of ggml's type_traits, for the types lowbit stores.
struct GgmlTypeTraits {
  GgmlType value;
  const char* name;           // ggml's type name: "q4_0", "q4_K", "iq4_nl", "f16", ...
  const char* layout_name;    // the name of lowbit's Scheme that stores these blocks, in files too
  std::size_t block_weights;  // weights in one block
  std::size_t block_bytes;    // bytes of one block (checked against the structs)
  bool signed_codes;          // the codes' element in lowbit's terms: int (true) or uint
  int code_bits;              // and their width (16: the raw bits of F16 and BF16)
  // The level form (ggml::to_levels): weights per (scale, bias) pair; 0 for F16 and BF16.
  std::size_t group_weights;
  bool iq4nl_levels;  // the levels index kvalues_iq4nl instead of being the values themselves
};

// clang-format off
inline constexpr GgmlTypeTraits ggml_type_table[] = {
    // value            name      layout          block bytes  signed bits group iq4nl
    {GgmlType::f16,    "f16",    "ggml_f16",    1,   2,   false, 16, 0,  false},
    {GgmlType::q4_0,   "q4_0",   "ggml_q4_0",   32,  18,  false, 4,  32, false},  // zero point 8
    {GgmlType::q4_1,   "q4_1",   "ggml_q4_1",   32,  20,  false, 4,  32, false},
    {GgmlType::q5_0,   "q5_0",   "ggml_q5_0",   32,  22,  false, 5,  32, false},  // zero point 16
    {GgmlType::q5_1,   "q5_1",   "ggml_q5_1",   32,  24,  false, 5,  32, false},
    {GgmlType::q8_0,   "q8_0",   "ggml_q8_0",   32,  34,  true,  8,  32, false},
    {GgmlType::q2_k,   "q2_K",   "ggml_q2_k",   256, 84,  false, 2,  16, false},
    {GgmlType::q3_k,   "q3_K",   "ggml_q3_k",   256, 110, false, 3,  16, false},  // zero point 4
    {GgmlType::q4_k,   "q4_K",   "ggml_q4_k",   256, 144, false, 4,  32, false},
    {GgmlType::q5_k,   "q5_K",   "ggml_q5_k",   256, 176, false, 5,  32, false},
    {GgmlType::q6_k,   "q6_K",   "ggml_q6_k",   256, 210, false, 6,  16, false},  // zero point 32
    {GgmlType::iq4_nl, "iq4_nl", "ggml_iq4_nl", 32,  18,  false, 4,  32, true},
    {GgmlType::iq4_xs, "iq4_xs", "ggml_iq4_xs", 256, 136, false, 4,  32, true},
    {GgmlType::bf16,   "bf16",   "ggml_bf16",   1,   2,   false, 16, 0,  false},
};
// clang-format on

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
              "ggml blocks hold their little-endian fields in host order");

inline constexpr std::size_t qk4_0 = 32;         // weights in a Q4_0, Q4_1, Q5_0, Q5_1 block
inline constexpr std::size_t qk8_0 = 32;         // weights in a Q8_0 block
inline constexpr std::size_t qk4_nl = 32;        // weights in an IQ4_NL block
inline constexpr std::size_t qk_k = 256;         // weights in a K-quant (and IQ4_XS) super-block
inline constexpr std::size_t k_scale_size = 12;  // bytes of packed 6-bit scales (Q3_K, Q4_K, Q5_K)

/// Weights in one block of `type`.
constexpr std::size_t block_weights(GgmlType type) noexcept {
  return ggml_traits(type).block_weights;
}
/// Bytes of one block of `type`.
constexpr std::size_t block_bytes(GgmlType type) noexcept { return ggml_traits(type).block_bytes; }

/// fp16 bits to float (exact).
LOWBIT_HOST_DEVICE constexpr float fp16_to_float(std::uint16_t bits) noexcept {
  return float16::from_bits(bits).to_float();
}

/// A block in the form the CPU kernels run (to_levels in each family's header): one unsigned level
/// u per weight and, per group of GgmlTypeTraits::group_weights weights, a scale s and a bias b,
/// so that the weight is s u + b (s kvalues_iq4nl[u] for the IQ4 types, whose bias is 0). It equals
/// the dequantized value up to the rounding of that order of operations; s and b themselves are
/// computed as ggml computes its sub-block scales and mins.
struct LevelGroup {
  float scale;
  float bias;
};

}  // namespace ggml
}  // namespace lowbit
