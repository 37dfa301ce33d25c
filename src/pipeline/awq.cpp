// The body of pipeline/awq.hpp.
#include "lowbit/pipeline/awq.hpp"

#include <map>
#include <utility>

#include "lowbit/model/calibrate.hpp"
#include "lowbit/quant/linear.hpp"

namespace lowbit::pipeline {

using model::collect_input_samples;
using model::EvalOptions;
using model::InputSamples;
using model::Linear;
using model::LlamaModel;

namespace {

/// A float copy of a layer's weights, [rows, cols].
struct Weights {
  std::vector<float> values;
  std::size_t rows = 0, cols = 0;

  explicit Weights(const Linear& layer) : rows(layer.rows()), cols(layer.cols()) {
    const MatrixView<const float> w = layer.weights();
    values.assign(w.data, w.data + w.size());
  }
  MatrixView<const float> view() const noexcept { return {values.data(), rows, cols}; }
  MatrixView<float> view() noexcept { return {values.data(), rows, cols}; }
};

}  // namespace

ModelAwqReport quantize_model_awq(LlamaModel& model, std::span<const int> calibration,
                                  const EvalOptions& windows, const Scheme& scheme,
                                  const AwqOptions& options,
                                  const std::function<void(std::size_t, std::size_t)>& progress) {
  ModelAwqReport report;
  const auto blocks = static_cast<std::size_t>(model.config().n_layers);
  for (std::size_t block = 0; block < blocks; ++block) {
    const std::string p = "layers." + std::to_string(block) + ".";
    const std::string wq = p + "attention.wq.weight", wk = p + "attention.wk.weight",
                      wv = p + "attention.wv.weight", wo = p + "attention.wo.weight",
                      w1 = p + "feed_forward.w1.weight", w2 = p + "feed_forward.w2.weight",
                      w3 = p + "feed_forward.w3.weight";
    const std::vector<std::string> names = {wq, wk, wv, wo, w1, w2, w3};
    std::map<std::string, Weights> weights;
    for (const std::string& name : names) weights.emplace(name, Weights(model.linear_layer(name)));
    // Inputs: one copy per group (q/k/v share theirs, w1/w3 too), scaled along with the weights.
    std::map<std::string, InputSamples> inputs =
        collect_input_samples(model, calibration, windows, {wq, wo, w1, w2});

    // Searches s for the layers `group` reading inputs[input_of], multiplies their columns by s
    // and divides the samples by s; `fold(s)` divides the producer of the input by s.
    auto scale_group = [&](const std::vector<std::string>& group, const std::string& input_of,
                           const std::string& folded_into, const auto& fold) {
      std::vector<MatrixView<const float>> views;
      for (const std::string& name : group) views.push_back(weights.at(name).view());
      AwqOptions group_options = options;
      group_options.tensor_name = group.front();
      InputSamples& x = inputs.at(input_of);
      const AwqScaleResult found = awq_search_scales(views, x.view(), scheme, group_options);
      for (const std::string& name : group)
        scale_input_channels(weights.at(name).view(), found.scales);
      unscale_input_channels(x.view(), found.scales);
      fold(found.scales);
      report.groups.push_back(
          {folded_into, group, found.ratio, found.error, found.rtn_error, found.scales});
    };
    auto fold_into_norm = [&](const std::string& norm) {
      return [&model, norm](const std::vector<float>& s) {
        const std::span<float> weight = model.norm_weight(norm);
        unscale_input_channels(MatrixView<float>(weight.data(), 1, weight.size()), s);
      };
    };
    // Divides row j of a layer by s[j]: its output j, the next layer's input j, scales by 1/s_j.
    auto fold_into_rows = [&](const std::string& name) {
      return [&weights, name](const std::vector<float>& s) {
        Weights& w = weights.at(name);
        for (std::size_t r = 0; r < w.rows; ++r)
          for (std::size_t c = 0; c < w.cols; ++c) w.values[r * w.cols + c] /= s[r];
      };
    };

    scale_group({wq, wk, wv}, wq, p + "attention_norm.weight",
                fold_into_norm(p + "attention_norm.weight"));
    // wo's scales fold into wv's rows: not where wv adds a bias (it would need dividing too) or
    // where grouped-query attention makes wv narrower than wo's input.
    if (weights.at(wv).rows == weights.at(wo).cols && !model.config().qkv_bias)
      scale_group({wo}, wo, wv, fold_into_rows(wv));
    scale_group({w1, w3}, w1, p + "ffn_norm.weight", fold_into_norm(p + "ffn_norm.weight"));
    scale_group({w2}, w2, w3, fold_into_rows(w3));

    if (options.clip) {
      const std::map<std::string, std::string> input_of = {
          {wv, wq}, {wo, wo}, {w1, w1}, {w2, w2}, {w3, w1}};
      for (const auto& [name, input] : input_of) {
        AwqOptions layer_options = options;
        layer_options.tensor_name = name;
        Weights& w = weights.at(name);
        const std::vector<float> max_values =
            awq_search_clip(w.view(), inputs.at(input).view(), scheme, layer_options);
        apply_clip(w.view(), max_values, scheme);
        report.clipped.push_back(name);
      }
    }
    for (auto& [name, w] : weights)
      model.set_linear(name, Linear(std::move(w.values), w.rows, w.cols));
    if (progress) progress(block + 1, blocks);
  }

  // Quantization at the end: the later blocks were calibrated on the float (scaled, clipped)
  // earlier blocks, as the references do.
  for (std::size_t block = 0; block < blocks; ++block)
    for (const std::string& name : model.linear_names()) {
      if (name.rfind("layers." + std::to_string(block) + ".", 0) != 0) continue;
      LinearQuantizeOptions quantize_options;
      quantize_options.tensor_name = name;
      model.set_linear(
          name, quantize_linear(model.linear_layer(name).weights(), scheme, quantize_options));
    }
  return report;
}

}  // namespace lowbit::pipeline
