// GPTQ over a whole model, block by block, each block calibrated on the inputs that the
// already-quantized blocks before it produce (as the GPTQ reference runs it).
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/algo/gptq.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/model/llama.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit::pipeline {

struct ModelGptqLayer {
  std::string name;
  double damping = 0;
  int retries = 0;
  double proxy_loss = 0;
};

/// GPTQ of every linear layer of the transformer blocks (the classifier and embedding stay as
/// they are), block by block: block l's Hessians are gathered with blocks 0..l-1 already
/// quantized. `progress(done, total)` is called after each block.
std::vector<ModelGptqLayer> quantize_model_gptq(
    model::LlamaModel& model, std::span<const int> calibration, const model::EvalOptions& windows,
    const Scheme& scheme, const GptqOptions& options = {},
    const std::function<void(std::size_t, std::size_t)>& progress = {});

}  // namespace lowbit::pipeline
