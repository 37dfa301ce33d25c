// Measuring a language model on text: perplexity over fixed windows, and the agreement of two
// models (a float reference and a quantized candidate) position by position. The protocol is
// described in docs/evaluation.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/io/tokenizer.hpp"
#include "lowbit/model/llama.hpp"

namespace lowbit::model {

using io::Tokenizer;

/// io::encode_corpus: a long text as Tokenizer::encode(text, false, false) would encode it, in
/// linear time (the chunking is described there and in docs/evaluation.md).
std::vector<int> tokenize_corpus(const Tokenizer& tokenizer, std::string_view text);

struct CorpusSplit {
  std::vector<int> calibration;
  std::vector<int> evaluation;
};

/// The first floor(calibration_fraction * size) tokens for calibration, the rest for evaluation
/// (no token in both). Throws lowbit::invalid_argument unless 0 <= calibration_fraction <= 1.
CorpusSplit split_corpus(std::span<const int> tokens, double calibration_fraction = 0.8);

struct EvalOptions {
  int window = 256;             // text tokens scored per non-overlapping window (1 .. seq_len - 1)
  std::size_t max_windows = 0;  // 0 = all windows
  /// The token fed at position 0 of every window, where the model's tokenizer adds a BOS
  /// (llama2.c: 1). nullopt for a model that adds none (SmolLM2, GPT-2), which is never fed a BOS
  /// it was not trained to start from: each window then takes window + 1 text tokens, the first
  /// fed as context only (there is nothing to predict it from).
  std::optional<int> bos = 1;
};

/// The text tokens one window takes: `window` with a BOS, `window + 1` without.
inline std::size_t window_tokens(const EvalOptions& options) noexcept {
  return static_cast<std::size_t>(options.window) + (options.bos ? 0 : 1);
}

struct Perplexity {
  double perplexity = 0;   // exp(mean_nll)
  double mean_nll = 0;     // mean negative log-likelihood of the scored tokens, in nats
  std::size_t tokens = 0;  // tokens scored
};

/// Called after each window with the windows done and the windows to do in all.
using Progress = std::function<void(std::size_t done, std::size_t total)>;

/// The perplexity of `model` on `tokens`, window by window.
///
/// The tokens are cut into consecutive, non-overlapping windows of window_tokens(options) tokens;
/// a trailing partial window is dropped. Each window starts afresh at position 0 and makes
/// `window` forward passes, scoring `window` tokens (so `tokens` of the result is windows *
/// window). With a BOS, position 0 is fed `options.bos`, position j > 0 the window's token j - 1,
/// and the prediction at position j is scored against token j: every token of the window is
/// scored, the first one predicted from BOS alone. Without one, position j is fed the window's
/// token j and scored against token j + 1: the first token is context only. Either way the last
/// token is never fed (nothing after it is scored). Log-probabilities are a log-softmax of the
/// logits in double with the maximum subtracted. Throws lowbit::invalid_argument when the options
/// do not fit the model or no full window fits in `tokens`, and when a token is outside the
/// vocabulary.
Perplexity perplexity(LlamaModel& model, std::span<const int> tokens,
                      const EvalOptions& options = {}, const Progress& progress = {});

struct Comparison {
  Perplexity reference;       // e.g. the float model
  Perplexity candidate;       // e.g. a quantized model
  double mean_kl = 0;         // mean over scored positions of KL(reference || candidate), in nats
  double top1_agreement = 0;  // fraction of scored positions where both argmaxes agree
  std::size_t tokens = 0;     // positions scored
};

/// Runs both models over the same windows as perplexity() does, in lockstep (memory O(vocab), not
/// O(tokens x vocab)). At every scored position, with p and q the reference's and the candidate's
/// next-token distributions (log-softmax in double), KL = sum_i p_i (log p_i - log q_i), and the
/// argmaxes (the first index of the largest logit) are compared. The two models must have the same
/// vocabulary size and may be the same object. A model compared with an identical one gives
/// mean_kl == 0 exactly and top1_agreement == 1.
Comparison compare(LlamaModel& reference, LlamaModel& candidate, std::span<const int> tokens,
                   const EvalOptions& options = {}, const Progress& progress = {});

// A saved reference: the reference model's logits at every scored position, written once so that
// each candidate is compared without running the reference again (as llama-perplexity's
// --kl-divergence-base). The file is safetensors: one F32 tensor "window.<w>" of shape
// [window, vocab_size] per window w, holding the raw logits forward() returned, and metadata
// saying what they were computed on (docs/evaluation.md, "Saved reference logits"). Raw logits,
// not log-probabilities: compare() takes the log-softmax in double and the argmax of the float
// logits, so the file gives it exactly the same inputs, and the same Comparison bit for bit.

/// What a saved reference was computed on, from its metadata.
struct ReferenceLogitsInfo {
  std::string model;            // the reference model's file name, as given when saving
  int vocab_size = 0;           // logits per position
  int window = 0;               // EvalOptions::window
  std::size_t max_windows = 0;  // EvalOptions::max_windows, as given (0 = all)
  std::optional<int> bos;       // EvalOptions::bos ("none" in the file: no BOS)
  std::size_t windows = 0;      // windows saved
  std::size_t tokens = 0;       // positions saved: windows * window
  /// hash_tokens of the tokens the windows took: the first windows * window_tokens(options).
  std::uint64_t token_hash = 0;
};

/// FNV-1a 64 over the little-endian 4-byte ids of `tokens`: identifies the text a file was
/// computed on.
std::uint64_t hash_tokens(std::span<const int> tokens) noexcept;

/// Runs `reference` over the windows of perplexity() and writes its logits to `path` (through a
/// temporary renamed into place, one window in memory at a time: window * vocab_size floats).
/// The file takes windows * window * vocab_size * 4 bytes, plus ~80 header bytes a window. Returns
/// the same Perplexity as perplexity(). `model_name` is recorded for the reader (e.g. the model's
/// file name). Throws as perplexity() does, and io_error naming the file when it cannot be written.
Perplexity save_reference_logits(LlamaModel& reference, std::span<const int> tokens,
                                 const std::filesystem::path& path, const EvalOptions& options = {},
                                 std::string_view model_name = {}, const Progress& progress = {});

/// The metadata of a file save_reference_logits wrote, after checking the whole file is one: the
/// format tag, every field present and in range, and exactly the tensors the fields call for, each
/// F32 and [window, vocab_size]. Throws io_error naming the file and the reason otherwise.
ReferenceLogitsInfo read_reference_logits_info(const std::filesystem::path& path);

/// compare(reference, candidate, tokens, options) with the reference's logits read from a file
/// save_reference_logits wrote for the same tokens and options: the same Comparison, bit for bit
/// (when the reference's forward pass still gives the logits it gave then: same build, kernels).
/// Throws io_error naming the file when it is malformed (read_reference_logits_info) or holds a
/// non-finite logit, and invalid_argument naming the file when it was computed on something else:
/// another vocabulary size, window, BOS (or none), number of windows or other tokens
/// (hash_tokens).
Comparison compare(const std::filesystem::path& reference_logits, LlamaModel& candidate,
                   std::span<const int> tokens, const EvalOptions& options = {},
                   const Progress& progress = {});

}  // namespace lowbit::model
