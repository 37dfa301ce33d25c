// `lowbit eval`: perplexity of a model on the evaluation text and, given a quantized model, its KL
// divergence from the float model and top-1 agreement (protocol: docs/evaluation.md).
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "lowbit/error.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/model/load.hpp"
#include "progress.hpp"

namespace lowbit::cli {

namespace {

model::CorpusSplit corpus_split(const EvalCommandOptions& options, int vocab_size) {
  const io::Tokenizer tokenizer = io::read_llama2c_tokenizer(options.tokenizer, vocab_size);
  std::ifstream in(options.text, std::ios::binary);
  if (!in) throw io_error("cannot open the text", {options.text.string(), "", {}});
  std::ostringstream text;
  text << in.rdbuf();
  return model::split_corpus(model::tokenize_corpus(tokenizer, text.str()));
}

}  // namespace

std::vector<int> evaluation_tokens(const EvalCommandOptions& options, int vocab_size) {
  return corpus_split(options, vocab_size).evaluation;
}

std::vector<int> calibration_tokens(const EvalCommandOptions& options, int vocab_size) {
  return corpus_split(options, vocab_size).calibration;
}

model::EvalOptions eval_options(const EvalCommandOptions& options) {
  model::EvalOptions eval;
  eval.window = options.window;
  eval.max_windows = options.max_windows;
  return eval;
}

int run_eval(const EvalCommandOptions& options) {
  model::LlamaModel reference = model::load_llama(options.model);
  const std::vector<int> tokens = evaluation_tokens(options, reference.config().vocab_size);
  const model::EvalOptions eval = eval_options(options);
  if (!options.json)
    fmt::print("evaluation text: {} (last 20%: {} tokens), windows of {} tokens after BOS\n",
               options.text.filename().string(), tokens.size(), eval.window);
  nlohmann::ordered_json out = {
      {"text", options.text.filename().string()}, {"split", "last 20%"}, {"window", eval.window}};

  if (!options.quantized) {
    Progress progress("perplexity");
    const model::Perplexity p = model::perplexity(
        reference, tokens, eval,
        [&](std::size_t done, std::size_t total) { progress.update(done, total); });
    progress.finish();
    if (options.json) {
      out["tokens"] = p.tokens;
      out["model"] = {{"file", options.model.filename().string()}, {"perplexity", p.perplexity}};
      fmt::print("{}\n", out.dump(2));
      return 0;
    }
    fmt::print("{:<28} {:>10} {:>10}\n", "model", "tokens", "perplexity");
    fmt::print("{:<28} {:>10} {:>10.4f}\n", options.model.filename().string(), p.tokens,
               p.perplexity);
    return 0;
  }

  model::LlamaModel candidate = model::load_llama(*options.quantized);
  Progress progress("compare");
  const model::Comparison c =
      model::compare(reference, candidate, tokens, eval,
                     [&](std::size_t done, std::size_t total) { progress.update(done, total); });
  progress.finish();
  if (options.json) {
    out["tokens"] = c.tokens;
    out["model"] = {{"file", options.model.filename().string()},
                    {"perplexity", c.reference.perplexity}};
    out["quantized"] = {{"file", options.quantized->filename().string()},
                        {"perplexity", c.candidate.perplexity},
                        {"kl_divergence", c.mean_kl},
                        {"top1_agreement", c.top1_agreement}};
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  fmt::print("{:<28} {:>10} {:>10} {:>10} {:>8}\n", "model", "tokens", "perplexity", "KL (nats)",
             "top-1");
  fmt::print("{:<28} {:>10} {:>10.4f} {:>10} {:>8}\n", options.model.filename().string(), c.tokens,
             c.reference.perplexity, "-", "-");
  fmt::print("{:<28} {:>10} {:>10.4f} {:>10.5f} {:>8.4f}\n", options.quantized->filename().string(),
             c.tokens, c.candidate.perplexity, c.mean_kl, c.top1_agreement);
  return 0;
}

}  // namespace lowbit::cli
