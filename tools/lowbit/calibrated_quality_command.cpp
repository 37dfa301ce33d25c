// `lowbit quality --calibrated`: tables 3 and 4 of docs/quality.md. Table 3: the calibration-based
// methods (GPTQ, AWQ, GPTQ+Hadamard, SmoothQuant W8A8, LLM.int8()) against round-to-nearest on the
// real model, all calibrated on the first 80% of the text and evaluated on the last 20%. Table 4,
// per layer at 3 bits g32: GPTQ's output error next to RTN's on held-out tokens, and AWQ's search
// loss next to RTN's per layer group, which says where the methods win or lose.
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/model/calibrate.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/model/load.hpp"
#include "lowbit/pipeline/activation_quant.hpp"
#include "lowbit/pipeline/awq.hpp"
#include "lowbit/pipeline/gptq.hpp"
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

/// ||X (W - Q)^T||^2 / ||X W^T||^2 for inputs X [n, in] and the layer's float and quantized
/// weights, each [out, in].
double relative_output_error(const model::InputSamples& x, MatrixView<const float> w,
                             MatrixView<const float> q) {
  double error = 0, signal = 0;
  std::vector<double> out(w.rows), diff(w.rows);
  for (std::size_t t = 0; t < x.rows; ++t) {
    const float* xt = x.values.data() + t * x.cols;
    for (std::size_t o = 0; o < w.rows; ++o) {
      double y = 0, d = 0;
      for (std::size_t k = 0; k < w.cols; ++k) {
        y += static_cast<double>(w(o, k)) * xt[k];
        d += (static_cast<double>(w(o, k)) - q(o, k)) * xt[k];
      }
      signal += y * y;
      error += d * d;
    }
  }
  return signal > 0 ? error / signal : error;
}

/// "layers.3.attention.wq.weight" -> "wq".
std::string short_name(const std::string& name) {
  const std::string stem = name.substr(0, name.rfind(".weight"));
  return stem.substr(stem.rfind('.') + 1);
}

void rtn(model::LlamaModel& m, const Scheme& scheme) {
  for (const std::string& name : model::block_linear_names(m))
    m.set_linear(name, quantize_linear(m.linear_layer(name).weights(), scheme));
}

}  // namespace

