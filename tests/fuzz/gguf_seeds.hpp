// The GGUF seeds of fuzz_gguf: small files built field by field (tests/support/gguf_builder.hpp),
// one per shape of input the reader must handle: every metadata value type, arrays of arrays, a
// custom alignment, tensors of every ggml type lowbit decodes (random block bytes: the
// dequantizers must take any bits), and two tiny Llama models (F32, Q8_0).
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../support/gguf_builder.hpp"
#include "lowbit/format/ggml_blocks.hpp"

namespace lowbit::fuzz {

inline void write_gguf_seeds(const std::filesystem::path& dir, std::mt19937& rng) {
  using test::ByteWriter;
  using test::GgufBuilder;
  auto save = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir / name, std::ios::binary) << bytes;
  };

  // Metadata only: every value type, arrays of numbers, strings and arrays.
  GgufBuilder values;
  values.key("u8", GgufBuilder::uint8, ByteWriter().u8(7))
      .key("i8", GgufBuilder::int8, ByteWriter().u8(0xf0))
      .key_u32("u32", 123456)
      .key("i32", GgufBuilder::int32, ByteWriter().u32(0xfffffffeu))
      .key_f32("f32", 1e-5f)
      .key("bool", GgufBuilder::boolean, ByteWriter().u8(1))
      .key("u64", GgufBuilder::uint64, ByteWriter().u64(1ull << 40))
      .key("i64", GgufBuilder::int64, ByteWriter().u64(~0ull))
      .key("f64", GgufBuilder::float64, ByteWriter().raw("\0\0\0\0\0\0\xf0\x3f", 8))
      .key_string("general.architecture", "llama")
      .key_strings("tokenizer.ggml.tokens", {"<s>", "</s>", "a", "b", "ab", "\xc4\xa0"})
      .key("tokenizer.ggml.scores", GgufBuilder::array,
           ByteWriter().u32(GgufBuilder::float32).u64(2).f32(0.5f).f32(-1.0f))
      .key("nested", GgufBuilder::array,
           ByteWriter()
               .u32(GgufBuilder::array)
               .u64(2)
               .u32(GgufBuilder::int32)
               .u64(1)
               .u32(5)
               .u32(GgufBuilder::string)
               .u64(1)
               .str("x"));
  save("metadata.gguf", values.build());

  // Tensors: one of every block type lowbit stores, two rows of one block each, plus F32.
  GgufBuilder tensors;
  tensors.key_u32("general.alignment", 32);
  std::string data;
  auto add_tensor = [&](const std::string& name, std::uint32_t type, std::size_t row_weights,
                        std::size_t row_bytes) {
    tensors.tensor(name, {row_weights, 2}, type, data.size());
    for (std::size_t i = 0; i < 2 * row_bytes; ++i) data += static_cast<char>(rng() & 0xff);
    data.resize((data.size() + 31) / 32 * 32, '\0');
  };
  add_tensor("f32", 0, 4, 16);
  for (const GgmlTypeTraits& traits : ggml_type_table)
    add_tensor(traits.name, static_cast<std::uint32_t>(traits.value), traits.block_weights,
               traits.block_bytes);
  tensors.data(data);
  save("tensors.gguf", tensors.build());

  // Tiny Llama models (dim 32, two heads of 16, one KV head, FFN 32, one block, vocabulary 16),
  // as read_gguf_llama reads them: F32 weights, and the linear weights in Q8_0 blocks.
  for (const bool q8_0 : {false, true}) {
    GgufBuilder model;
    model.key_string("general.architecture", "llama")
        .key_u32("llama.embedding_length", 32)
        .key_u32("llama.feed_forward_length", 32)
        .key_u32("llama.block_count", 1)
        .key_u32("llama.attention.head_count", 2)
        .key_u32("llama.attention.head_count_kv", 1)
        .key_u32("llama.context_length", 64)
        .key_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
        .key_f32("llama.rope.freq_base", 10000.0f);
    std::string bytes;
    std::normal_distribution<float> normal(0.0f, 0.2f);
    auto add = [&](const std::string& name, std::uint64_t cols, std::uint64_t rows, bool linear) {
      const bool blocks = q8_0 && linear;
      model.tensor(
          name,
          rows > 1 ? std::vector<std::uint64_t>{cols, rows} : std::vector<std::uint64_t>{cols},
          blocks ? 8u : 0u, bytes.size());
      for (std::uint64_t r = 0; r < rows; ++r) {
        if (!blocks) {
          for (std::uint64_t c = 0; c < cols; ++c) {
            const float v = linear ? normal(rng) : 1.0f;
            bytes.append(reinterpret_cast<const char*>(&v), 4);
          }
          continue;
        }
        for (std::uint64_t b = 0; b < cols / 32; ++b) {
          const std::uint16_t scale = 0x2000;  // fp16 2^-7
          bytes.append(reinterpret_cast<const char*>(&scale), 2);
          for (int i = 0; i < 32; ++i) bytes += static_cast<char>(rng() & 0xff);
        }
      }
      bytes.resize((bytes.size() + 31) / 32 * 32, '\0');
    };
    add("token_embd.weight", 32, 16, true);
    add("output_norm.weight", 32, 1, false);
    add("blk.0.attn_norm.weight", 32, 1, false);
    add("blk.0.attn_q.weight", 32, 32, true);
    add("blk.0.attn_k.weight", 32, 16, true);
    add("blk.0.attn_v.weight", 32, 16, true);
    add("blk.0.attn_output.weight", 32, 32, true);
    add("blk.0.ffn_norm.weight", 32, 1, false);
    add("blk.0.ffn_gate.weight", 32, 32, true);
    add("blk.0.ffn_down.weight", 32, 32, true);
    add("blk.0.ffn_up.weight", 32, 32, true);
    model.data(bytes);
    save(q8_0 ? "llama-q8_0.gguf" : "llama-f32.gguf", model.build());
  }

  // A custom alignment, version 2.
  GgufBuilder aligned;
  aligned.version = 2;
  aligned.alignment = 64;
  aligned.key_u32("general.alignment", 64);
  aligned.tensor("a", {8}, 0, 0).tensor("b", {8}, 0, 64);
  aligned.data(std::string(96, '\x3f'));
  save("aligned-v2.gguf", aligned.build());
}

}  // namespace lowbit::fuzz
