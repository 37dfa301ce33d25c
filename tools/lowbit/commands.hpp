// The subcommands of the `lowbit` program. Each takes its options as a plain struct, so that the
// command-line wiring (main.cpp) and the work stay apart, and the demo can chain them.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/algo/methods.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/pipeline/quantize_checkpoint.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit::cli {

struct QuantizeOptions {
  std::filesystem::path input;   // llama2.c .bin or safetensors
  std::filesystem::path output;  // safetensors
  MethodOptions method;          // which quantizer, with its settings (or "gptq", "awq")
  bool quantize_embeddings = false;
  // gptq and awq: calibration text (its first 80%), how many windows of it; gptq: act-order,
  // a Hadamard rotation of each row's inputs first.
  std::filesystem::path tokenizer;
  std::filesystem::path text;
  std::size_t calibration_windows = 64;
  bool act_order = false;
  bool hadamard = false;
  bool print_table = true;
  bool json = false;  // print the summary and the per-tensor table as one JSON object instead
};

/// What quantizing a checkpoint did, tensor by tensor.
using TensorReport = pipeline::TensorQuantizeReport;
using QuantizeSummary = pipeline::CheckpointQuantizeReport;

QuantizeSummary run_quantize(const QuantizeOptions& options);

struct EvalCommandOptions {
  std::filesystem::path model;  // eval: empty when --base stands in for it
  std::optional<std::filesystem::path> quantized;
  // eval: write the float model's logits here (save_reference_logits), or read them from here
  // instead of running the float model (compare with a saved reference).
  std::optional<std::filesystem::path> save_base;
  std::optional<std::filesystem::path> base;
  std::filesystem::path tokenizer;  // llama2.c tokenizer.bin, tokenizer.json or GGUF
  std::filesystem::path text;
  int window = 256;
  std::size_t max_windows = 0;
  bool json = false;  // print the results as one JSON object instead of a table
};
int run_eval(const EvalCommandOptions& options);
/// The tokenizer a model is evaluated or calibrated with when no --tokenizer is given: a GGUF
/// model's own vocabulary (the model file itself); for a Hugging Face checkpoint, the
/// tokenizer.json in its directory, else its tokenizer.bin (llama2.c's format); else `fallback`
/// (the bundled stories260K tokenizer). Throws io_error naming the directory, and what was looked
/// for, when a Hugging Face checkpoint has neither.
std::filesystem::path default_tokenizer_for(const std::filesystem::path& model,
                                            const std::filesystem::path& fallback);

/// The text of an evaluation or a calibration, tokenized as docs/evaluation.md says with the
/// tokenizer options.tokenizer holds (io::read_model_tokenizer: llama2.c, tokenizer.json or GGUF).
struct TokenizedText {
  model::CorpusSplit split;  // calibration: the first 80% of the tokens, evaluation: the rest
  std::optional<int> bos;    // the BOS the model is fed, or none (the windows follow it)
  std::string tokenizer;     // "tok512.bin (llama2.c)": what tokenized it, for the output
};
/// `vocab_size`: the model's embedding rows (a llama2.c file holds exactly that many tokens, the
/// others at most); `model_name` names the model in the error when they do not fit.
TokenizedText tokenize_text(const EvalCommandOptions& options, int vocab_size,
                            std::string_view model_name = {});
/// The windows of `options` with the tokenizer's BOS (or none).
model::EvalOptions eval_options(const EvalCommandOptions& options, std::optional<int> bos);
/// One line saying how the windows were fed and scored, for the output.
std::string protocol_text(const model::EvalOptions& eval);

/// json: the whole listing as one JSON object instead of tables.
int run_inspect(const std::filesystem::path& file, bool json = false);

/// The tables of docs/quality.md, printed as Markdown (as one JSON object with defaults.json).
int run_quality(const EvalCommandOptions& defaults);
/// Tables 3 and 4 of docs/quality.md: the calibration-based methods against RTN (JSON as above).
int run_calibrated_quality(const EvalCommandOptions& defaults, std::size_t calibration_windows);

/// No arguments: quantize the bundled model at int8, int4-g32 and int3-g32 and compare each with
/// the float model on the evaluation text.
int run_demo(const EvalCommandOptions& defaults);

}  // namespace lowbit::cli
