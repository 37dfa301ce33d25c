// Calibration through the forward pass: gather the statistics (or the samples) of linear-layer
// inputs on calibration text. The whole-model methods that use them are in pipeline/.
#pragma once

#include <map>
#include <span>
#include <string>
#include <vector>

#include "lowbit/algo/calibration.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/model/llama.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit::model {

/// Runs `model` over windows of `tokens` as the evaluation feeds them (BOS, then window - 1 text
/// tokens per window; without a BOS, the first `window` of each window's window + 1 tokens;
/// options.max_windows limits them) and returns the statistics of the inputs of the named linear
/// layers.
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

/// The names of the linear layers of the transformer blocks (every linear but the classifier):
/// what the whole-model methods calibrate and quantize.
std::vector<std::string> block_linear_names(const LlamaModel& model);

}  // namespace lowbit::model
