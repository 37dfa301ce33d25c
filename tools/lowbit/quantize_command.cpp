// `lowbit quantize`: a checkpoint into a quantized safetensors file
// (pipeline/quantize_checkpoint.hpp does the work), with progress on the terminal and the
// per-tensor error table or JSON.
#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/gguf_llama.hpp"
#include "lowbit/io/hf_checkpoint.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/pipeline/quantize_checkpoint.hpp"
#include "progress.hpp"

namespace lowbit::cli {
namespace {

/// What a calibrated file was calibrated on, recorded in its metadata (JSON) so that a result can
/// be reproduced: the text and tokenizer files, which part of the text, and how many windows.
std::string calibration_record(const QuantizeOptions& options, std::optional<int> bos) {
  const auto quoted = [](const std::string& text) {
    std::string out = "\"";
    for (const char c : text) {
      if (c == '"' || c == '\\') out += '\\';
      if (static_cast<unsigned char>(c) >= 0x20) out += c;
    }
    return out + "\"";
  };
  const model::EvalOptions windows;
  return fmt::format(
      R"({{"text":{},"text_bytes":{},"split":"first 80%","tokenizer":{},"windows":{},)"
      R"("window_tokens":{},"bos":{}}})",
      quoted(options.text.filename().string()), std::filesystem::file_size(options.text),
      quoted(options.tokenizer.filename().string()), options.calibration_windows, windows.window,
      bos ? std::to_string(*bos) : "null");
}

/// The vocabulary size a checkpoint's config gives; io_error naming the file when it has none.
int checkpoint_vocabulary(const std::filesystem::path& path) {
  const std::string format = io::detect_checkpoint_format(path);
  if (format == "huggingface") return io::HfCheckpoint(path).config().llama.vocab_size;
  if (format == "llama2c") return io::Llama2cFile(path).config().vocab_size;
  if (format == "gguf") return io::read_gguf_llama_config(io::GgufFile(path)).vocab_size;
  return io::read_llama_config(io::SafetensorsFile(path)).vocab_size;
}

}  // namespace

QuantizeSummary run_quantize(const QuantizeOptions& options) {
  pipeline::CheckpointQuantizeOptions settings;
  settings.method = options.method;
  settings.quantize_embeddings = options.quantize_embeddings;
  settings.act_order = options.act_order;
  settings.hadamard = options.hadamard;
  if (method_traits(options.method.method).calibrated) {
    check_method_options(options.method);  // before the text is read
    // A llama2.c tokenizer file does not say its vocabulary size: the model's config does.
    const int vocab = checkpoint_vocabulary(options.input);
    EvalCommandOptions files;
    files.tokenizer = options.tokenizer;
    files.text = options.text;
    TokenizedText text = tokenize_text(files, vocab, options.input.filename().string());
    settings.calibration_tokens = std::move(text.split.calibration);
    settings.calibration_windows.max_windows = options.calibration_windows;
    settings.calibration_windows.bos = text.bos;
    settings.metadata["lowbit.calibration"] = calibration_record(options, text.bos);
  }
  std::optional<Progress> bar;
  std::string stage;
  const auto progress = [&](std::string_view now, std::size_t done, std::size_t total) {
    if (now != stage) {
      if (bar) bar->finish();
      stage = now;
      bar.emplace(now == "calibrate" ? options.method.method + ": calibrate and quantize blocks"
                                     : "quantize " + options.input.filename().string(),
                  total);
    }
    bar->update(done, total);
  };
  const QuantizeSummary summary =
      pipeline::quantize_checkpoint(options.input, options.output, settings, progress);
  if (bar) bar->finish();
  const std::string& description = summary.description;
  const std::string& method = options.method.method;

  if (options.json) {
    nlohmann::ordered_json out = {{"input", options.input.string()},
                                  {"output", options.output.string()},
                                  {"method", description},
                                  {"bits_per_weight", summary.bits_per_weight},
                                  {"relative_rms", summary.relative_rms},
                                  {"tensors", nlohmann::ordered_json::array()}};
    for (const TensorReport& r : summary.tensors)
      out["tensors"].push_back(
          {{"name", r.name},
           {"rows", r.rows},
           {"cols", r.cols},
           {"bits_per_weight", r.bits_per_weight},
           {"relative_rms", r.relative_rms},
           {"sqnr_db", std::isfinite(r.sqnr_db) ? nlohmann::ordered_json(r.sqnr_db)
                                                : nlohmann::ordered_json()}});
    fmt::print("{}\n", out.dump(2));
  } else if (options.print_table) {
    fmt::print("{:<36} {:>11} {:>7} {:>9} {:>8}\n", "tensor", "shape", "bits/w", "rel. RMS",
               "SQNR dB");
    for (const TensorReport& r : summary.tensors)
      fmt::print("{:<36} {:>11} {:>7.3f} {:>9.5f} {:>8.2f}\n", r.name,
                 fmt::format("{}x{}", r.rows, r.cols), r.bits_per_weight, r.relative_rms,
                 r.sqnr_db);
    fmt::print(
        "{} Linear weights quantized with {}: {:.3f} bits per weight, relative RMS error {:.5f}\n",
        summary.tensors.size(), description, summary.bits_per_weight, summary.relative_rms);
    if (method == "awq")
      fmt::print(
          "(AWQ stores W diag(s) and divides the norms by s: the errors above undo s first, so "
          "they compare like with like; compare the models with `lowbit eval`)\n");
    fmt::print("wrote {}\n", options.output.string());
  }
  return summary;
}

}  // namespace lowbit::cli
