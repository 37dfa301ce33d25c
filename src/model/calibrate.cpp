#include "lowbit/model/calibrate.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/error.hpp"

namespace lowbit::model {
namespace {

// Removes the observer however the calibration run ends.
class ObserverScope {
 public:
  ObserverScope(LlamaModel& model, LlamaModel::InputObserver observer) : model_(model) {
    model_.set_input_observer(std::move(observer));
  }
  ~ObserverScope() { model_.set_input_observer({}); }
  ObserverScope(const ObserverScope&) = delete;
  ObserverScope& operator=(const ObserverScope&) = delete;

 private:
  LlamaModel& model_;
};

}  // namespace

namespace {

/// Runs the model over the calibration windows (as the evaluation does) with `observer` watching
/// every linear input.
void run_windows(LlamaModel& model, std::span<const int> tokens, const EvalOptions& options,
                 LlamaModel::InputObserver observer) {
  if (options.window < 1 || options.window >= model.config().seq_len)
    throw invalid_argument("calibration window of " + std::to_string(options.window) +
                           " tokens for a model of context " +
                           std::to_string(model.config().seq_len));
  const auto window = static_cast<std::size_t>(options.window);
  const std::size_t span = window_tokens(options);
  std::size_t windows = tokens.size() / span;
  if (options.max_windows > 0 && options.max_windows < windows) windows = options.max_windows;
  if (windows == 0) throw invalid_argument("calibration needs at least one window of tokens");
  const ObserverScope scope(model, std::move(observer));
  for (std::size_t w = 0; w < windows; ++w) {
    // The inputs the evaluation feeds: BOS then window - 1 text tokens, or without a BOS the
    // window's first `window` tokens (its last is only ever a target).
    // One forward_batch per window: the observer sees every row, and each linear layer's rows
    // in position order, as token-by-token passes would show them.
    const std::span<const int> text = tokens.subspan(w * span, span);
    std::vector<int> inputs;
    inputs.reserve(window);
    if (options.bos) inputs.push_back(*options.bos);
    for (std::size_t j = 0; inputs.size() < window; ++j) inputs.push_back(text[j]);
    model.forward_batch(inputs, 0);
  }
}

}  // namespace

std::map<std::string, InputStatistics> collect_input_statistics(
    LlamaModel& model, std::span<const int> tokens, const EvalOptions& options,
    const std::vector<std::string>& names) {
  std::map<std::string, InputStatistics> statistics;
  for (const std::string& name : names)
    statistics.emplace(name, InputStatistics(model.linear_layer(name).cols()));
  run_windows(model, tokens, options, [&](const std::string& name, std::span<const float> x) {
    const auto it = statistics.find(name);
    if (it != statistics.end()) it->second.add(MatrixView<const float>(x.data(), 1, x.size()));
  });
  return statistics;
}

std::map<std::string, InputSamples> collect_input_samples(LlamaModel& model,
                                                          std::span<const int> tokens,
                                                          const EvalOptions& options,
                                                          const std::vector<std::string>& names) {
  std::map<std::string, InputSamples> samples;
  for (const std::string& name : names)
    samples.emplace(name, InputSamples{{}, 0, model.linear_layer(name).cols()});
  run_windows(model, tokens, options, [&](const std::string& name, std::span<const float> x) {
    const auto it = samples.find(name);
    if (it == samples.end()) return;
    it->second.values.insert(it->second.values.end(), x.begin(), x.end());
    ++it->second.rows;
  });
  return samples;
}

std::vector<std::string> block_linear_names(const LlamaModel& model) {
  std::vector<std::string> names = model.linear_names();
  std::erase(names, std::string("output.weight"));
  return names;
}

}  // namespace lowbit::model
