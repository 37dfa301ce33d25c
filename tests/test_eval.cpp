#include "lowbit/model/eval.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/quant/linear.hpp"

#ifndef LOWBIT_DATA_DIR
#define LOWBIT_DATA_DIR "../shared/data"
#endif

namespace {

using lowbit::io::Tokenizer;
using lowbit::model::EvalOptions;
using lowbit::model::LlamaModel;

const std::filesystem::path data_dir = std::filesystem::path(LOWBIT_DATA_DIR);

const lowbit::io::Llama2cCheckpoint& stories260k() {
  static const auto checkpoint =
      lowbit::io::read_llama2c(data_dir / "stories260K" / "stories260K.bin");
  return checkpoint;
}

const Tokenizer& tok512() {
  static const auto tokenizer =
      lowbit::io::read_llama2c_tokenizer(data_dir / "stories260K" / "tok512.bin", 512);
  return tokenizer;
}

LlamaModel float_model() { return LlamaModel(stories260k().config, stories260k().tensors); }

LlamaModel quantized_model(const lowbit::Scheme& scheme) {
  LlamaModel model = float_model();
  for (const std::string& name : model.linear_names())
    model.set_linear(name, lowbit::quantize_linear(model.linear_layer(name).weights(), scheme));
  return model;
}

// The evaluation split of Pride and Prejudice (its last 20% of tokens).
const std::vector<int>& austen_evaluation() {
  static const std::vector<int> tokens = [] {
    std::ifstream in(data_dir / "text" / "pride-and-prejudice.txt", std::ios::binary);
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    const std::vector<int> all = lowbit::model::tokenize_corpus(tok512(), text.str());
    return lowbit::model::split_corpus(all).evaluation;
  }();
  return tokens;
}

std::string decode_all(const Tokenizer& tokenizer, const std::vector<int>& tokens) {
  std::string text;
  for (std::size_t i = 0; i < tokens.size(); ++i)
    text.append(tokenizer.decode(i == 0 ? Tokenizer::bos_id : tokens[i - 1], tokens[i]));
  return text;
}

}  // namespace

TEST_CASE("split_corpus cuts at the fraction with no token in both parts", "[model][eval]") {
  std::vector<int> tokens(1000);
  std::iota(tokens.begin(), tokens.end(), 0);
  const auto split = lowbit::model::split_corpus(tokens);
  CHECK(split.calibration.size() == 800);
  CHECK(split.evaluation.size() == 200);
  CHECK(split.calibration.back() == 799);
  CHECK(split.evaluation.front() == 800);
  std::vector<int> joined = split.calibration;
  joined.insert(joined.end(), split.evaluation.begin(), split.evaluation.end());
  CHECK(joined == tokens);

  const auto odd = lowbit::model::split_corpus(std::span<const int>(tokens).first(7), 0.5);
  CHECK(odd.calibration.size() == 3);
  CHECK(odd.evaluation.size() == 4);
  CHECK(lowbit::model::split_corpus(tokens, 0.0).calibration.empty());
  CHECK(lowbit::model::split_corpus(tokens, 1.0).evaluation.empty());
  CHECK_THROWS_AS(lowbit::model::split_corpus(tokens, 1.5), lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::model::split_corpus(tokens, -0.1), lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::model::split_corpus(tokens, std::nan("")), lowbit::invalid_argument);
}

TEST_CASE("tokenize_corpus encodes word chunks like one encode call", "[model][eval]") {
  const Tokenizer& tokenizer = tok512();
  // The documented concatenation: cut before each space that follows a non-space; every chunk
  // after the first loses that space, which encode's dummy prefix restores.
  const std::string text = "It is a truth universally acknowledged.";
  std::vector<int> expected;
  for (const char* chunk : {"It", "is", "a", "truth", "universally", "acknowledged."}) {
    const std::vector<int> part = tokenizer.encode(chunk, false, false);
    expected.insert(expected.end(), part.begin(), part.end());
  }
  const std::vector<int> tokens = lowbit::model::tokenize_corpus(tokenizer, text);
  CHECK(tokens == expected);
  CHECK(tokens == tokenizer.encode(text, false, false));
  CHECK(decode_all(tokenizer, tokens) == text);

  // Newlines, runs of spaces, quotes, a byte fallback and spaces at either end.
  for (const std::string& sample :
       {std::string("\"My dear Mr. Bennet,\" said his lady to him one day,\n\n\"have you heard "
                    "that  Netherfield   Park is let at last?\"\n"),
        std::string("  leading spaces, a snowman \xE2\x98\x83 and trailing ones   "),
        std::string("x"), std::string(" "), std::string("a "), std::string("a\n\n b")}) {
    INFO(sample);
    const std::vector<int> got = lowbit::model::tokenize_corpus(tokenizer, sample);
    CHECK(got == tokenizer.encode(sample, false, false));
    CHECK(decode_all(tokenizer, got) == sample);
  }
  CHECK(lowbit::model::tokenize_corpus(tokenizer, "").empty());
}

