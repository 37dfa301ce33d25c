// lowbit's ggml blocks for tests/python/check_ggml.py, which compares them with gguf-py.
//   ggml_blocks quantize TYPE matrix.bin      matrix.bin: uint64 rows, uint64 cols, float32 data
//   ggml_blocks dequantize TYPE blocks.bin    blocks.bin: uint64 rows, uint64 cols, the blocks
// TYPE is any name of lowbit::ggml_type_table in any case (q4_0, q4_1, q5_0, q5_1, q8_0, q2_k,
// q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs, f16, bf16; quantize only those with a quantizer).
// quantize writes the blocks (rows x bytes per row), then the dequantized float32 matrix;
// dequantize writes the float32 matrix. Both to stdout.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "lowbit/quant/ggml.hpp"

namespace {

/// A ggml type by its name in ggml_type_table, in any case ("q4_k" or "q4_K").
bool parse_type(const std::string& name, lowbit::GgmlType& type) {
  for (const lowbit::GgmlTypeTraits& row : lowbit::ggml_type_table) {
    const std::string row_name = row.name;
    if (name.size() == row_name.size() && std::equal(name.begin(), name.end(), row_name.begin(),
                                                     [](unsigned char a, unsigned char b) {
                                                       return std::tolower(a) == std::tolower(b);
                                                     })) {
      type = row.value;
      return true;
    }
  }
  return false;
}

bool write_all(const void* data, std::size_t bytes) {
  return std::fwrite(data, 1, bytes, stdout) == bytes;
}

}  // namespace

int main(int argc, char** argv) {
  lowbit::GgmlType type{};
  if (argc != 4 || !parse_type(argv[2], type)) {
    std::fprintf(stderr, "usage: %s quantize|dequantize TYPE FILE (TYPE: a ggml type name)\n",
                 argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  std::FILE* in = std::fopen(argv[3], "rb");
  if (in == nullptr) return 2;
  std::uint64_t shape[2] = {0, 0};
  if (std::fread(shape, sizeof shape, 1, in) != 1) return 2;
  const std::size_t rows = shape[0], cols = shape[1];
  lowbit::QuantizedMatrix q;
  try {
    if (mode == "quantize") {
      std::vector<float> w(rows * cols);
      if (std::fread(w.data(), sizeof(float), w.size(), in) != w.size()) return 2;
      q = lowbit::quantize_ggml(lowbit::MatrixView<const float>(w.data(), rows, cols), type);
      if (!write_all(q.block_bytes().data(), q.block_bytes().size())) return 1;
    } else if (mode == "dequantize") {
      q = lowbit::QuantizedMatrix(lowbit::Scheme::ggml_blocks(type), rows, cols);
      const auto bytes = q.block_bytes();
      if (std::fread(bytes.data(), 1, bytes.size(), in) != bytes.size()) return 2;
    } else {
      return 2;
    }
  } catch (const lowbit::error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  std::fclose(in);
  const std::vector<float> values = q.dequantize();
  return write_all(values.data(), values.size() * sizeof(float)) ? 0 : 1;
}
