// `lowbit` with no arguments: the bundled model quantized at int8, int4-g32 and int3-g32, each
// written to a file, loaded back and compared with the float model on the evaluation text.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "commands.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/model/load.hpp"
#include "progress.hpp"

namespace lowbit::cli {
namespace {

/// A scratch directory removed when the demo ends, whatever happens.
struct ScratchDirectory {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("lowbit-demo-" + std::to_string(::getpid()));
  ScratchDirectory() { std::filesystem::create_directories(path); }
  ~ScratchDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

}  // namespace

int run_demo(const EvalCommandOptions& defaults) {
  struct Row {
    std::string label;
    int bits;
    long group;
    bool symmetric;
  };
  const std::vector<Row> rows = {{"int8 per-channel sym", 8, 0, true},
                                 {"int4 g32 asym", 4, 32, false},
                                 {"int3 g32 asym", 3, 32, false}};

  fmt::print("lowbit: round-to-nearest quantization of {} at {} settings, judged on {}\n\n",
             defaults.model.string(), rows.size(), defaults.text.string());
  model::LlamaModel reference = model::load_llama(defaults.model);
  const TokenizedText text = tokenize_text(defaults, reference.config().vocab_size);
  const std::vector<int>& tokens = text.split.evaluation;
  const model::EvalOptions eval = eval_options(defaults, text.bos);
  const ScratchDirectory scratch;

  struct Result {
    std::string label;
    QuantizeSummary summary;
    model::Comparison comparison;
  };
  std::vector<Result> results;
  for (const Row& row : rows) {
    QuantizeOptions q;
    q.input = defaults.model;
    q.output = scratch.path / (std::to_string(results.size()) + ".safetensors");
    q.method.bits = row.bits;
    q.method.group = row.group;
    q.method.symmetric = row.symmetric;
    q.print_table = false;
    Result result{row.label, run_quantize(q), {}};
    model::LlamaModel candidate = model::load_llama(q.output);
    Progress progress("evaluate " + row.label);
    result.comparison =
        model::compare(reference, candidate, tokens, eval,
                       [&](std::size_t done, std::size_t total) { progress.update(done, total); });
    progress.finish();
    results.push_back(std::move(result));
  }

  fmt::print("{:<22} {:>7} {:>9} {:>11} {:>10} {:>7}\n", "weights", "bits/w", "rel. RMS",
             "perplexity", "KL (nats)", "top-1");
  const model::Comparison& first = results.front().comparison;
  fmt::print("{:<22} {:>7.3f} {:>9} {:>11.4f} {:>10} {:>7}\n", "float32", 32.0, "-",
             first.reference.perplexity, "-", "-");
  for (const Result& r : results)
    fmt::print("{:<22} {:>7.3f} {:>9.5f} {:>11.4f} {:>10.5f} {:>7.4f}\n", r.label,
               r.summary.bits_per_weight, r.summary.relative_rms, r.comparison.candidate.perplexity,
               r.comparison.mean_kl, r.comparison.top1_agreement);
  fmt::print(
      "\n{} evaluation tokens in windows of {} (docs/evaluation.md); bits per weight count scales "
      "and zero points.\n",
      first.tokens, eval.window);
  return 0;
}

}  // namespace lowbit::cli
