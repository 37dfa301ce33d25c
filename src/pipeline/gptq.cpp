// The body of pipeline/gptq.hpp.
#include "lowbit/pipeline/gptq.hpp"

#include <map>
#include <utility>

#include "lowbit/model/calibrate.hpp"

namespace lowbit::pipeline {

using model::LlamaModel;

std::vector<ModelGptqLayer> quantize_model_gptq(
    LlamaModel& model, std::span<const int> calibration, const model::EvalOptions& windows,
    const Scheme& scheme, const GptqOptions& options,
    const std::function<void(std::size_t, std::size_t)>& progress) {
  std::vector<std::string> all = model.linear_names();
  const auto blocks = static_cast<std::size_t>(model.config().n_layers);
  std::vector<ModelGptqLayer> report;
  for (std::size_t block = 0; block < blocks; ++block) {
    const std::string prefix = "layers." + std::to_string(block) + ".";
    std::vector<std::string> names;
    for (const std::string& name : all)
      if (name.compare(0, prefix.size(), prefix) == 0) names.push_back(name);
    const std::map<std::string, InputStatistics> statistics =
        model::collect_input_statistics(model, calibration, windows, names);
    for (const std::string& name : names) {
      GptqOptions layer_options = options;
      layer_options.tensor_name = name;
      GptqResult result = quantize_gptq(model.linear_layer(name).weights(),
                                        statistics.at(name).hessian(), scheme, layer_options);
      report.push_back({name, result.damping, result.retries, result.proxy_loss});
      model.set_linear(name, std::move(result.weights));
    }
    if (progress) progress(block + 1, blocks);
  }
  return report;
}

}  // namespace lowbit::pipeline
