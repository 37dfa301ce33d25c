// `lowbit eval`: perplexity of a model on the evaluation text and, given a quantized model, its KL
// divergence from the float model and top-1 agreement (protocol: docs/evaluation.md). The float
// model's logits can be saved once (--save-base) and read back for each quantized model (--base).
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "lowbit/error.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/hf_checkpoint.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/io/model_tokenizer.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/model/load.hpp"
#include "progress.hpp"

namespace lowbit::cli {

std::filesystem::path default_tokenizer_for(const std::filesystem::path& model,
                                            const std::filesystem::path& fallback) {
  if (model.empty()) return fallback;
  if (io::has_gguf_magic(model)) return model;  // its vocabulary is in its metadata
  if (!io::is_hf_checkpoint(model)) return fallback;
  const std::filesystem::path directory =
      std::filesystem::is_directory(model) ? model : model.parent_path();
  for (const char* name : {"tokenizer.json", "tokenizer.bin"})
    if (std::filesystem::is_regular_file(directory / name)) return directory / name;
  throw io_error(
      "no tokenizer beside the model (looked for tokenizer.json, then llama2.c's tokenizer.bin): "
      "pass one with --tokenizer",
      {directory.string(), "", {}});
}

TokenizedText tokenize_text(const EvalCommandOptions& options, int vocab_size,
                            std::string_view model_name) {
  const io::ModelTokenizer tokenizer =
      io::read_model_tokenizer(options.tokenizer, vocab_size, model_name);
  std::ifstream in(options.text, std::ios::binary);
  if (!in) throw io_error("cannot open the text", {options.text.string(), "", {}});
  std::ostringstream text;
  text << in.rdbuf();
  TokenizedText result;
  result.split = model::split_corpus(tokenizer.encode(text.str()));
  result.bos = tokenizer.bos();
  result.tokenizer =
      fmt::format("{} ({})", options.tokenizer.filename().string(), tokenizer.kind_name());
  return result;
}

std::string protocol_text(const model::EvalOptions& eval) {
  if (eval.bos)
    return fmt::format("BOS (token {}) then {} text tokens per window, all scored", *eval.bos,
                       eval.window);
  return fmt::format(
      "no BOS (the tokenizer adds none): {} text tokens per window, the first as context, {} "
      "scored",
      eval.window + 1, eval.window);
}

model::EvalOptions eval_options(const EvalCommandOptions& options, std::optional<int> bos) {
  model::EvalOptions eval;
  eval.window = options.window;
  eval.max_windows = options.max_windows;
  eval.bos = bos;
  return eval;
}

namespace {

/// The last component of a path ("f32" for a model directory given as "f32/").
std::string file_name(const std::filesystem::path& path) {
  const std::filesystem::path name = path.filename();
  return name.empty() ? path.parent_path().filename().string() : name.string();
}

void print_text_line(const EvalCommandOptions& options, const TokenizedText& text,
                     const model::EvalOptions& eval) {
  fmt::print("evaluation text: {} (last 20%: {} tokens), tokenizer {}\n", file_name(options.text),
             text.split.evaluation.size(), text.tokenizer);
  fmt::print("protocol: {}\n", protocol_text(eval));
}

nlohmann::ordered_json json_start(const EvalCommandOptions& options, const TokenizedText& text,
                                  const model::EvalOptions& eval) {
  return {{"text", file_name(options.text)},
          {"split", "last 20%"},
          {"tokenizer", text.tokenizer},
          {"window", eval.window},
          {"bos", eval.bos ? nlohmann::ordered_json(*eval.bos) : nlohmann::ordered_json()}};
}

/// The float model's row (named `reference`) and the quantized model's, as a table or JSON.
void print_comparison(const EvalCommandOptions& options, nlohmann::ordered_json out,
                      const std::string& reference, const model::Comparison& c) {
  if (options.json) {
    out["tokens"] = c.tokens;
    out["model"] = {{"file", reference}, {"perplexity", c.reference.perplexity}};
    out["quantized"] = {{"file", file_name(*options.quantized)},
                        {"perplexity", c.candidate.perplexity},
                        {"kl_divergence", c.mean_kl},
                        {"top1_agreement", c.top1_agreement}};
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("{:<28} {:>10} {:>10} {:>10} {:>8}\n", "model", "tokens", "perplexity", "KL (nats)",
             "top-1");
  fmt::print("{:<28} {:>10} {:>10.4f} {:>10} {:>8}\n", reference, c.tokens, c.reference.perplexity,
             "-", "-");
  fmt::print("{:<28} {:>10} {:>10.4f} {:>10.5f} {:>8.4f}\n", file_name(*options.quantized),
             c.tokens, c.candidate.perplexity, c.mean_kl, c.top1_agreement);
}

/// --quantized with --base: the float model's logits come from the file, so it is not run (nor
/// loaded: its name, when given, must be the one the file was saved from).
int run_eval_with_base(const EvalCommandOptions& options) {
  const std::filesystem::path& base = *options.base;
  const model::ReferenceLogitsInfo info = model::read_reference_logits_info(base);
  if (!options.model.empty() && file_name(options.model) != info.model)
    throw invalid_argument("--base was saved from the model '" + info.model + "', not '" +
                               file_name(options.model) + "' (leave the model out to use it)",
                           {base.string(), "", {}});
  model::LlamaModel candidate = model::load_llama(*options.quantized);
  const TokenizedText text =
      tokenize_text(options, candidate.config().vocab_size, file_name(*options.quantized));
  const std::vector<int>& tokens = text.split.evaluation;
  const model::EvalOptions eval = eval_options(options, text.bos);
  if (!options.json) {
    print_text_line(options, text, eval);
    fmt::print("float model's logits read from {} (saved from {})\n", file_name(base), info.model);
  }
  Progress progress("compare");
  const model::Comparison c =
      model::compare(base, candidate, tokens, eval,
                     [&](std::size_t done, std::size_t total) { progress.update(done, total); });
  progress.finish();
  nlohmann::ordered_json out = json_start(options, text, eval);
  out["base"] = file_name(base);
  print_comparison(options, std::move(out), info.model, c);
  return 0;
}

}  // namespace

int run_eval(const EvalCommandOptions& options) {
  if (options.base) return run_eval_with_base(options);
  model::LlamaModel reference = model::load_llama(options.model);
  const TokenizedText text =
      tokenize_text(options, reference.config().vocab_size, file_name(options.model));
  const std::vector<int>& tokens = text.split.evaluation;
  const model::EvalOptions eval = eval_options(options, text.bos);
  if (!options.json) print_text_line(options, text, eval);
  nlohmann::ordered_json out = json_start(options, text, eval);

  if (!options.quantized) {
    Progress progress(options.save_base ? "perplexity, saving logits" : "perplexity");
    const model::Progress update = [&](std::size_t done, std::size_t total) {
      progress.update(done, total);
    };
    const model::Perplexity p =
        options.save_base ? model::save_reference_logits(reference, tokens, *options.save_base,
                                                         eval, file_name(options.model), update)
                          : model::perplexity(reference, tokens, eval, update);
    progress.finish();
    if (options.json) {
      out["tokens"] = p.tokens;
      out["model"] = {{"file", file_name(options.model)}, {"perplexity", p.perplexity}};
      if (options.save_base)
        out["saved_base"] = {{"file", file_name(*options.save_base)},
                             {"bytes", std::filesystem::file_size(*options.save_base)}};
      fmt::print("{}\n", out.dump(2));
      return 0;
    }
    fmt::print("{:<28} {:>10} {:>10}\n", "model", "tokens", "perplexity");
    fmt::print("{:<28} {:>10} {:>10.4f}\n", file_name(options.model), p.tokens, p.perplexity);
    if (options.save_base)
      fmt::print("logits saved to {} ({:.1f} MB), for eval --quantized ... --base\n",
                 options.save_base->string(),
                 static_cast<double>(std::filesystem::file_size(*options.save_base)) / 1e6);
    return 0;
  }

  model::LlamaModel candidate = model::load_llama(*options.quantized);
  Progress progress("compare");
  const model::Comparison c =
      model::compare(reference, candidate, tokens, eval,
                     [&](std::size_t done, std::size_t total) { progress.update(done, total); });
  progress.finish();
  print_comparison(options, std::move(out), file_name(options.model), c);
  return 0;
}

}  // namespace lowbit::cli
