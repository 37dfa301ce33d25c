// AWQ over a whole model (algo/awq.hpp does one layer group): block by block, the scales of each
// group of layers that read one input are searched on calibration inputs and folded into the
// operation that produces that input, the clip is searched per layer, and at the end every layer
// is quantized by round-to-nearest.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/algo/awq.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/model/llama.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit::pipeline {

/// One scaled group: the layers that read one input and where 1/s went.
struct ModelAwqGroup {
  std::string folded_into;           // an RMSNorm's weight, or the Linear whose rows were divided
  std::vector<std::string> linears;  // the layers whose columns were multiplied by s
  double ratio = 0;                  // the best a
  double error = 0;                  // the group's loss with those scales (algo/awq.hpp)
  double rtn_error = 0;              // the loss of plain RTN (s = 1)
  std::vector<float> scales;         // s, per input channel: the stored layers hold W diag(s)
};

struct ModelAwqReport {
  std::vector<ModelAwqGroup> groups;
  std::vector<std::string> clipped;  // the layers whose weights were clipped
};

/// AWQ of every linear layer of the transformer blocks (the classifier and embedding stay float),
/// as llm-awq and AutoAWQ run it on Llama. For each block, with the inputs of its layers gathered
/// on the calibration windows (the earlier blocks already scaled and clipped, still float):
///   1. q/k/v, scales folded into the attention RMSNorm;
///   2. wo, scales folded into the rows of wv (only when wv's outputs are wo's inputs one to one,
///      i.e. no grouped-query attention, as the references require);
///   3. w1/w3, scales folded into the FFN RMSNorm;
///   4. w2, scales folded into the rows of w3 (the SwiGLU product is linear in w3's output);
///   5. the clip search on every layer but q and k (the references skip them: their errors are
///      amplified by the attention softmax), on the scaled inputs;
/// then every block layer is quantized by RTN with `scheme`. The model computes the same function
/// after steps 1-4 (up to float rounding). `progress(done, total)` is called after each block.
ModelAwqReport quantize_model_awq(
    model::LlamaModel& model, std::span<const int> calibration, const model::EvalOptions& windows,
    const Scheme& scheme, const AwqOptions& options = {},
    const std::function<void(std::size_t, std::size_t)>& progress = {});

}  // namespace lowbit::pipeline
