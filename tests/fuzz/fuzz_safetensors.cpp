// libFuzzer harness: the safetensors container (header JSON, dtypes, shapes, data offsets), every
// tensor's bytes converted to float, the Llama config in the metadata, and the format sniffing of
// `lowbit inspect`. lowbit::error is the expected answer to a bad file; anything else (another
// exception, a crash, a sanitizer report, a broken invariant) is a finding.
#include "fuzz_input.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/io/safetensors.hpp"

// libFuzzer's own mutator, for LLVMFuzzerCustomMutator below.
extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

namespace {

using lowbit::fuzz::InputFile;
using lowbit::fuzz::require;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lowbit::io;
  static InputFile input;
  const std::filesystem::path& path = input.write(data, size);
  try {
    const SafetensorsFile file(path);
    for (const std::string& name : file.names()) {
      require(file.contains(name));
      const TensorInfo& info = file.info(name);
      require(info.data.size() == info.element_count() * dtype_size(info.dtype));
      require(file.to_float(name).size() == info.element_count());
    }
    try {
      (void)file.info("\x01 not a tensor name");
      require(file.contains("\x01 not a tensor name"));
    } catch (const lowbit::io_error&) {
    }
    try {
      const LlamaConfig config = read_llama_config(file);
      (void)config.head_size();
      (void)config.kv_dim();
    } catch (const lowbit::error&) {
    }
  } catch (const lowbit::error&) {
  }
  try {
    // A single file is one of these (GGUF by its magic; "huggingface" needs a directory or a
    // config.json beside the file, which the in-memory input never has).
    const std::string format = detect_checkpoint_format(path);
    require(format == "safetensors" || format == "llama2c" || format == "gguf");
  } catch (const lowbit::error&) {
  }
  return 0;
}

// Structure-aware mutation. A safetensors file is an 8-byte header length, the JSON header, then
// the data. A byte-level insertion or deletion inside the header breaks that length (and so the
// file) nearly every time, and the numbers that size arithmetic overflows on (2^31 - 1, 2^32,
// 2^64 - 1, ...) are many mutations away from any seed's. So a third of the mutations replace one
// JSON value of the header, or of the JSON a metadata string holds (the quantization schemes, the
// model config), by such a number or another type; a third mutate the header's bytes; both then
// rewrite the length to fit. The last third mutate the raw bytes, the length prefix included.
namespace {

using nlohmann::json;

void collect_leaves(json& value, std::vector<json*>& leaves) {
  if (value.is_structured()) {
    for (json& child : value) collect_leaves(child, leaves);
  } else {
    leaves.push_back(&value);
  }
}

json replacement_value(const json& old, std::minstd_rand& rng) {
  // Small and degenerate values, the int32/uint32/int64/uint64 limits, other types.
  static const json boundary = json::parse(R"([0, 1, -1, 2, 3, 31, 32, 33, 255, 256, 2147483647,
      2147483648, 4294967295, 4294967296, 9223372036854775807, 18446744073709551615, 1e300,
      -1e300, 0.5, "", null, true, [], {}])");
  const unsigned shift = rng() % 64;
  switch (rng() % 3) {
    case 0:  // a power of two, or one less
      return (std::uint64_t{1} << shift) - rng() % 2;
    case 1:
      if (old.is_number_unsigned()) {
        const std::uint64_t v = old.get<std::uint64_t>();
        const std::uint64_t derived[] = {v + 1, v - 1, v << shift, (v << shift) - 1, ~v, v * 3};
        return derived[rng() % std::size(derived)];
      }
      [[fallthrough]];
    default:
      return boundary[rng() % boundary.size()];
  }
}

// The header mutated as JSON, or an empty string when it is not a JSON object. Half of the picks
// go to the JSON that metadata strings hold (schemes, shapes, the model config): most derived
// sizes come from there, and it is a small part of the header's values.
std::string mutate_header_json(const std::uint8_t* header, std::size_t size,
                               std::minstd_rand& rng) {
  json root = json::parse(header, header + size, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) return {};
  std::vector<json*> leaves;
  collect_leaves(root, leaves);
  if (leaves.empty()) return {};
  std::vector<std::pair<json*, json>> nested;  // a string leaf and the JSON it holds
  for (json* leaf : leaves) {
    if (!leaf->is_string()) continue;
    json value = json::parse(leaf->get<std::string>(), nullptr, /*allow_exceptions=*/false);
    if (value.is_structured()) nested.emplace_back(leaf, std::move(value));
  }
  if (!nested.empty() && rng() % 2 == 0) {
    auto& [leaf, value] = nested[rng() % nested.size()];
    std::vector<json*> inner;
    collect_leaves(value, inner);
    if (!inner.empty()) {
      json& target = *inner[rng() % inner.size()];
      target = replacement_value(target, rng);
    }
    *leaf = value.dump();
  } else {
    json& leaf = *leaves[rng() % leaves.size()];
    leaf = replacement_value(leaf, rng);
  }
  return root.dump();
}

}  // namespace

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size,
                                               std::size_t max_size, unsigned int seed) {
  std::minstd_rand rng(seed);
  const unsigned kind = rng() % 3;
  std::uint64_t header_size = 0;
  if (size >= 8)
    for (int i = 7; i >= 0; --i) header_size = header_size << 8 | data[i];
  if (kind == 0 || size < 8 || header_size == 0 || header_size > size - 8)
    return LLVMFuzzerMutate(data, size, max_size);
  const std::size_t data_size = size - 8 - static_cast<std::size_t>(header_size);
  if (max_size <= 8 + data_size) return LLVMFuzzerMutate(data, size, max_size);
  const std::size_t room = max_size - 8 - data_size;  // at least header_size: size <= max_size
  std::vector<std::uint8_t> header(data + 8, data + 8 + header_size);
  const std::vector<std::uint8_t> tensors(data + 8 + header_size, data + size);
  std::size_t new_size = 0;
  if (kind == 1) {
    const std::string mutated = mutate_header_json(header.data(), header.size(), rng);
    if (!mutated.empty() && mutated.size() <= room) {
      header.assign(mutated.begin(), mutated.end());
      new_size = header.size();
    }
  }
  if (new_size == 0) {
    header.resize(room);
    new_size = LLVMFuzzerMutate(header.data(), static_cast<std::size_t>(header_size), room);
  }
  for (int i = 0; i < 8; ++i)
    data[i] = static_cast<std::uint8_t>(std::uint64_t{new_size} >> (8 * i));
  std::memcpy(data + 8, header.data(), new_size);
  if (!tensors.empty()) std::memcpy(data + 8 + new_size, tensors.data(), tensors.size());
  return 8 + new_size + tensors.size();
}
