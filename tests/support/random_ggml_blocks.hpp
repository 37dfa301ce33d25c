// Matrices of llama.cpp blocks made of random bytes with finite fp16 scales: the test weights of
// the ggml types lowbit reads but does not quantize (every code, scale and min bit pattern occurs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <type_traits>

#include "lowbit/format/ggml_blocks.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit::test {

/// Random fp16 bits with a random sign, a mantissa and a biased exponent in
/// [min_exponent, max_exponent] (0: subnormals; at most 30, so never Inf or NaN).
inline std::uint16_t random_finite_fp16(std::mt19937& rng, unsigned min_exponent,
                                        unsigned max_exponent) {
  std::uniform_int_distribution<unsigned> exponent(min_exponent, max_exponent), mantissa(0, 1023),
      sign(0, 1);
  return static_cast<std::uint16_t>(sign(rng) << 15 | exponent(rng) << 10 | mantissa(rng));
}

/// A [rows, cols] matrix of `type`'s blocks, every byte random, then each fp16 field of each block
/// (d, and m or dmin where the block has one) a random finite value with a biased exponent in
/// [min_exponent, max_exponent] (the default: about 2^-12 .. 2^-5, weights of LLM-like sizes).
/// Not for F16 or BF16 (their blocks are the weights; any bits are fine there).
inline QuantizedMatrix random_ggml_blocks(GgmlType type, std::size_t rows, std::size_t cols,
                                          std::uint32_t seed, unsigned min_exponent = 3,
                                          unsigned max_exponent = 10) {
  QuantizedMatrix q(Scheme::ggml_blocks(type), rows, cols);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  for (std::uint8_t& b : q.block_bytes()) b = static_cast<std::uint8_t>(byte(rng));
  ggml::visit_block_type(type, [&]<class Block>(std::type_identity<Block>) {
    for (std::size_t r = 0; r < rows; ++r)
      for (Block& b : q.row_blocks<Block>(r)) {
        if constexpr (requires { b.d; }) b.d = random_finite_fp16(rng, min_exponent, max_exponent);
        if constexpr (requires { b.m; }) b.m = random_finite_fp16(rng, min_exponent, max_exponent);
        if constexpr (requires { b.dmin; })
          b.dmin = random_finite_fp16(rng, min_exponent, max_exponent);
      }
  });
  return q;
}

}  // namespace lowbit::test
