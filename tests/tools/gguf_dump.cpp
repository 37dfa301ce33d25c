// Prints what lowbit's GGUF reader sees in a file, for tests/python/check_gguf.py to compare with
// gguf-py: the header, every metadata value (exactly: numbers as their file bits, strings as hex),
// every tensor info, and optionally tensors dequantized to float32.
//
// Usage: lowbit_gguf_dump FILE.gguf OUT.json [TENSOR OUT.f32]...
// OUT.json: {"version", "alignment", "data_offset",
//            "metadata": [{"key", "type", "value"}...],   (arrays: {"element_type", "items":
//            [...]}) "tensors": [{"name", "type", "type_name", "dims", "offset", "bytes",
//            "block_layout"}]}
// A scalar's "value" is {"bits": N} for numbers (the little-endian bits, zero-extended), a bool,
// or {"hex": "..."} for a string. Each OUT.f32 gets GgufFile::to_float(TENSOR), raw float32.
// Errors: exit status 1 and lowbit's message on stderr (the check reads it for hostile files).
#include <cstdint>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "lowbit/io/gguf.hpp"

using lowbit::io::GgufFile;
using lowbit::io::GgufValue;
using lowbit::io::GgufValueType;
using nlohmann::json;

namespace {

std::string hex(const std::string& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    const auto v = static_cast<unsigned char>(c);
    out += digits[v >> 4];
    out += digits[v & 15];
  }
  return out;
}

json scalar_json(const GgufValue& value) {
  switch (value.type()) {
    case GgufValueType::boolean:
      return *value.to_bool();
    case GgufValueType::string:
      return json{{"hex", hex(*value.to_string())}};
    case GgufValueType::float32:
      return json{{"bits", std::bit_cast<std::uint32_t>(static_cast<float>(*value.to_double()))}};
    case GgufValueType::float64:
      return json{{"bits", std::bit_cast<std::uint64_t>(*value.to_double())}};
    default:
      if (const auto v = value.to_int()) return json{{"int", *v}};
      return json{{"uint", *value.to_uint()}};
  }
}

json value_json(const GgufValue& value) {
  if (value.type() != GgufValueType::array) return scalar_json(value);
  json items = json::array();
  for (std::size_t i = 0; i < value.size(); ++i) items.push_back(value_json(value.at(i)));
  return json{{"element_type", lowbit::io::to_string(value.element_type())}, {"items", items}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc % 2 == 0) {
    std::cerr << "usage: lowbit_gguf_dump FILE.gguf OUT.json [TENSOR OUT.f32]...\n";
    return 2;
  }
  try {
    const GgufFile file(argv[1]);
    json out;
    out["version"] = file.version();
    out["alignment"] = file.alignment();
    out["data_offset"] = file.data_offset();
    json metadata = json::array();
    for (const std::string& key : file.keys()) {
      const GgufValue& value = file.value(key);
      metadata.push_back({{"key", key},
                          {"type", lowbit::io::to_string(value.type())},
                          {"value", value_json(value)}});
    }
    out["metadata"] = metadata;
    json tensors = json::array();
    for (const auto& info : file.tensors())
      tensors.push_back({{"name", info.name},
                         {"type", info.type},
                         {"type_name", info.type_info().name},
                         {"dims", info.dims},
                         {"offset", info.offset},
                         {"bytes", info.data.size()},
                         {"block_layout", file.is_block_layout(info)}});
    out["tensors"] = tensors;
    std::ofstream(argv[2]) << out.dump() << '\n';
    for (int i = 3; i + 1 < argc; i += 2) {
      const std::vector<float> values = file.to_float(argv[i]);
      std::ofstream(argv[i + 1], std::ios::binary)
          .write(reinterpret_cast<const char*>(values.data()),
                 static_cast<std::streamsize>(values.size() * sizeof(float)));
    }
  } catch (const std::exception& e) {
    std::cerr << e.what() << '\n';
    return 1;
  }
  return 0;
}
