#include "lowbit/model/eval.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/quant/linear.hpp"
#include "support/temp_dir.hpp"

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
  // perplexity() runs each window as one forward_batch: the logits of forward() token by token up
  // to the rounding of the batched products.
  CHECK(result.mean_nll == Approx(nll / 8).epsilon(1e-5));
  CHECK(result.perplexity == Approx(std::exp(nll / 8)).epsilon(1e-5));
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

TEST_CASE("without BOS a window is window + 1 tokens, the first context only", "[model][eval]") {
  const std::vector<int> text = tok512().encode(
      "Once upon a time, there was a little girl named Lily. She loved to play outside.", false,
      false);
  REQUIRE(text.size() >= 12);
  EvalOptions options;
  options.window = 3;
  options.bos.reset();
  options.max_windows = 2;
  CHECK(lowbit::model::window_tokens(options) == 4);
  LlamaModel model = float_model();
  const auto result = lowbit::model::perplexity(model, text, options);

  // By hand: window w is text[4w .. 4w + 3]; positions 0, 1, 2 are fed its tokens 0, 1, 2 and
  // scored against its tokens 1, 2, 3. Text tokens 0 and 4 are never scored; 8 on are not used.
  LlamaModel check = float_model();
  double nll = 0.0;
  std::vector<std::size_t> scored;
  for (std::size_t w = 0; w < 2; ++w) {
    for (std::size_t j = 0; j < 3; ++j) {
      const auto logits = check.forward(text[4 * w + j], static_cast<int>(j));
      double sum = 0.0;
      for (float v : logits) sum += std::exp(static_cast<double>(v));
      const std::size_t target = 4 * w + j + 1;
      scored.push_back(target);
      nll -= static_cast<double>(logits[static_cast<std::size_t>(text[target])]) - std::log(sum);
    }
  }
  CHECK(scored == std::vector<std::size_t>{1, 2, 3, 5, 6, 7});
  CHECK(result.tokens == 2 * 3);                            // windows * window
  CHECK(result.mean_nll == Approx(nll / 6).epsilon(1e-5));  // (batched: see above)
  // Not today's protocol: that one scores text tokens 0..5 after BOS.
  EvalOptions with_bos = options;
  with_bos.bos = 1;
  CHECK(lowbit::model::perplexity(model, text, with_bos).mean_nll != Approx(result.mean_nll));

  // Tokens past the windows do not count; all windows: floor(size / 4) of them.
  std::vector<int> changed = text;
  changed[8] = changed[8] == 5 ? 6 : 5;
  CHECK(lowbit::model::perplexity(model, changed, options).mean_nll == result.mean_nll);
  options.max_windows = 0;
  CHECK(lowbit::model::perplexity(model, text, options).tokens == text.size() / 4 * 3);
  // window + 1 tokens must fit the context: 511 scored from 512 positions' worth of text.
  options.window = 512;
  CHECK_THROWS_AS(lowbit::model::perplexity(model, text, options), lowbit::invalid_argument);
  options.window = 3;
  CHECK_THROWS_WITH(lowbit::model::perplexity(model, std::span<const int>(text).first(3), options),
                    Catch::Matchers::Contains("one window of 4"));

  // compare() follows the same windows.
  options.max_windows = 2;
  LlamaModel twin = float_model();
  const auto twins = lowbit::model::compare(model, twin, text, options);
  CHECK(twins.tokens == 6);
  CHECK(twins.reference.mean_nll == result.mean_nll);
  CHECK(twins.mean_kl == 0.0);
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

namespace {

/// A copy of the saved reference `from` at `to`, its metadata and tensors passed through `edit`
/// first (tensor data copied, so edit may change it).
struct EditableTensor {
  std::string name;
  lowbit::io::DType dtype;
  std::vector<std::size_t> shape;
  std::vector<std::byte> data;
};
std::filesystem::path edited_copy(const std::filesystem::path& from,
                                  const std::filesystem::path& to,
                                  const std::function<void(std::map<std::string, std::string>&,
                                                           std::vector<EditableTensor>&)>& edit) {
  std::map<std::string, std::string> metadata;
  std::vector<EditableTensor> tensors;
  {
    const lowbit::io::SafetensorsFile file(from);
    metadata = file.metadata();
    for (const std::string& name : file.names()) {
      const lowbit::io::TensorInfo& t = file.info(name);
      tensors.push_back({name, t.dtype, t.shape, {t.data.begin(), t.data.end()}});
    }
  }
  edit(metadata, tensors);
  std::vector<lowbit::io::TensorToWrite> out;
  for (const EditableTensor& t : tensors) out.push_back({t.name, t.dtype, t.shape, t.data});
  lowbit::io::write_safetensors(to, out, metadata);
  return to;
}

}  // namespace

TEST_CASE("a saved reference gives compare()'s result bit for bit", "[model][eval]") {
  const lowbit::test::TempDir dir;
  const std::filesystem::path path = dir.path / "reference.safetensors";
  const std::vector<int>& tokens = austen_evaluation();
  EvalOptions options;
  options.window = 64;
  options.max_windows = 3;
  LlamaModel reference = float_model();
  std::vector<std::size_t> done;
  const auto saved = lowbit::model::save_reference_logits(
      reference, tokens, path, options, "stories260K.bin", [&](std::size_t d, std::size_t total) {
        done.push_back(d);
        CHECK(total == 3);
      });
  CHECK(done == std::vector<std::size_t>{1, 2, 3});
  const auto ppl = lowbit::model::perplexity(reference, tokens, options);
  CHECK(saved.tokens == 192);
  CHECK(saved.mean_nll == ppl.mean_nll);
  // Raw F32 logits: windows x window x vocab x 4 bytes, plus the header.
  CHECK(std::filesystem::file_size(path) > 3 * 64 * 512 * 4);
  CHECK(std::filesystem::file_size(path) < 3 * 64 * 512 * 4 + 4096);

  const auto info = lowbit::model::read_reference_logits_info(path);
  CHECK(info.model == "stories260K.bin");
  CHECK(info.vocab_size == 512);
  CHECK(info.window == 64);
  CHECK(info.max_windows == 3);
  CHECK(info.bos == 1);
  CHECK(info.windows == 3);
  CHECK(info.tokens == 192);
  CHECK(info.token_hash == lowbit::model::hash_tokens(std::span<const int>(tokens).first(192)));

  for (const auto& scheme :
       {lowbit::Scheme::symmetric_int(8, lowbit::Granularity::per_channel()),
        lowbit::Scheme::asymmetric_int(3, lowbit::Granularity::per_group(32))}) {
    LlamaModel candidate = quantized_model(scheme);
    const auto live = lowbit::model::compare(reference, candidate, tokens, options);
    const auto from_file = lowbit::model::compare(path, candidate, tokens, options);
    CHECK(from_file.mean_kl == live.mean_kl);
    CHECK(from_file.top1_agreement == live.top1_agreement);
    CHECK(from_file.reference.mean_nll == live.reference.mean_nll);
    CHECK(from_file.reference.perplexity == live.reference.perplexity);
    CHECK(from_file.candidate.mean_nll == live.candidate.mean_nll);
    CHECK(from_file.tokens == live.tokens);
    CHECK(live.mean_kl > 0.0);
  }
  // Tokens past the scored ones are not part of what was saved.
  std::vector<int> longer(tokens.begin(), tokens.begin() + 300);
  longer[250] = 7;
  LlamaModel twin = float_model();
  const auto self = lowbit::model::compare(path, twin, longer, options);
  CHECK(self.mean_kl == 0.0);
  CHECK(self.top1_agreement == 1.0);
}

TEST_CASE("a saved reference without BOS records it and hashes the tokens it took",
          "[model][eval]") {
  const lowbit::test::TempDir dir;
  const std::filesystem::path path = dir.path / "no-bos.safetensors";
  const std::vector<int> tokens(austen_evaluation().begin(), austen_evaluation().begin() + 200);
  EvalOptions options;
  options.window = 32;
  options.max_windows = 2;
  options.bos.reset();
  LlamaModel model = float_model();
  const auto saved = lowbit::model::save_reference_logits(model, tokens, path, options, "m.bin");
  CHECK(saved.tokens == 64);
  CHECK(saved.mean_nll == lowbit::model::perplexity(model, tokens, options).mean_nll);
  CHECK(lowbit::io::SafetensorsFile(path).metadata().at("bos") == "none");
  const auto info = lowbit::model::read_reference_logits_info(path);
  CHECK_FALSE(info.bos.has_value());
  CHECK(info.tokens == 64);
  // Two windows of 33 tokens.
  CHECK(info.token_hash == lowbit::model::hash_tokens(std::span<const int>(tokens).first(66)));

  LlamaModel candidate =
      quantized_model(lowbit::Scheme::asymmetric_int(4, lowbit::Granularity::per_group(32)));
  const auto live = lowbit::model::compare(model, candidate, tokens, options);
  const auto from_file = lowbit::model::compare(path, candidate, tokens, options);
  CHECK(from_file.mean_kl == live.mean_kl);
  CHECK(from_file.top1_agreement == live.top1_agreement);
  CHECK(from_file.reference.mean_nll == live.reference.mean_nll);
  CHECK(from_file.candidate.mean_nll == live.candidate.mean_nll);
  CHECK(live.mean_kl > 0.0);

  // The 66th token is the second window's last target: part of the hash.
  std::vector<int> changed = tokens;
  changed[65] = changed[65] == 5 ? 6 : 5;
  CHECK_THROWS_WITH(lowbit::model::compare(path, model, changed, options),
                    Catch::Matchers::Contains("token hash"));
  changed = tokens;
  changed[66] = changed[66] == 5 ? 6 : 5;
  CHECK(lowbit::model::compare(path, model, changed, options).mean_kl == 0.0);
  // BOS and no BOS are different evaluations, both ways.
  EvalOptions with_bos = options;
  with_bos.bos = 1;
  CHECK_THROWS_WITH(lowbit::model::compare(path, model, tokens, with_bos),
                    Catch::Matchers::Contains("BOS token none; this evaluation uses 1"));
  const std::filesystem::path bos_path = dir.path / "bos.safetensors";
  lowbit::model::save_reference_logits(model, tokens, bos_path, with_bos, "m.bin");
  CHECK(lowbit::model::read_reference_logits_info(bos_path).bos == 1);
  CHECK_THROWS_WITH(lowbit::model::compare(bos_path, model, tokens, options),
                    Catch::Matchers::Contains("BOS token 1; this evaluation uses none"));
}

TEST_CASE("a saved reference refuses another evaluation", "[model][eval]") {
  const lowbit::test::TempDir dir;
  const std::filesystem::path path = dir.path / "reference.safetensors";
  const std::vector<int> tokens(austen_evaluation().begin(), austen_evaluation().begin() + 200);
  EvalOptions options;
  options.window = 32;
  options.max_windows = 2;
  LlamaModel model = float_model();
  lowbit::model::save_reference_logits(model, tokens, path, options, "stories260K.bin");
  using Catch::Matchers::Contains;
  const std::string file = path.string();

  EvalOptions other = options;
  other.window = 16;
  CHECK_THROWS_AS(lowbit::model::compare(path, model, tokens, other), lowbit::invalid_argument);
  CHECK_THROWS_WITH(lowbit::model::compare(path, model, tokens, other),
                    Contains(file) && Contains("window 32; this evaluation uses 16"));
  other = options;
  other.bos = 2;
  CHECK_THROWS_WITH(lowbit::model::compare(path, model, tokens, other),
                    Contains(file) && Contains("BOS token 1"));
  other = options;
  other.max_windows = 3;
  CHECK_THROWS_WITH(lowbit::model::compare(path, model, tokens, other),
                    Contains(file) && Contains("windows 2"));
  std::vector<int> changed = tokens;
  changed[40] = changed[40] == 5 ? 6 : 5;  // in the second window
  CHECK_THROWS_AS(lowbit::model::compare(path, model, changed, options), lowbit::invalid_argument);
  CHECK_THROWS_WITH(lowbit::model::compare(path, model, changed, options),
                    Contains(file) && Contains("token hash"));
  // Shorter text: fewer windows than saved.
  CHECK_THROWS_AS(
      lowbit::model::compare(path, model, std::span<const int>(tokens).first(40), options),
      lowbit::invalid_argument);

  // A file for another vocabulary (well formed, 511 logits per position).
  const auto narrow = edited_copy(path, dir.path / "narrow.safetensors",
                                  [](auto& metadata, std::vector<EditableTensor>& tensors) {
                                    metadata["vocab_size"] = "511";
                                    for (EditableTensor& t : tensors) {
                                      t.shape[1] = 511;
                                      t.data.resize(t.shape[0] * 511 * sizeof(float));
                                    }
                                  });
  CHECK(lowbit::model::read_reference_logits_info(narrow).vocab_size == 511);
  CHECK_THROWS_WITH(lowbit::model::compare(narrow, model, tokens, options),
                    Contains(narrow.string()) && Contains("vocabulary size 511"));
}

TEST_CASE("a corrupted or foreign saved reference is an io_error naming the file",
          "[model][eval]") {
  const lowbit::test::TempDir dir;
  const std::filesystem::path path = dir.path / "reference.safetensors";
  const std::vector<int> tokens(austen_evaluation().begin(), austen_evaluation().begin() + 64);
  EvalOptions options;
  options.window = 16;
  LlamaModel model = float_model();
  lowbit::model::save_reference_logits(model, tokens, path, options, "stories260K.bin");
  REQUIRE(lowbit::model::compare(path, model, tokens, options).mean_kl == 0.0);
  using Catch::Matchers::Contains;

  const auto rejected = [&](const std::filesystem::path& file, const std::string& reason) {
    INFO(file.filename().string() + ": " + reason);
    CHECK_THROWS_AS(lowbit::model::read_reference_logits_info(file), lowbit::io_error);
    CHECK_THROWS_AS(lowbit::model::compare(file, model, tokens, options), lowbit::io_error);
    CHECK_THROWS_WITH(lowbit::model::compare(file, model, tokens, options),
                      Contains(file.string()) && Contains(reason));
  };
  rejected(dir.path / "missing.safetensors", "");

  // Truncated: the reader's own checks.
  std::vector<char> bytes(std::filesystem::file_size(path));
  std::ifstream(path, std::ios::binary)
      .read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  rejected(dir.write("truncated.safetensors", {bytes.begin(), bytes.end() - 100}), "");
  rejected(dir.write("header-only.safetensors", {bytes.begin(), bytes.begin() + 20}), "");

  using Metadata = std::map<std::string, std::string>;
  using Tensors = std::vector<EditableTensor>;
  const auto edited = [&](const std::string& name,
                          const std::function<void(Metadata&, Tensors&)>& edit) {
    return edited_copy(path, dir.path / name, edit);
  };
  rejected(edited("foreign.safetensors", [](Metadata& m, Tensors&) { m.erase("format"); }),
           "not a saved reference");
  rejected(
      edited("version.safetensors", [](Metadata& m, Tensors&) { m["version"] = std::string("2"); }),
      "version '2'");
  rejected(edited("no-window.safetensors", [](Metadata& m, Tensors&) { m.erase("window"); }),
           "no 'window'");
  for (const char* bad : {"16x", "-16", "", " 16", "99999999999999999999", "0x10"}) {
    rejected(edited("bad-window.safetensors", [&](Metadata& m, Tensors&) { m["window"] = bad; }),
             "metadata 'window'");
  }
  rejected(edited("zero-window.safetensors",
                  [](Metadata& m, Tensors&) { m["window"] = std::string("0"); }),
           "at least 1");
  rejected(edited("bos.safetensors", [](Metadata& m, Tensors&) { m["bos"] = "512"; }),
           "metadata 'bos' 512");
  rejected(edited("bos-text.safetensors", [](Metadata& m, Tensors&) { m["bos"] = "None"; }),
           "metadata 'bos' is 'None'");
  rejected(edited("tokens.safetensors", [](Metadata& m, Tensors&) { m["tokens"] = "63"; }),
           "is not windows 4 x window 16");
  rejected(edited("hash.safetensors", [](Metadata& m, Tensors&) { m["token_hash"] = "12ab"; }),
           "token_hash");
  rejected(edited("windows.safetensors",
                  [](Metadata& m, Tensors&) {
                    m["windows"] = std::string("5");
                    m["tokens"] = "80";
                  }),
           "holds 4 tensors");
  // Overflowing windows x window is caught before any multiplication is trusted.
  rejected(edited("huge.safetensors",
                  [](Metadata& m, Tensors&) {
                    m["windows"] = std::to_string(std::numeric_limits<std::size_t>::max() / 8);
                  }),
           "is not windows");
  rejected(edited("renamed.safetensors", [](Metadata&, Tensors& t) { t[2].name = "window.9"; }),
           "no tensor 'window.2'");
  rejected(edited("f16.safetensors",
                  [](Metadata&, Tensors& t) {
                    t[1].dtype = lowbit::io::DType::F16;
                    t[1].shape[1] *= 2;
                  }),
           "expected F32 of shape [16, 512]");
  rejected(edited("shape.safetensors",
                  [](Metadata&, Tensors& t) {
                    t[0].shape = {8, 1024};
                  }),
           "expected F32 of shape [16, 512]");

  // A NaN logit is found when it is read, not averaged into the KL.
  const auto nan = edited("nan.safetensors", [](Metadata&, Tensors& t) {
    const float value = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(t[3].data.data() + 100 * sizeof(float), &value, sizeof value);
  });
  CHECK_NOTHROW(lowbit::model::read_reference_logits_info(nan));
  CHECK_THROWS_AS(lowbit::model::compare(nan, model, tokens, options), lowbit::io_error);
  CHECK_THROWS_WITH(lowbit::model::compare(nan, model, tokens, options),
                    Contains(nan.string()) && Contains("window.3") && Contains("not finite"));
}
