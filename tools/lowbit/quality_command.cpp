// `lowbit quality`: the two tables of docs/quality.md. First, the error of every scalar method at
// 2, 3 and 4 bits on standard Gaussian data and on the real model's weights, next to the
// Lloyd-Max optimum and the rate-distortion bound; second, what each method does to the real
// model: perplexity, KL divergence from the float model and top-1 agreement.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "lowbit/algo/methods.hpp"
#include "lowbit/format/higgs_grids.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/model/load.hpp"
#include "progress.hpp"

namespace lowbit::cli {
namespace {

struct Candidate {
  MethodOptions options;
  std::vector<int> bits;  // the widths this method is shown at
};

MethodOptions method(std::string name, std::optional<long> group = std::nullopt, bool clip = false,
                     int p = 2) {
  MethodOptions options;
  options.method = std::move(name);
  options.group = group;
  options.mse_clip = clip;
  options.higgs_dimension = p;
  return options;
}

/// The methods of both tables: group-wise ones at group 64 (HIGGS rotates and scales blocks of 512,
/// or whole rows when shorter; k-means learns a codebook per output channel).
std::vector<Candidate> candidates() {
  const std::vector<int> all{2, 3, 4};
  return {{method("rtn", 64), all},
          {method("rtn", 64, true), all},
          {method("hadamard-rtn", 64), all},
          {method("hqq", 64), all},
          {method("kmeans"), all},
          {method("higgs", std::nullopt, false, 1), all},
          {method("higgs"), all},
          {method("nf4", 64), {4}},
          {method("mxfp4"), {4}},
          {method("nvfp4"), {4}}};
}

struct Measured {
  double relative_mse = 0;  // sum (w - q)^2 / sum w^2
  double bits_per_weight = 0;
};

/// Quantizes every matrix with `quantizer`; the error is measured in the inputs' basis.
Measured measure(const Quantizer& quantizer, const std::vector<std::vector<float>>& matrices,
                 const std::vector<std::pair<std::size_t, std::size_t>>& shapes) {
  double error = 0, signal = 0, bits = 0, weights = 0;
  for (std::size_t m = 0; m < matrices.size(); ++m) {
    const auto [rows, cols] = shapes[m];
    const QuantizedMatrix q =
        quantizer.quantize(MatrixView<const float>(matrices[m].data(), rows, cols));
    const std::vector<float> back = q.dequantize_unrotated();
    for (std::size_t i = 0; i < back.size(); ++i) {
      const double d = static_cast<double>(matrices[m][i]) - back[i];
      error += d * d;
      signal += static_cast<double>(matrices[m][i]) * matrices[m][i];
    }
    bits += q.bits_per_weight() * static_cast<double>(back.size());
    weights += static_cast<double>(back.size());
  }
  return {error / signal, bits / weights};
}

std::string cell(const std::optional<Measured>& m) {
  return m ? fmt::format("{:.5f} ({:.2f})", m->relative_mse, m->bits_per_weight) : "—";
}

/// The widths measured, as [{bits, relative_mse, bits_per_weight}, ...].
nlohmann::ordered_json json_cells(const std::optional<Measured> (&by_bits)[3]) {
  nlohmann::ordered_json cells = nlohmann::ordered_json::array();
  for (int bits = 2; bits <= 4; ++bits)
    if (const std::optional<Measured>& m = by_bits[bits - 2])
      cells.push_back({{"bits", bits},
                       {"relative_mse", m->relative_mse},
                       {"bits_per_weight", m->bits_per_weight}});
  return cells;
}

}  // namespace

int run_quality(const EvalCommandOptions& defaults) {
  model::LlamaModel reference = model::load_llama(defaults.model);
  const bool shared = reference.config().shared_classifier;
  std::vector<std::string> names;
  for (const std::string& name : reference.linear_names())
    if (!(shared && name == "output.weight")) names.push_back(name);  // the embedding stays float

  std::vector<std::vector<float>> model_weights;
  std::vector<std::pair<std::size_t, std::size_t>> model_shapes;
  for (const std::string& name : names) {
    const MatrixView<const float> w = reference.linear_layer(name).weights();
    model_weights.emplace_back(w.data, w.data + w.size());
    model_shapes.emplace_back(w.rows, w.cols);
  }
  // 256 x 4096 standard Gaussian weights, fixed seed.
  std::vector<std::vector<float>> gaussian(1, std::vector<float>(256 * 4096));
  std::mt19937_64 rng(20241124);
  std::normal_distribution<float> normal;
  for (float& x : gaussian[0]) x = normal(rng);
  const std::vector<std::pair<std::size_t, std::size_t>> gaussian_shape{{256, 4096}};

  const bool json = defaults.json;
  nlohmann::ordered_json out = {{"model", defaults.model.filename().string()},
                                {"text", defaults.text.filename().string()}};
  nlohmann::ordered_json table1 = nlohmann::ordered_json::array();
  if (!json) {
    fmt::print("## Table 1: relative MSE (and bits per weight, scales included)\n\n");
    fmt::print(
        "Relative MSE = sum (w - q)^2 / sum w^2; on standard Gaussian data this is the MSE per "
        "weight.\n\n");
    fmt::print(
        "| method | Gaussian 2-bit | Gaussian 3-bit | Gaussian 4-bit | stories260K 2-bit | "
        "stories260K 3-bit | stories260K 4-bit |\n");
    fmt::print("|---|---|---|---|---|---|---|\n");
  }
  for (const Candidate& c : candidates()) {
    std::optional<Measured> on_gaussian[3], on_model[3];
    std::string label;
    for (int bits : c.bits) {
      MethodOptions options = c.options;
      options.bits = bits;
      const Quantizer quantizer(options);
      label = quantizer.describe();
      on_gaussian[bits - 2] = measure(quantizer, gaussian, gaussian_shape);
      on_model[bits - 2] = measure(quantizer, model_weights, model_shapes);
    }
    // Name the row without its width: "hqq 4-bit g64" -> "hqq g64".
    if (const auto at = label.find("-bit"); at != std::string::npos)
      label.erase(label.rfind(' ', at), at + 4 - label.rfind(' ', at));
    table1.push_back({{"method", label},
                      {"gaussian", json_cells(on_gaussian)},
                      {"model", json_cells(on_model)}});
    if (!json)
      fmt::print("| {} | {} | {} | {} | {} | {} | {} |\n", label, cell(on_gaussian[0]),
                 cell(on_gaussian[1]), cell(on_gaussian[2]), cell(on_model[0]), cell(on_model[1]),
                 cell(on_model[2]));
  }
  // Gaussian bounds at 2, 3 and 4 bits: Lloyd-Max (the optimal scalar grid) and 2^(-2R).
  const double lloyd_max[3] = {higgs_grid(1, 4).mse, higgs_grid(1, 8).mse, higgs_grid(1, 16).mse};
  const double rate_distortion[3] = {std::exp2(-4.0), std::exp2(-6.0), std::exp2(-8.0)};
  if (json) {
    nlohmann::ordered_json bounds = nlohmann::ordered_json::array();
    for (int bits = 2; bits <= 4; ++bits)
      bounds.push_back({{"bits", bits},
                        {"lloyd_max", lloyd_max[bits - 2]},
                        {"rate_distortion", rate_distortion[bits - 2]}});
    out["relative_mse"] = {{"methods", std::move(table1)}, {"gaussian_bounds", std::move(bounds)}};
  } else {
    fmt::print("| Lloyd-Max optimum (scalar, no scale cost) | {:.5f} | {:.5f} | {:.5f} | | | |\n",
               lloyd_max[0], lloyd_max[1], lloyd_max[2]);
    fmt::print("| rate-distortion bound 2^(-2R) | {:.5f} | {:.5f} | {:.5f} | | | |\n\n",
               rate_distortion[0], rate_distortion[1], rate_distortion[2]);
  }

  const TokenizedText text = tokenize_text(defaults, reference.config().vocab_size);
  const std::vector<int>& tokens = text.split.evaluation;
  const model::EvalOptions eval = eval_options(defaults, text.bos);
  if (!json) {
    fmt::print("## Table 2: stories260K on the evaluation text\n\n");
    fmt::print(
        "| method | bits/weight | perplexity | KL (nats) | top-1 |\n|---|---|---|---|---|\n");
  }
  nlohmann::ordered_json table2 = nlohmann::ordered_json::array();
  bool first = true;
  std::size_t scored = 0;
  for (int bits : {4, 3, 2}) {
    for (const Candidate& c : candidates()) {
      if (std::find(c.bits.begin(), c.bits.end(), bits) == c.bits.end()) continue;
      if (c.options.mse_clip || c.options.method == "kmeans") continue;  // table 1 covers them
      MethodOptions options = c.options;
      options.bits = bits;
      const Quantizer quantizer(options);
      model::LlamaModel candidate = reference;
      double bit_total = 0, weights = 0;
      for (std::size_t i = 0; i < names.size(); ++i) {
        QuantizedMatrix q = quantizer.quantize(
            MatrixView<const float>(model_weights[i].data(), model_shapes[i].first,
                                    model_shapes[i].second),
            names[i]);
        bit_total += q.bits_per_weight() * static_cast<double>(model_weights[i].size());
        weights += static_cast<double>(model_weights[i].size());
        candidate.set_linear(names[i], std::move(q));
      }
      Progress progress("evaluate " + quantizer.describe());
      const model::Comparison result = model::compare(
          reference, candidate, tokens, eval,
          [&](std::size_t done, std::size_t total) { progress.update(done, total); });
      progress.finish();
      scored = result.tokens;
      if (first) {
        table2.push_back({{"method", "float32"},
                          {"bits_per_weight", 32},
                          {"perplexity", result.reference.perplexity},
                          {"kl_divergence", 0},
                          {"top1_agreement", 1}});
        if (!json) fmt::print("| float32 | 32 | {:.3f} | 0 | 1 |\n", result.reference.perplexity);
        first = false;
      }
      table2.push_back({{"method", quantizer.describe()},
                        {"bits_per_weight", bit_total / weights},
                        {"perplexity", result.candidate.perplexity},
                        {"kl_divergence", result.mean_kl},
                        {"top1_agreement", result.top1_agreement}});
      if (json) continue;
      fmt::print("| {} | {:.3f} | {:.3f} | {:.4f} | {:.4f} |\n", quantizer.describe(),
                 bit_total / weights, result.candidate.perplexity, result.mean_kl,
                 result.top1_agreement);
      std::fflush(stdout);
    }
  }
  if (json) {
    out["evaluation"] = {
        {"tokens", scored}, {"window", eval.window}, {"methods", std::move(table2)}};
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  fmt::print("\n{} evaluation tokens scored, in windows of {} (docs/evaluation.md).\n", scored,
             eval.window);
  return 0;
}

}  // namespace lowbit::cli
