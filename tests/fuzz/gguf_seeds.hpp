// The GGUF seeds of fuzz_gguf: small files built field by field (tests/support/gguf_builder.hpp),
// one per shape of input the reader must handle: every metadata value type, arrays of arrays, a
// custom alignment, and tensors of every ggml type lowbit decodes (random block bytes: the
// dequantizers must take any bits).
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

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
