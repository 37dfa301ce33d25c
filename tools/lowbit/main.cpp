// lowbit: quantize a checkpoint, evaluate it, inspect files. With no arguments it runs the demo on
// the bundled model (see README.md).
#include <charconv>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <string>
#include <system_error>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "data_paths.hpp"
#include "lowbit/error.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/threads.hpp"

namespace {

/// A count option: a whole number of at least `minimum`. (CLI11 would parse "-1" into a
/// std::size_t as 2^64 - 1, which the options read as "all".)
CLI::Validator count_at_least(std::size_t minimum) {
  return CLI::Validator(
      [minimum](std::string& text) -> std::string {
        std::size_t value = 0;
        const char* end = text.data() + text.size();
        const auto [stop, status] = std::from_chars(text.data(), end, value);
        if (status != std::errc() || stop != end || value < minimum)
          return "must be a whole number of at least " + std::to_string(minimum) + ", not '" +
                 text + "'";
        return {};
      },
      "COUNT>=" + std::to_string(minimum));
}

}  // namespace

// What --tokenizer takes, and where the tokenizer comes from without it (default_tokenizer_for).
constexpr const char* tokenizer_help =
    "Tokenizer: llama2.c tokenizer.bin, Hugging Face tokenizer.json or a GGUF file's vocabulary, "
    "told apart by content (default: the model's own: a GGUF model's vocabulary; beside a Hugging "
    "Face model, tokenizer.json, else tokenizer.bin; else stories260K's tok512.bin)";