int run_calibrated_quality(const EvalCommandOptions& defaults, std::size_t calibration_windows) {
  const model::LlamaModel reference = model::load_llama(defaults.model);
  const int vocab = reference.config().vocab_size;
  const TokenizedText text = tokenize_text(defaults, vocab);
  const std::vector<int>& calibration = text.split.calibration;
  const std::vector<int>& evaluation = text.split.evaluation;
  const model::EvalOptions eval = eval_options(defaults, text.bos);
  model::EvalOptions windows = eval;
  windows.max_windows = calibration_windows;

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
          pipeline::quantize_model_gptq(m, calibration, windows, scheme, options);
        };
      };
      rows.push_back({"RTN " + label, [=](model::LlamaModel& m) { rtn(m, scheme); }});
      rows.push_back({"GPTQ " + label, gptq(false, false)});
      rows.push_back({"GPTQ act-order " + label, gptq(true, false)});
      rows.push_back({"GPTQ+Hadamard " + label, gptq(false, true)});
      rows.push_back({"AWQ " + label, [=](model::LlamaModel& m) {
                        pipeline::quantize_model_awq(m, calibration, windows, scheme);
                      }});
    }
  rows.push_back(
      {"W8A8 (no smoothing)", [](model::LlamaModel& m) { pipeline::quantize_model_w8a8(m); }});
  rows.push_back({"SmoothQuant W8A8 alpha 0.5", [&](model::LlamaModel& m) {
                    pipeline::smooth_model(m, calibration, windows, 0.5f);
                    pipeline::quantize_model_w8a8(m);
                  }});
  rows.push_back({"LLM.int8() threshold 6",
                  [](model::LlamaModel& m) { pipeline::quantize_model_llm_int8(m, 6.0f); }});

  const bool json = defaults.json;
  nlohmann::ordered_json out = {{"model", defaults.model.filename().string()},
                                {"text", defaults.text.filename().string()}};
  nlohmann::ordered_json table3 = nlohmann::ordered_json::array();
  if (!json) {
    fmt::print("## Table 3: calibration-based methods on stories260K\n\n");
    fmt::print(
        "| method | bits/weight | perplexity | KL (nats) | top-1 | quantize time (s) |\n"
        "|---|---|---|---|---|---|\n");
  }
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
      table3.push_back({{"method", "float32"},
                        {"bits_per_weight", 32},
                        {"perplexity", result.reference.perplexity},
                        {"kl_divergence", 0},
                        {"top1_agreement", 1},
                        {"quantize_seconds", nullptr}});
      if (!json) fmt::print("| float32 | 32 | {:.3f} | 0 | 1 | |\n", result.reference.perplexity);
      first = false;
    }
    table3.push_back({{"method", row.method},
                      {"bits_per_weight", bits_per_weight(candidate)},
                      {"perplexity", result.candidate.perplexity},
                      {"kl_divergence", result.mean_kl},
                      {"top1_agreement", result.top1_agreement},
                      {"quantize_seconds", seconds}});
    if (json) continue;
    fmt::print("| {} | {:.3f} | {:.3f} | {:.4f} | {:.4f} | {:.1f} |\n", row.method,
               bits_per_weight(candidate), result.candidate.perplexity, result.mean_kl,
               result.top1_agreement, seconds);
    std::fflush(stdout);
  }
  if (json)
    out["calibrated_methods"] = {{"tokens", scored},
                                 {"window", defaults.window},
                                 {"calibration_windows", calibration_windows},
                                 {"methods", std::move(table3)}};
  else
    fmt::print(
        "\n{} evaluation tokens scored; calibration on {} windows of {} tokens from the first "
        "80% of the text.\n",
        scored, calibration_windows, defaults.window);

  // Table 4: where the gains come from, layer by layer, at 3 bits g32.
  const Scheme scheme = Scheme::asymmetric_int(3, Granularity::per_group(32));
  model::LlamaModel float_model = reference;
  model::EvalOptions held_out = windows;
  held_out.max_windows = 4;
  const std::vector<std::string> names = model::block_linear_names(reference);
  const auto inputs = model::collect_input_samples(float_model, evaluation, held_out, names);
  model::LlamaModel gptq = reference;
  pipeline::quantize_model_gptq(gptq, calibration, windows, scheme);
  if (!json)
    fmt::print(
        "\n## Table 4: relative output error per layer, 3-bit g32\n\n"
        "||X (W - Q)^T||^2 / ||X W^T||^2 on {} held-out tokens (inputs from the float model).\n\n"
        "| layer | RTN | GPTQ | GPTQ / RTN |\n|---|---|---|---|\n",
        inputs.begin()->second.rows);
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const std::string& name : names) {
    const MatrixView<const float> w = reference.linear_layer(name).weights();
    const QuantizedMatrix q_rtn = quantize_linear(w, scheme);
    const std::vector<float> back = q_rtn.dequantize();
    const double e_rtn = relative_output_error(
        inputs.at(name), w, MatrixView<const float>(back.data(), w.rows, w.cols));
    const double e_gptq =
        relative_output_error(inputs.at(name), w, gptq.linear_layer(name).weights());
    layers.push_back({{"layer", name}, {"rtn", e_rtn}, {"gptq", e_gptq}});
    if (!json)
      fmt::print("| {} | {:.5f} | {:.5f} | {:.2f} |\n", name, e_rtn, e_gptq, e_gptq / e_rtn);
  }
  model::LlamaModel awq = reference;
  const pipeline::ModelAwqReport report =
      pipeline::quantize_model_awq(awq, calibration, windows, scheme);
  if (json) {
    nlohmann::ordered_json groups = nlohmann::ordered_json::array();
    for (const pipeline::ModelAwqGroup& g : report.groups)
      groups.push_back({{"layers", g.linears},
                        {"folded_into", g.folded_into},
                        {"ratio", g.ratio},
                        {"rtn_loss", g.rtn_error},
                        {"awq_loss", g.error}});
    out["layer_output_error"] = {{"scheme", "3-bit g32"},
                                 {"tokens", inputs.begin()->second.rows},
                                 {"layers", std::move(layers)}};
    out["awq_groups"] = std::move(groups);
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  fmt::print(
      "\nAWQ, per layer group: the search's loss (mean squared output error of the group's "
      "layers on the calibration inputs) with the chosen scales and with s = 1 (RTN).\n\n"
      "| layers | folded into | ratio a | RTN loss | AWQ loss | AWQ / RTN |\n"
      "|---|---|---|---|---|---|\n");
  for (const pipeline::ModelAwqGroup& g : report.groups) {
    std::string layer_list;
    for (const std::string& name : g.linears)
      layer_list.append(layer_list.empty() ? "" : ", ").append(short_name(name));
    fmt::print("| {} | {} | {:.2f} | {:.4g} | {:.4g} | {:.2f} |\n", layer_list, g.folded_into,
               g.ratio, g.rtn_error, g.error, g.error / g.rtn_error);
  }
  return 0;
}

}  // namespace lowbit::cli
