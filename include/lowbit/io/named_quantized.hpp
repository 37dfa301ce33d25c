// A quantized weight under its Llama name: what readers of quantized checkpoints (GGUF's ggml
// blocks) hand to the forward pass, beside the float NamedTensors of io/llama_config.hpp.
#pragma once

#include <string>

#include "lowbit/quantized_matrix.hpp"

namespace lowbit::io {

struct NamedQuantized {
  std::string name;
  QuantizedMatrix matrix;
};

}  // namespace lowbit::io
