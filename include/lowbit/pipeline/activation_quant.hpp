// Whole-model W8A8 methods, on the model's own linear layers: SmoothQuant (smoothing folded into
// the RMSNorms, then int8 weights and per-token int8 activations) and LLM.int8() (int8 with float
// outlier columns). The classifier and the embedding stay float, as in both papers' evaluations.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "lowbit/model/calibrate.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/model/llama.hpp"

namespace lowbit::pipeline {

struct SmoothedGroup {
  std::string norm;                  // the RMSNorm the smoothing was folded into
  std::vector<std::string> linears;  // the layers that read its output
  float min_scale = 0, max_scale = 0;
};

/// SmoothQuant's smoothing (smooth_lm for Llama): per block, the inputs of q/k/v (the attention
/// RMSNorm's output) and of w1/w3 (the FFN RMSNorm's output) are divided by s and the weights
/// that read them multiplied by s, s = smoothquant_scales(max|X|, weights, alpha), with max|X|
/// from the calibration windows run through the float model. The model computes the same
/// function afterwards (up to float rounding). The attention output (wo) and the FFN's w2 have
/// no norm to fold into and are left as they are, as in the reference.
std::vector<SmoothedGroup> smooth_model(model::LlamaModel& model, std::span<const int> calibration,
                                        const model::EvalOptions& windows, float alpha = 0.5f);

/// Every linear layer of the transformer blocks becomes W8A8: int8 weights per output channel and
/// activations quantized per token at run time (ActivationQuantization::int8_per_token).
void quantize_model_w8a8(model::LlamaModel& model);

/// Every linear layer of the transformer blocks becomes LLM.int8(): int8 weights per output
/// channel, activations per token in int8 except the input columns with |x| > threshold, which
/// are multiplied in float (ActivationQuantization::llm_int8).
void quantize_model_llm_int8(model::LlamaModel& model, float threshold = 6.0f);

}  // namespace lowbit::pipeline
