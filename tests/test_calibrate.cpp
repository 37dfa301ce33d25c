#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lowbit/io/llama2c.hpp"
#include "lowbit/model/calibrate.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/quant/linear.hpp"

#ifndef LOWBIT_DATA_DIR
#define LOWBIT_DATA_DIR "../shared/data"
#endif

namespace {

const std::filesystem::path data_dir = LOWBIT_DATA_DIR;

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
  CHECK(statistics.at("layers.0.attention.wq.weight")
            .hessian()
            .isApprox(statistics.at("layers.0.attention.wk.weight").hessian()));
  CHECK(statistics.at("layers.2.feed_forward.w2.weight").width() == 172);
  // The observer is gone afterwards: a forward pass does not touch the statistics.
  model.forward(1, 0);
  CHECK(statistics.at("layers.0.attention.wq.weight").samples() == 3u * 64u);
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
      lowbit::model::quantize_model_gptq(gptq, corpus().calibration, calibration, scheme);
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