int main(int argc, char** argv) {
  using namespace lowbit::cli;
  using lowbit::MethodOptions;
  CLI::App app{
      "lowbit: quantize LLM weights and measure what it costs.\n"
      "With no subcommand, quantizes the bundled stories260K model at int8, int4-g32 and int3-g32\n"
      "and compares each with the float model."};
  app.require_subcommand(0, 1);

  QuantizeOptions quantize;
  CLI::App* quantize_cmd = app.add_subcommand("quantize",
                                              "Quantize every Linear weight of a checkpoint "
                                              "(llama2.c .bin, safetensors or a Hugging Face "
                                              "model directory) into safetensors");
  quantize_cmd->add_option("input", quantize.input, "Checkpoint to read (file or HF directory)")
      ->required()
      ->check(CLI::ExistingPath);
  quantize_cmd->add_option("output", quantize.output, "safetensors file to write")->required();
  MethodOptions& method = quantize.method;
  std::string method_help = "Quantization method:";
  std::vector<std::string> method_names;
  for (const lowbit::MethodTraits& row : lowbit::method_table) {
    method_help.append("\n  ").append(row.name).append(": ").append(row.summary);
    method_names.emplace_back(row.name);
  }
  quantize_cmd->add_option("--method", method.method, method_help)
      ->check(CLI::IsMember(method_names))
      ->capture_default_str();
  quantize_cmd
      ->add_option("--bits", method.bits,
                   "Bits per weight code (HIGGS: per weight; default: the method's)")
      ->check(CLI::Range(1, 8));
  quantize_cmd
      ->add_option(
          "--group", method.group,
          "Group size along the input; 0 = per channel, -1 = per tensor (default: the method's)")
      ->check(CLI::Range(-1L, 1L << 30));
  quantize_cmd->add_flag("--sym", method.symmetric, "rtn: symmetric (signed codes, no zero point)");
  std::string scale_format;
  quantize_cmd
      ->add_option("--scale-format", scale_format,
                   "Scale storage: f32, f16, bf16 (default: the method's, f16; fp8: f32)")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  quantize_cmd->add_flag("--mse-clip", method.mse_clip,
                         "rtn: search each group's clipping range for least squared error");
  quantize_cmd->add_flag("--double-quant", method.double_quant,
                         "nf4: QLoRA's double quantization of the scales");
  quantize_cmd
      ->add_option("--higgs-dim", method.higgs_dimension, "higgs: weights per grid point (1 or 2)")
      ->check(CLI::Range(1, 2))
      ->capture_default_str();
  quantize_cmd->add_option("--seed", method.seed, "Seed of random Hadamard signs and k-means")
      ->capture_default_str();
  quantize.tokenizer = default_tokenizer();
  quantize.text = default_text();
  quantize_cmd
      ->add_option("--tokenizer", quantize.tokenizer, std::string("gptq, awq: ") + tokenizer_help)
      ->check(CLI::ExistingFile);
  quantize_cmd
      ->add_option("--calibration-text", quantize.text,
                   "gptq, awq: text whose first 80% calibrates")
      ->check(CLI::ExistingFile)
      ->capture_default_str();
  quantize_cmd
      ->add_option("--calibration-windows", quantize.calibration_windows,
                   "gptq, awq: windows of 256 tokens of calibration text")
      ->check(count_at_least(1))
      ->capture_default_str();
  quantize_cmd->add_flag("--act-order", quantize.act_order,
                         "gptq: columns by decreasing Hessian diagonal (static groups)");
  quantize_cmd->add_flag("--hadamard", quantize.hadamard,
                         "gptq: rotate each row's inputs by a randomized Hadamard first (--seed)");
  quantize_cmd->add_flag("--quantize-embeddings", quantize.quantize_embeddings,
                         "Quantize embedding tables too");
  quantize_cmd->add_flag("--json", quantize.json, "Print the per-tensor table as JSON");

  EvalCommandOptions eval;
  eval.model = default_model();
  eval.tokenizer = default_tokenizer();
  eval.text = default_text();
  CLI::App* eval_cmd = app.add_subcommand(
      "eval",
      "Perplexity on the evaluation text; with --quantized, KL divergence and top-1 agreement too");
  CLI::Option* eval_model =
      eval_cmd
          ->add_option("model", eval.model,
                       "Float model (llama2.c .bin, safetensors, GGUF or a Hugging Face model "
                       "directory); optional with --base")
          ->check(CLI::ExistingPath);
  CLI::Option* eval_quantized = eval_cmd
                                    ->add_option("--quantized", eval.quantized,
                                                 "Quantized model to compare with the float one")
                                    ->check(CLI::ExistingPath);
  CLI::Option* eval_save_base =
      eval_cmd
          ->add_option("--save-base", eval.save_base,
                       "Also save the float model's logits to this safetensors file, for --base "
                       "(windows x window x vocab x 4 bytes)")
          ->excludes(eval_quantized);
  eval_cmd
      ->add_option("--base", eval.base,
                   "Read the float model's logits from this file (written by --save-base with the "
                   "same text and window options) instead of running the float model")
      ->check(CLI::ExistingFile)
      ->needs(eval_quantized)
      ->excludes(eval_save_base);
  const auto add_eval_options = [](CLI::App* cmd, EvalCommandOptions& options) {
    cmd->add_option("--tokenizer", options.tokenizer, tokenizer_help)->check(CLI::ExistingFile);
    cmd->add_option("--text", options.text, "Text whose last 20% is evaluated")
        ->check(CLI::ExistingFile)
        ->capture_default_str();
    cmd->add_option("--window", options.window,
                    "Tokens scored per window: after BOS where the model takes one, else after "
                    "one more text token fed as context")
        ->check(CLI::Range(1, 1 << 20))
        ->capture_default_str();
    cmd->add_option("--max-windows", options.max_windows,
                    "Evaluate at most this many windows (0 = all)")
        ->check(count_at_least(0));
  };
  add_eval_options(eval_cmd, eval);
  eval_cmd->add_flag("--json", eval.json, "Print the results as JSON");
  add_eval_options(&app, eval);

  CLI::App* quality_cmd = app.add_subcommand(
      "quality",
      "Print the tables of docs/quality.md: every method's error and its effect on the model");
  add_eval_options(quality_cmd, eval);
  bool calibrated = false;
  std::size_t quality_calibration_windows = 64;
  quality_cmd->add_flag("--calibrated", calibrated,
                        "Only table 3: the calibration-based methods (GPTQ, AWQ, SmoothQuant, "
                        "LLM.int8()) against round-to-nearest");
  quality_cmd
      ->add_option("--calibration-windows", quality_calibration_windows,
                   "Calibration windows for table 3 (from the first 80% of the text)")
      ->check(count_at_least(1))
      ->capture_default_str();
  quality_cmd->add_flag("--json", eval.json, "Print the tables as one JSON object");

  std::filesystem::path convert_input, convert_output;
  CLI::App* convert_cmd = app.add_subcommand("convert",
                                             "Convert a llama2.c checkpoint to safetensors "
                                             "(float32, Llama tensor names, config in metadata)");
  convert_cmd->add_option("input", convert_input, "llama2.c .bin checkpoint")
      ->required()
      ->check(CLI::ExistingFile);
  convert_cmd->add_option("output", convert_output, "safetensors file to write")->required();

  std::filesystem::path inspect_file;
  CLI::App* inspect_cmd = app.add_subcommand(
      "inspect", "List the tensors, dtypes, shapes and quantization schemes of a file");
  inspect_cmd
      ->add_option("file", inspect_file,
                   "llama2.c .bin, safetensors file or Hugging Face model directory")
      ->required()
      ->check(CLI::ExistingPath);
  bool inspect_json = false;
  inspect_cmd->add_flag("--json", inspect_json, "Print the listing as JSON");

  // Every subcommand (and the demo) takes --threads.
  int threads = 0;
  for (CLI::App* cmd : {&app, quantize_cmd, eval_cmd, quality_cmd, convert_cmd, inspect_cmd})
    cmd->add_option("--threads", threads, "Threads for quantization and kernels (0 = all cores)")
        ->check(CLI::Range(0, 1024));

  CLI11_PARSE(app, argc, argv);
  try {
    lowbit::set_threads(threads);
    if (*quantize_cmd) {
      if (!scale_format.empty()) method.scale_format = lowbit::parse_scalar_format(scale_format);
      // Options of the calibrated methods only: given with any other, they would do nothing.
      const bool needs_calibration = lowbit::method_traits(method.method).calibrated;
      for (const char* name :
           {"--tokenizer", "--calibration-text", "--calibration-windows", "--act-order"})
        if (!needs_calibration && quantize_cmd->count(name) > 0)
          throw lowbit::invalid_argument(std::string(name) + " goes with --method gptq or awq");
      if (quantize.act_order && method.method != "gptq")
        throw lowbit::invalid_argument("--act-order goes with --method gptq");
      // A Hugging Face model's own tokenizer, unless one is named.
      if (needs_calibration && quantize_cmd->count("--tokenizer") == 0)
        quantize.tokenizer = default_tokenizer_for(quantize.input, quantize.tokenizer);
      return run_quantize(quantize).tensors.empty() ? 1 : 0;
    }
    if (*eval_cmd) {
      // The float model may be left out only when --base stands in for it.
      if (eval_model->count() == 0) {
        if (!eval.base) throw lowbit::invalid_argument("eval: give the float model (or --base)");
        eval.model.clear();
      }
      // A Hugging Face model's own tokenizer, unless one is named.
      if (eval_cmd->count("--tokenizer") == 0)
        eval.tokenizer = default_tokenizer_for(
            eval.model.empty() && eval.quantized ? *eval.quantized : eval.model, eval.tokenizer);
      return run_eval(eval);
    }
    if (*inspect_cmd) return run_inspect(inspect_file, inspect_json);
    if (*quality_cmd)
      return calibrated ? run_calibrated_quality(eval, quality_calibration_windows)
                        : run_quality(eval);
    if (*convert_cmd) {
      lowbit::io::convert_llama2c_to_safetensors(convert_input, convert_output);
      return 0;
    }
    return run_demo(eval);
  } catch (const lowbit::error& e) {
    std::fprintf(stderr, "lowbit: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit: unexpected error: %s\n", e.what());
    return 2;
  }
}
