// libFuzzer harness: llama2.c checkpoints (header plausibility, sizes against the file, every
// tensor read), then the model built from them and one forward step, as `lowbit eval` runs a .bin.
// lowbit::error is the expected answer to a bad file; anything else (another exception, a crash,
// a sanitizer report, a broken invariant) is a finding.
#include "fuzz_input.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/model/llama.hpp"
#include "lowbit/threads.hpp"

namespace {

using lowbit::fuzz::InputFile;
using lowbit::fuzz::require;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  lowbit::set_threads(1);  // one thread: reproducible runs, and no thread start-up per input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lowbit::io;
  static InputFile input;
  const std::filesystem::path& path = input.write(data, size);
  try {
    (void)detect_checkpoint_format(path);
  } catch (const lowbit::error&) {
  }
  try {
    const Llama2cFile file(path);
    std::vector<NamedTensor> tensors;
    for (const Llama2cFile::TensorEntry& entry : file.tensors()) {
      tensors.push_back(file.read(entry.name));
      std::size_t count = 1;
      for (std::size_t d : entry.shape) count *= d;
      require(tensors.back().data.size() == count && tensors.back().shape == entry.shape);
    }
    const Llama2cCheckpoint checkpoint = read_llama2c(path);
    require(checkpoint.tensors.size() == tensors.size());
    lowbit::model::LlamaModel model(checkpoint.config, checkpoint.tensors);
    const auto logits = model.forward(Tokenizer::bos_id % checkpoint.config.vocab_size, 0);
    require(logits.size() == static_cast<std::size_t>(checkpoint.config.vocab_size));
  } catch (const lowbit::error&) {
  }
  return 0;
}
