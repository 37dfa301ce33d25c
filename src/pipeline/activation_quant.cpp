// The body of pipeline/activation_quant.hpp.
#include "lowbit/pipeline/activation_quant.hpp"

#include <algorithm>
#include <map>
#include <utility>

#include "lowbit/algo/llm_int8.hpp"
#include "lowbit/algo/smoothquant.hpp"
#include "lowbit/model/calibrate.hpp"

namespace lowbit::pipeline {

using model::ActivationQuantization;
using model::block_linear_names;
using model::EvalOptions;
using model::Linear;
using model::LlamaModel;

std::vector<SmoothedGroup> smooth_model(LlamaModel& model, std::span<const int> calibration,
                                        const EvalOptions& windows, float alpha) {
  std::vector<SmoothedGroup> groups;
  for (int block = 0; block < model.config().n_layers; ++block) {
    const std::string p = "layers." + std::to_string(block) + ".";
    groups.push_back(
        {p + "attention_norm.weight",
         {p + "attention.wq.weight", p + "attention.wk.weight", p + "attention.wv.weight"}});
    groups.push_back(
        {p + "ffn_norm.weight", {p + "feed_forward.w1.weight", p + "feed_forward.w3.weight"}});
  }
  // One calibration pass over the float model: smoothing preserves the function, so the
  // statistics of a later group are the same whether or not earlier groups are smoothed.
  std::vector<std::string> first_linears;
  for (const SmoothedGroup& g : groups) first_linears.push_back(g.linears.front());
  const std::map<std::string, InputStatistics> statistics =
      collect_input_statistics(model, calibration, windows, first_linears);

  for (SmoothedGroup& group : groups) {
    std::vector<std::vector<float>> weights;
    std::vector<MatrixView<const float>> views;
    for (const std::string& name : group.linears) {
      const MatrixView<const float> w = model.linear_layer(name).weights();
      weights.emplace_back(w.data, w.data + w.size());
    }
    for (std::size_t i = 0; i < weights.size(); ++i) {
      const Linear& layer = model.linear_layer(group.linears[i]);
      views.emplace_back(weights[i].data(), layer.rows(), layer.cols());
    }
    const std::vector<float>& max_abs = statistics.at(group.linears.front()).max_abs();
    const std::vector<float> s = smoothquant_scales(max_abs, views, alpha);
    const std::span<float> norm = model.norm_weight(group.norm);
    unscale_input_channels(MatrixView<float>(norm.data(), 1, norm.size()), s);
    for (std::size_t i = 0; i < weights.size(); ++i) {
      const std::size_t rows = views[i].rows, cols = views[i].cols;
      scale_input_channels(MatrixView<float>(weights[i].data(), rows, cols), s);
      model.set_linear(group.linears[i], Linear(std::move(weights[i]), rows, cols));
    }
    const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
    group.min_scale = *lo;
    group.max_scale = *hi;
  }
  return groups;
}

namespace {

void quantize_int8(LlamaModel& model, ActivationQuantization mode, float threshold) {
  for (const std::string& name : block_linear_names(model)) {
    const Linear& layer = model.linear_layer(name);
    LinearQuantizeOptions options;
    options.tensor_name = name;
    model.set_linear(name,
                     Linear(quantize_w8a8_weights(layer.weights(), options), mode, threshold));
  }
}

}  // namespace

void quantize_model_w8a8(LlamaModel& model) {
  quantize_int8(model, ActivationQuantization::int8_per_token, 6.0f);
}

void quantize_model_llm_int8(LlamaModel& model, float threshold) {
  quantize_int8(model, ActivationQuantization::llm_int8, threshold);
}

}  // namespace lowbit::pipeline
