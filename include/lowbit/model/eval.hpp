// Measuring a language model on text: perplexity over fixed windows, and the agreement of two
// models (a float reference and a quantized candidate) position by position. The protocol is
// described in docs/evaluation.md.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "lowbit/io/tokenizer.hpp"
#include "lowbit/model/llama.hpp"

namespace lowbit::model {

using io::Tokenizer;

/// Tokenizes a long text as Tokenizer::encode(text, false, false) would, in linear time.
///
/// llama2.c's encode is quadratic in the text length, so the text is cut into chunks just before
/// every space that follows a non-space character (a run of spaces stays in one chunk; spaces that
/// end the text stay with the chunk before them). Each chunk
/// after the first is encoded without its leading space, without BOS or EOS: the encoder's
/// dummy-prefix " " stands for that space. The first chunk is encoded as it is (it gets the dummy
/// prefix, as the whole text would). The token lists are concatenated with no separator.
///
/// This equals encoding the whole text at once whenever no vocabulary piece has a space after a
/// non-space character, since no merge can then cross a chunk boundary; SentencePiece vocabularies
/// (tok512 among them) have no such piece. Decoding the tokens in order, the first one as if it
/// followed BOS (which drops the dummy prefix), gives back the text. An empty text gives no tokens.
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
  int bos = 1;                  // the token fed at position 0 of every window
};

struct Perplexity {
  double perplexity = 0;   // exp(mean_nll)
  double mean_nll = 0;     // mean negative log-likelihood of the scored tokens, in nats
  std::size_t tokens = 0;  // tokens scored
};

/// Called after each window with the windows done and the windows to do in all.
using Progress = std::function<void(std::size_t done, std::size_t total)>;

/// The perplexity of `model` on `tokens`, window by window.
///
/// The tokens are cut into consecutive, non-overlapping windows of `options.window` tokens; a
/// trailing partial window is dropped (so `tokens` of the result is windows * window). Each window
/// starts afresh at position 0 with `options.bos`, then its text tokens: the prediction at
/// position j (made after BOS and the window's first j tokens) is scored against the window's
/// token j, so every token of the window is scored, the first one predicted from BOS alone, and
/// `window` forward passes are made per window (the last text token is never fed: nothing after
/// it is scored). Log-probabilities are a log-softmax of the logits in double with the maximum
/// subtracted. Throws lowbit::invalid_argument when the options do not fit the model or no full
/// window fits in `tokens`, and when a token is outside the vocabulary.
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

}  // namespace lowbit::model
