// A whole checkpoint into a quantized safetensors file, in one call: every Linear weight through
// a method of the method table (algo/methods.hpp), the other tensors copied as they are, each
// Scheme and input rotation recorded in the metadata. The file is streamed tensor by tensor (the
// header first, then one tensor in memory at a time) and written atomically (a temporary file,
// then rename). The calibrated methods (gptq, awq) first load the model and run over it block by
// block on the calibration tokens (pipeline/gptq.hpp, pipeline/awq.hpp); AWQ's rescaled RMSNorms
// are written with the weights. This is what `lowbit quantize` runs.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/algo/methods.hpp"
#include "lowbit/model/eval.hpp"

namespace lowbit::pipeline {

struct CheckpointQuantizeOptions {
  MethodOptions method;              // checked with check_method_options
  bool quantize_embeddings = false;  // embedding tables too (else only the Linear weights)
  // Calibrated methods only: the calibration tokens (e.g. the first 80% of a text, tokenized) and
  // the windows they are cut into; gptq's act-order and Hadamard rotation (seed: method.seed).
  std::vector<int> calibration_tokens;
  model::EvalOptions calibration_windows;
  bool act_order = false;
  bool hadamard = false;
  /// Written into the file's metadata besides lowbit's own keys (e.g. "lowbit.calibration").
  std::map<std::string, std::string> metadata;
};

/// What quantizing one tensor did, measured against the original weights (in the inputs' basis;
/// AWQ's scales undone, so that every method compares like with like).
struct TensorQuantizeReport {
  std::string name;
  std::size_t rows = 0, cols = 0;
  double bits_per_weight = 0;
  double relative_rms = 0;   // ||W - Q|| / ||W||
  double sqnr_db = 0;        // -20 log10(relative_rms)
  double error_energy = 0;   // ||W - Q||^2
  double signal_energy = 0;  // ||W||^2
};

struct CheckpointQuantizeReport {
  std::string description;  // e.g. "rtn 4-bit g128", "gptq act-order 3-bit g32"
  std::vector<TensorQuantizeReport> tensors;
  double bits_per_weight = 0;  // over the quantized weights
  double relative_rms = 0;     // over the quantized weights
};

/// Called with the stage ("calibrate": transformer blocks; "write": tensors) and its progress.
using CheckpointProgress =
    std::function<void(std::string_view stage, std::size_t done, std::size_t total)>;

/// Quantizes `input` (a llama2.c .bin, a Hugging Face checkpoint, or a float safetensors file; the
/// calibrated methods need a Llama config in it) into `output`: tensors under their Llama names,
/// the config (every LlamaConfig field) in the metadata, so that load_llama reloads the same
/// architecture. Throws invalid_argument for options the method cannot
/// honour or a quantized input, io_error naming the file for a bad one.
CheckpointQuantizeReport quantize_checkpoint(const std::filesystem::path& input,
                                             const std::filesystem::path& output,
                                             const CheckpointQuantizeOptions& options,
                                             const CheckpointProgress& progress = {});

}  // namespace lowbit::pipeline
