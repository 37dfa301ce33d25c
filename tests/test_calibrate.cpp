#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lowbit/io/llama2c.hpp"
#include "lowbit/model/calibrate.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/pipeline/activation_quant.hpp"
#include "lowbit/pipeline/awq.hpp"
#include "lowbit/pipeline/gptq.hpp"
#include "lowbit/quant/linear.hpp"

#ifndef LOWBIT_DATA_DIR
#define LOWBIT_DATA_DIR "../shared/data"
#endif

namespace {

const std::filesystem::path data_dir = LOWBIT_DATA_DIR;

/// ||a - b|| <= 1e-12 * min(||a||, ||b||) in the Frobenius norm (Eigen's isApprox for double).
bool approx_equal(const lowbit::SymmetricMatrix& a, const lowbit::SymmetricMatrix& b) {
  if (a.rows() != b.rows()) return false;
  double diff = 0.0, norm_a = 0.0, norm_b = 0.0;
  for (std::size_t i = 0; i < a.values().size(); ++i) {
    diff += (a.values()[i] - b.values()[i]) * (a.values()[i] - b.values()[i]);
    norm_a += a.values()[i] * a.values()[i];
    norm_b += b.values()[i] * b.values()[i];
  }
  return std::sqrt(diff) <= 1e-12 * std::sqrt(std::min(norm_a, norm_b));
}

const lowbit::io::Llama2cCheckpoint& checkpoint() {
  static const auto c = lowbit::io::read_llama2c(data_dir / "stories260K" / "stories260K.bin");
  return c;
}

const lowbit::model::CorpusSplit& corpus() {
  static const auto split = [] {
    const auto tokenizer =
        lowbit::io::read_llama2c_tokenizer(data_dir / "stories260K" / "tok512.bin", 512);
    std::ifstream in(data_dir / "text" / "pride-and-prejudice.txt", std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return lowbit::model::split_corpus(lowbit::model::tokenize_corpus(tokenizer, text.str()));
  }();
  return split;
}

}  // namespace

TEST_CASE("calibration statistics come from the forward pass", "[calibrate]") {
  lowbit::model::LlamaModel model(checkpoint().config, checkpoint().tensors);
  lowbit::model::EvalOptions windows;
  windows.window = 64;
  windows.max_windows = 3;
  const auto statistics = lowbit::model::collect_input_statistics(
      model, corpus().calibration, windows,
      {"layers.0.attention.wq.weight", "layers.0.attention.wk.weight",
       "layers.2.feed_forward.w2.weight"});
  REQUIRE(statistics.size() == 3);
  for (const auto& [name, s] : statistics) CHECK(s.samples() == 3u * 64u);
  // wq and wk read the same input.
  CHECK(approx_equal(statistics.at("layers.0.attention.wq.weight").hessian(),
                     statistics.at("layers.0.attention.wk.weight").hessian()));
  CHECK(statistics.at("layers.2.feed_forward.w2.weight").width() == 172);
  // The observer is gone afterwards: a forward pass does not touch the statistics.
  model.forward(1, 0);
  CHECK(statistics.at("layers.0.attention.wq.weight").samples() == 3u * 64u);
}

TEST_CASE("calibration without BOS feeds what the evaluation feeds", "[calibrate]") {
  lowbit::model::LlamaModel model(checkpoint().config, checkpoint().tensors);
  lowbit::model::EvalOptions windows;
  windows.window = 16;
  windows.max_windows = 3;
  windows.bos.reset();
  const std::string name = "layers.0.attention.wq.weight";
  const std::vector<int>& tokens = corpus().calibration;
  const auto samples = lowbit::model::collect_input_samples(model, tokens, windows, {name});
  const auto& s = samples.at(name);
  REQUIRE(s.rows == 3u * 16u);
  // Position 0 of window w is fed the window's first token, tokens[17 w] (windows of 17 tokens):
  // the first layer's input there depends on that token alone.
  for (std::size_t w = 0; w < 3; ++w) {
    std::vector<float> seen;
    model.set_input_observer([&](const std::string& layer, std::span<const float> x) {
      if (layer == name) seen.assign(x.begin(), x.end());
    });
    model.forward(tokens[17 * w], 0);
    model.set_input_observer({});
    const std::span<const float> row(s.values.data() + w * 16 * s.cols, s.cols);
    CHECK(std::equal(row.begin(), row.end(), seen.begin(), seen.end()));
  }
}

TEST_CASE("GPTQ over the model beats round-to-nearest on the real model", "[calibrate][gptq]") {
  const lowbit::model::LlamaModel reference(checkpoint().config, checkpoint().tensors);
  const lowbit::Scheme scheme =
      lowbit::Scheme::asymmetric_int(3, lowbit::Granularity::per_group(32));

  lowbit::model::LlamaModel rtn = reference;
  for (const std::string& name : rtn.linear_names()) {
    if (name == "output.weight") continue;
    rtn.set_linear(name, lowbit::quantize_linear(rtn.linear_layer(name).weights(), scheme));
  }
  lowbit::model::LlamaModel gptq = reference;
  lowbit::model::EvalOptions calibration;
  calibration.max_windows = 16;
  const auto report =
      lowbit::pipeline::quantize_model_gptq(gptq, corpus().calibration, calibration, scheme);
  CHECK(report.size() == 35);
  for (const auto& layer : report) CHECK(std::isfinite(layer.proxy_loss));

  lowbit::model::EvalOptions evaluation;
  evaluation.max_windows = 4;
  lowbit::model::LlamaModel reference_copy = reference;
  const auto with_rtn =
      lowbit::model::compare(reference_copy, rtn, corpus().evaluation, evaluation);
  const auto with_gptq =
      lowbit::model::compare(reference_copy, gptq, corpus().evaluation, evaluation);
  INFO("KL: RTN " << with_rtn.mean_kl << ", GPTQ " << with_gptq.mean_kl);
  CHECK(with_gptq.mean_kl < with_rtn.mean_kl);
}

namespace {

lowbit::model::LlamaModel rtn_model(const lowbit::model::LlamaModel& reference,
                                    const lowbit::Scheme& scheme) {
  lowbit::model::LlamaModel rtn = reference;
  for (const std::string& name : lowbit::model::block_linear_names(rtn))
    rtn.set_linear(name, lowbit::quantize_linear(rtn.linear_layer(name).weights(), scheme));
  return rtn;
}

double mean_kl(const lowbit::model::LlamaModel& reference, lowbit::model::LlamaModel& candidate) {
  lowbit::model::EvalOptions evaluation;
  evaluation.max_windows = 4;
  lowbit::model::LlamaModel copy = reference;
  return lowbit::model::compare(copy, candidate, corpus().evaluation, evaluation).mean_kl;
}

}  // namespace

TEST_CASE("calibration samples are the inputs the layers see", "[calibrate]") {
  lowbit::model::LlamaModel model(checkpoint().config, checkpoint().tensors);
  lowbit::model::EvalOptions windows;
  windows.window = 32;
  windows.max_windows = 2;
  const std::vector<std::string> names = {"layers.1.attention.wo.weight",
                                          "layers.1.feed_forward.w2.weight"};
  const auto samples =
      lowbit::model::collect_input_samples(model, corpus().calibration, windows, names);
  const auto statistics =
      lowbit::model::collect_input_statistics(model, corpus().calibration, windows, names);
  for (const std::string& name : names) {
    const auto& s = samples.at(name);
    CHECK(s.rows == 64);
    CHECK(s.cols == model.linear_layer(name).cols());
    lowbit::InputStatistics again(s.cols);
    again.add(s.view());
    CHECK(approx_equal(again.hessian(), statistics.at(name).hessian()));
  }
}

TEST_CASE("SmoothQuant's smoothing preserves the model; W8A8 and LLM.int8() stay close",
          "[calibrate][smoothquant]") {
  const lowbit::model::LlamaModel reference(checkpoint().config, checkpoint().tensors);
  lowbit::model::EvalOptions calibration;
  calibration.max_windows = 4;
  lowbit::model::LlamaModel smoothed = reference;
  const auto groups = lowbit::pipeline::smooth_model(smoothed, corpus().calibration, calibration);
  CHECK(groups.size() == 2u * 5u);
  for (const auto& g : groups) {
    CHECK(g.min_scale > 0.0f);
    CHECK(std::isfinite(g.max_scale));
  }
  // The norms moved (the scales are not all 1), the function did not.
  lowbit::model::LlamaModel original = reference;
  CHECK(smoothed.norm_weight("layers.0.attention_norm.weight")[0] !=
        original.norm_weight("layers.0.attention_norm.weight")[0]);
  CHECK(mean_kl(reference, smoothed) < 1e-9);

  lowbit::model::LlamaModel w8a8 = smoothed;
  lowbit::pipeline::quantize_model_w8a8(w8a8);
  CHECK(w8a8.linear_layer("layers.3.feed_forward.w2.weight").activations() ==
        lowbit::model::ActivationQuantization::int8_per_token);
  lowbit::model::LlamaModel int8 = reference;
  lowbit::pipeline::quantize_model_llm_int8(int8);
  CHECK(int8.linear_layer("layers.0.attention.wq.weight").activations() ==
        lowbit::model::ActivationQuantization::llm_int8);
  const double kl_w8a8 = mean_kl(reference, w8a8), kl_int8 = mean_kl(reference, int8);
  const double kl_rtn4 = [&] {
    lowbit::model::LlamaModel rtn =
        rtn_model(reference, lowbit::Scheme::asymmetric_int(4, lowbit::Granularity::per_channel()));
    return mean_kl(reference, rtn);
  }();
  INFO("KL: SmoothQuant W8A8 " << kl_w8a8 << ", LLM.int8() " << kl_int8 << ", RTN 4-bit "
                               << kl_rtn4);
  CHECK(kl_w8a8 > 0.0);
  CHECK(kl_w8a8 < 0.05 * kl_rtn4);
  CHECK(kl_int8 < 0.05 * kl_rtn4);
  // An LLM.int8() layer rejects weights that are not int8 per channel.
  const lowbit::QuantizedMatrix int4 =
      lowbit::quantize_linear(reference.linear_layer("output.weight").weights(),
                              lowbit::Scheme::symmetric_int(4, lowbit::Granularity::per_channel()));
  CHECK_THROWS_AS(lowbit::model::Linear(int4, lowbit::model::ActivationQuantization::llm_int8),
                  lowbit::unsupported);
  // W4A8 runs: int4 weights, int8 activations.
  const lowbit::model::Linear w4a8(int4, lowbit::model::ActivationQuantization::int8_per_token);
  CHECK(w4a8.prepared() != nullptr);
}

TEST_CASE("AWQ over the model beats round-to-nearest on the real model", "[calibrate][awq]") {
  const lowbit::model::LlamaModel reference(checkpoint().config, checkpoint().tensors);
  const lowbit::Scheme scheme =
      lowbit::Scheme::asymmetric_int(3, lowbit::Granularity::per_group(32));
  lowbit::model::EvalOptions calibration;
  calibration.max_windows = 8;

  // Scales alone (8-bit weights, no clip): the function is kept.
  lowbit::AwqOptions no_clip;
  no_clip.clip = false;
  lowbit::model::LlamaModel near_float = reference;
  const auto scaled_only = lowbit::pipeline::quantize_model_awq(
      near_float, corpus().calibration, calibration,
      lowbit::Scheme::asymmetric_int(8, lowbit::Granularity::per_group(32)), no_clip);
  CHECK(scaled_only.clipped.empty());
  CHECK(mean_kl(reference, near_float) < 1e-3);

  lowbit::model::LlamaModel awq = reference;
  const auto report =
      lowbit::pipeline::quantize_model_awq(awq, corpus().calibration, calibration, scheme);
  // q/k/v, w1/w3 and w2 per block; wo too unless grouped-query attention forbids folding.
  const std::size_t per_block = reference.config().n_kv_heads == reference.config().n_heads ? 4 : 3;
  CHECK(report.groups.size() == per_block * 5);
  CHECK(report.clipped.size() == 5u * 5u);
  // The grid does not hold s = 1 (with duo scaling, a = 0 gives s = 1 / w_mean), so a group may
  // end slightly above plain RTN; most groups gain.
  std::size_t gained = 0;
  for (const auto& g : report.groups) {
    CHECK(std::isfinite(g.error));
    CHECK(g.ratio >= 0.0);
    gained += g.error < g.rtn_error;
  }
  CHECK(gained * 4 >= report.groups.size() * 3);
  for (const std::string& name : lowbit::model::block_linear_names(awq))
    CHECK(awq.linear_layer(name).quantized()->scheme() == scheme);
  lowbit::model::LlamaModel rtn = rtn_model(reference, scheme);
  const double kl_awq = mean_kl(reference, awq), kl_rtn = mean_kl(reference, rtn);
  INFO("KL: RTN " << kl_rtn << ", AWQ " << kl_awq);
  CHECK(kl_awq < kl_rtn);
}

TEST_CASE("GPTQ+Hadamard over the model records its rotations", "[calibrate][gptq]") {
  const lowbit::model::LlamaModel reference(checkpoint().config, checkpoint().tensors);
  const lowbit::Scheme scheme =
      lowbit::Scheme::asymmetric_int(3, lowbit::Granularity::per_group(32));
  lowbit::model::EvalOptions calibration;
  calibration.max_windows = 8;
  lowbit::GptqOptions options;
  options.hadamard = lowbit::IncoherenceOptions{};
  lowbit::model::LlamaModel rotated = reference;
  lowbit::pipeline::quantize_model_gptq(rotated, corpus().calibration, calibration, scheme,
                                        options);
  const auto* q = rotated.linear_layer("layers.4.feed_forward.w2.weight").quantized();
  REQUIRE(q != nullptr);
  REQUIRE(q->input_rotation().has_value());
  CHECK(q->input_rotation()->size == 172);
  lowbit::model::LlamaModel rtn = rtn_model(reference, scheme);
  const double kl_gptq = mean_kl(reference, rotated), kl_rtn = mean_kl(reference, rtn);
  INFO("KL: RTN " << kl_rtn << ", GPTQ+Hadamard " << kl_gptq);
  CHECK(kl_gptq < kl_rtn);
}
