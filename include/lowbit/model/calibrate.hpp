// Calibration through the forward pass: gather the statistics of linear-layer inputs on
// calibration text, and GPTQ over a whole model, block by block, each block calibrated on the
// inputs that the already-quantized blocks before it produce (as the GPTQ reference runs it).
#pragma once

#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "lowbit/algo/calibration.hpp"
#include "lowbit/algo/gptq.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/model/llama.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit::model {

/// Runs `model` over windows of `tokens` as the evaluation does (BOS, then window - 1 text tokens
/// per window; options.max_windows limits them) and returns the statistics of the inputs of the
/// named linear layers.
std::map<std::string, InputStatistics> collect_input_statistics(
    LlamaModel& model, std::span<const int> tokens, const EvalOptions& options,
    const std::vector<std::string>& names);

/// The inputs a linear layer saw, one row per token: [rows, cols], row-major.
struct InputSamples {
  std::vector<float> values;
  std::size_t rows = 0;
  std::size_t cols = 0;

  MatrixView<const float> view() const noexcept { return {values.data(), rows, cols}; }
  MatrixView<float> view() noexcept { return {values.data(), rows, cols}; }
};

/// Runs `model` over the windows as collect_input_statistics does and keeps every input of the
/// named linear layers (memory: tokens x width floats per layer; bound it with max_windows).
std::map<std::string, InputSamples> collect_input_samples(LlamaModel& model,
                                                          std::span<const int> tokens,
                                                          const EvalOptions& options,
                                                          const std::vector<std::string>& names);

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
    LlamaModel& model, std::span<const int> calibration, const EvalOptions& windows,
    const Scheme& scheme, const GptqOptions& options = {},
    const std::function<void(std::size_t, std::size_t)>& progress = {});

}  // namespace lowbit::model
