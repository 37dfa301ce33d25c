// libFuzzer harness: GGUF files. Opening validates the header, every metadata value and tensor
// info; then every metadata value is read through each typed accessor, every tensor lowbit
// decodes is converted to float and (block layouts) to a QuantizedMatrix, and the file is read as
// a Llama model and run one step, as `lowbit eval` would.
// lowbit::error is the expected answer to a bad file; anything else (another exception, a crash,
// a sanitizer report, a broken invariant) is a finding.
#include "fuzz_input.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/gguf_llama.hpp"
#include "lowbit/model/llama.hpp"
#include "lowbit/threads.hpp"

namespace {

using lowbit::fuzz::InputFile;
using lowbit::fuzz::require;

// Every accessor on every value: each either answers or throws lowbit::error.
void read_metadata(const lowbit::io::GgufFile& file) {
  for (const std::string& key : file.keys()) {
    const lowbit::io::GgufValue& value = file.value(key);
    (void)value.describe();
    for (std::size_t i = 0; i < value.size() && i < 4; ++i) (void)value.at(i).describe();
    try {
      (void)file.get_int(key);
    } catch (const lowbit::error&) {
    }
    try {
      (void)file.get_uint(key);
    } catch (const lowbit::error&) {
    }
    try {
      (void)file.get_double(key);
    } catch (const lowbit::error&) {
    }
    try {
      (void)file.get_bool(key);
    } catch (const lowbit::error&) {
    }
    try {
      (void)file.get_string(key);
    } catch (const lowbit::error&) {
    }
    try {
      (void)file.get_strings(key);
    } catch (const lowbit::error&) {
    }
    try {
      require(file.get_ints(key).size() == value.size());
    } catch (const lowbit::error&) {
    }
    try {
      require(file.get_doubles(key).size() == value.size());
    } catch (const lowbit::error&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  lowbit::set_threads(1);  // one thread: reproducible runs, and no thread start-up per input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static InputFile input;
  const std::filesystem::path& path = input.write(data, size);
  (void)lowbit::io::has_gguf_magic(path);
  try {
    const lowbit::io::GgufFile file(path);
    read_metadata(file);
    for (const lowbit::io::GgufTensorInfo& info : file.tensors()) {
      // Every tensor's bytes lie inside the file, and its shape accounts for them.
      require(info.data.size() <= size);
      require(info.data.size() == info.rows() * (info.cols() / info.type_info().block_weights) *
                                      info.type_info().block_bytes);
      try {
        require(file.to_float(info.name).size() == info.element_count());
      } catch (const lowbit::error&) {
      }
      if (file.is_block_layout(info)) {
        const lowbit::QuantizedMatrix matrix = file.to_quantized(info.name);
        require(matrix.rows() == info.rows() && matrix.cols() == info.cols());
      }
    }
    // As a model, the way `lowbit eval` loads a .gguf: config, tensors, one forward step.
    lowbit::io::GgufLlama model = lowbit::io::read_gguf_llama(file);
    lowbit::model::LlamaModel llama(model.config, model.tensors, std::move(model.block_weights));
    require(llama.forward(0, 0).size() == static_cast<std::size_t>(model.config.vocab_size));
  } catch (const lowbit::error&) {
  }
  return 0;
}