TEST_CASE("perplexity is exp of the mean NLL of the forward pass logits", "[model][eval]") {
  const std::vector<int> text = tok512().encode("Once upon a time, there was a cat.", false, false);
  REQUIRE(text.size() >= 8);
  EvalOptions options;
  options.window = 8;
  options.max_windows = 1;
  LlamaModel model = float_model();
  const auto result = lowbit::model::perplexity(model, text, options);

  // Independently: BOS, then the first 7 text tokens; the logits at position j predict token j.
  LlamaModel check = float_model();
  double nll = 0.0;
  for (int j = 0; j < 8; ++j) {
    const int input = j == 0 ? Tokenizer::bos_id : text[static_cast<std::size_t>(j) - 1];
    const auto logits = check.forward(input, j);
    double sum = 0.0;
    for (float v : logits) sum += std::exp(static_cast<double>(v));
    nll -=
        static_cast<double>(logits[static_cast<std::size_t>(text[static_cast<std::size_t>(j)])]) -
        std::log(sum);
  }
  CHECK(result.tokens == 8);
  CHECK(result.mean_nll == Approx(nll / 8).epsilon(1e-9));
  CHECK(result.perplexity == Approx(std::exp(nll / 8)).epsilon(1e-9));
  // A TinyStories opening is easy for this model.
  CHECK(result.perplexity < 10.0);
}

TEST_CASE("windows, options and progress", "[model][eval]") {
  const std::vector<int> text = tok512().encode(
      "Once upon a time, there was a little girl named Lily. She loved to play outside.", false,
      false);
  LlamaModel model = float_model();
  EvalOptions options;
  options.window = 5;
  const std::size_t full = text.size() / 5;
  std::vector<std::pair<std::size_t, std::size_t>> calls;
  const auto all = lowbit::model::perplexity(
      model, text, options,
      [&](std::size_t done, std::size_t total) { calls.emplace_back(done, total); });
  CHECK(all.tokens == full * 5);  // the partial window at the end is dropped
  REQUIRE(calls.size() == full);
  CHECK(calls.front() == std::pair<std::size_t, std::size_t>{1, full});
  CHECK(calls.back() == std::pair<std::size_t, std::size_t>{full, full});

  options.max_windows = 2;
  const auto two = lowbit::model::perplexity(model, text, options);
  CHECK(two.tokens == 10);
  // Each window starts afresh: the second window alone scores as it did within the first two.
  options.max_windows = 1;
  const auto first = lowbit::model::perplexity(model, text, options);
  const auto second =
      lowbit::model::perplexity(model, std::span<const int>(text).subspan(5), options);
  CHECK(two.mean_nll == Approx((first.mean_nll + second.mean_nll) / 2).epsilon(1e-12));

  EvalOptions bad;
  bad.window = 0;
  CHECK_THROWS_AS(lowbit::model::perplexity(model, text, bad), lowbit::invalid_argument);
  bad.window = 512;  // BOS + 512 tokens do not fit seq_len 512
  CHECK_THROWS_AS(lowbit::model::perplexity(model, text, bad), lowbit::invalid_argument);
  bad.window = static_cast<int>(text.size()) + 1;  // not one full window
  CHECK_THROWS_AS(lowbit::model::perplexity(model, text, bad), lowbit::invalid_argument);
  bad.window = 4;
  bad.bos = 512;
  CHECK_THROWS_AS(lowbit::model::perplexity(model, text, bad), lowbit::invalid_argument);
  const std::vector<int> outside{5, 6, 600, 7};
  options.window = 4;
  CHECK_THROWS_AS(lowbit::model::perplexity(model, outside, options), lowbit::invalid_argument);
}

TEST_CASE("a model compared with itself agrees exactly", "[model][eval]") {
  const std::vector<int>& tokens = austen_evaluation();
  EvalOptions options;
  options.window = 64;
  options.max_windows = 2;
  LlamaModel a = float_model();
  LlamaModel b = float_model();
  const auto twins = lowbit::model::compare(a, b, tokens, options);
  CHECK(twins.tokens == 128);
  CHECK(twins.mean_kl == 0.0);
  CHECK(twins.top1_agreement == 1.0);
  CHECK(twins.reference.mean_nll == twins.candidate.mean_nll);
  CHECK(twins.reference.mean_nll == lowbit::model::perplexity(a, tokens, options).mean_nll);

  const auto same = lowbit::model::compare(a, a, tokens, options);
  CHECK(same.mean_kl == 0.0);
  CHECK(same.top1_agreement == 1.0);
}

TEST_CASE("stories260K on Pride and Prejudice: float and RTN", "[model][eval]") {
  const std::vector<int>& tokens = austen_evaluation();
  REQUIRE(tokens.size() > 50000);
  EvalOptions options;  // windows of 256
  options.max_windows = 3;

  LlamaModel reference = float_model();
  const auto ppl = lowbit::model::perplexity(reference, tokens, options);
  CHECK(ppl.tokens == 768);
  CHECK(std::isfinite(ppl.perplexity));
  // Austen is far from TinyStories: tens, not the low single digits of its own domain.
  CHECK(ppl.perplexity > 10.0);
  CHECK(ppl.perplexity < 300.0);

  LlamaModel int8 =
      quantized_model(lowbit::Scheme::symmetric_int(8, lowbit::Granularity::per_channel()));
  const auto c8 = lowbit::model::compare(reference, int8, tokens, options);
  CHECK(c8.reference.mean_nll == ppl.mean_nll);
  CHECK(c8.mean_kl > 0.0);
  CHECK(c8.mean_kl < 0.01);
  CHECK(c8.top1_agreement > 0.95);
  CHECK(std::abs(c8.candidate.mean_nll - ppl.mean_nll) < 0.02);

  LlamaModel int3 =
      quantized_model(lowbit::Scheme::asymmetric_int(3, lowbit::Granularity::per_group(32)));
  const auto c3 = lowbit::model::compare(reference, int3, tokens, options);
  CHECK(c3.mean_kl > c8.mean_kl);
  CHECK(c3.top1_agreement < c8.top1_agreement);
  CHECK(c3.candidate.perplexity > ppl.perplexity);
}
