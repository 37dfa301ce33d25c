// llama.cpp's ggml block formats, the header the rest of lowbit includes: the type table
// (ggml_types.hpp), the block structs with their dequantization bit for bit as ggml's
// dequantize_row_* and their level form (ggml_legacy.hpp: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, F16, BF16;
// ggml_kquants.hpp: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K; ggml_iquants.hpp: IQ4_NL, IQ4_XS), the mapping
// between GgmlType and block struct both ways, checked against the table, and visit_block_type, the
// one switch over the types. The quantizers are in lowbit/quant/ggml.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <type_traits>
#include <utility>

#include "lowbit/error.hpp"
#include "lowbit/format/ggml_iquants.hpp"
#include "lowbit/format/ggml_kquants.hpp"
#include "lowbit/format/ggml_legacy.hpp"
#include "lowbit/format/ggml_types.hpp"

namespace lowbit::ggml {

/// The block type of each GgmlType (block_of<T>::type) and back (type_of<Block>::value).
template <GgmlType Type>
struct block_of;
template <class Block>
struct type_of;

#define LOWBIT_GGML_BLOCK(TYPE, BLOCK)                \
  template <>                                         \
  struct block_of<GgmlType::TYPE> {                   \
    using type = BLOCK;                               \
  };                                                  \
  template <>                                         \
  struct type_of<BLOCK> {                             \
    static constexpr GgmlType value = GgmlType::TYPE; \
  };
LOWBIT_GGML_BLOCK(f16, block_f16)
LOWBIT_GGML_BLOCK(q4_0, block_q4_0)
LOWBIT_GGML_BLOCK(q4_1, block_q4_1)
LOWBIT_GGML_BLOCK(q5_0, block_q5_0)
LOWBIT_GGML_BLOCK(q5_1, block_q5_1)
LOWBIT_GGML_BLOCK(q8_0, block_q8_0)
LOWBIT_GGML_BLOCK(q2_k, block_q2_k)
LOWBIT_GGML_BLOCK(q3_k, block_q3_k)
LOWBIT_GGML_BLOCK(q4_k, block_q4_k)
LOWBIT_GGML_BLOCK(q5_k, block_q5_k)
LOWBIT_GGML_BLOCK(q6_k, block_q6_k)
LOWBIT_GGML_BLOCK(iq4_nl, block_iq4_nl)
LOWBIT_GGML_BLOCK(iq4_xs, block_iq4_xs)
LOWBIT_GGML_BLOCK(bf16, block_bf16)
#undef LOWBIT_GGML_BLOCK

/// Calls f(std::type_identity<Block>{}) with the block struct of `type` and returns its result.
/// Throws invalid_argument for a number that is not a GgmlType (Scheme::validate refuses those
/// before any matrix holds them).
template <class F>
decltype(auto) visit_block_type(GgmlType type, F&& f) {
  switch (type) {
    case GgmlType::f16:
      return f(std::type_identity<block_f16>{});
    case GgmlType::q4_0:
      return f(std::type_identity<block_q4_0>{});
    case GgmlType::q4_1:
      return f(std::type_identity<block_q4_1>{});
    case GgmlType::q5_0:
      return f(std::type_identity<block_q5_0>{});
    case GgmlType::q5_1:
      return f(std::type_identity<block_q5_1>{});
    case GgmlType::q8_0:
      return f(std::type_identity<block_q8_0>{});
    case GgmlType::q2_k:
      return f(std::type_identity<block_q2_k>{});
    case GgmlType::q3_k:
      return f(std::type_identity<block_q3_k>{});
    case GgmlType::q4_k:
      return f(std::type_identity<block_q4_k>{});
    case GgmlType::q5_k:
      return f(std::type_identity<block_q5_k>{});
    case GgmlType::q6_k:
      return f(std::type_identity<block_q6_k>{});
    case GgmlType::iq4_nl:
      return f(std::type_identity<block_iq4_nl>{});
    case GgmlType::iq4_xs:
      return f(std::type_identity<block_iq4_xs>{});
    case GgmlType::bf16:
      return f(std::type_identity<block_bf16>{});
  }
  throw invalid_argument("ggml type " + std::to_string(static_cast<std::uint32_t>(type)) +
                         " is not one lowbit stores");
}

/// Whether every row of ggml_type_table has a block struct of its size, and back.
template <std::size_t... I>
constexpr bool table_matches_structs(std::index_sequence<I...>) noexcept {
  return ((sizeof(typename block_of<ggml_type_table[I].value>::type) ==
               ggml_type_table[I].block_bytes &&
           type_of<typename block_of<ggml_type_table[I].value>::type>::value ==
               ggml_type_table[I].value) &&
          ...);
}
static_assert(table_matches_structs(std::make_index_sequence<std::size(ggml_type_table)>{}));

}  // namespace lowbit::ggml
