#include "lowbit/model/eval.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>

#include "lowbit/error.hpp"

namespace lowbit::model {

namespace {

/// log-softmax of `logits` into `out`, in double with the maximum subtracted.
void log_softmax(std::span<const float> logits, std::vector<double>& out) {
  out.resize(logits.size());
  double max = -std::numeric_limits<double>::infinity();
  for (float v : logits) max = std::max(max, static_cast<double>(v));
  double sum = 0.0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
  const double log_sum = max + std::log(sum);
  for (std::size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - log_sum;
}

std::size_t argmax(std::span<const float> logits) {
  return static_cast<std::size_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

/// Checks the options against a model and the token count; returns the number of windows.
std::size_t window_count(const LlamaModel& model, std::size_t token_count,
                         const EvalOptions& options) {
  const LlamaConfig& c = model.config();
  if (options.window < 1 || options.window > c.seq_len - 1) {
    std::string message = "evaluation: window ";
    message.append(std::to_string(options.window))
        .append(" is outside [1, seq_len - 1 = ")
        .append(std::to_string(c.seq_len - 1))
        .append("]");
    throw invalid_argument(message);
  }
  if (options.bos < 0 || options.bos >= c.vocab_size) {
    std::string message = "evaluation: BOS token ";
    message.append(std::to_string(options.bos))
        .append(" is outside the vocabulary [0, ")
        .append(std::to_string(c.vocab_size))
        .append(")");
    throw invalid_argument(message);
  }
  const auto window = static_cast<std::size_t>(options.window);
  std::size_t windows = token_count / window;
  if (options.max_windows != 0) windows = std::min(windows, options.max_windows);
  if (windows == 0) {
    std::string message = "evaluation: ";
    message.append(std::to_string(token_count))
        .append(" tokens do not fill one window of ")
        .append(std::to_string(window));
    throw invalid_argument(message);
  }
  return windows;
}

/// Window `w`: calls score(input, position, target) for each of its positions in order, where
/// `input` is the token to feed at `position` and `target` the text token its prediction is scored
/// against.
template <class Score>
void for_each_position(std::span<const int> tokens, std::size_t w, const EvalOptions& options,
                       Score&& score) {
  const auto window = static_cast<std::size_t>(options.window);
  const std::span<const int> text = tokens.subspan(w * window, window);
  for (std::size_t j = 0; j < window; ++j) {
    const int input = j == 0 ? options.bos : text[j - 1];
    score(input, j, text[j]);
  }
}

Perplexity make_perplexity(double nll_sum, std::size_t count) {
  Perplexity result;
  result.tokens = count;
  result.mean_nll = nll_sum / static_cast<double>(count);
  result.perplexity = std::exp(result.mean_nll);
  return result;
}

void check_target(const LlamaModel& model, int target) {
  if (target < 0 || target >= model.config().vocab_size) {
    std::string message = "evaluation: token ";
    message.append(std::to_string(target))
        .append(" is outside the vocabulary [0, ")
        .append(std::to_string(model.config().vocab_size))
        .append(")");
    throw invalid_argument(message);
  }
}

}  // namespace

std::vector<int> tokenize_corpus(const Tokenizer& tokenizer, std::string_view text) {
  std::vector<int> tokens;
  std::size_t begin = 0;
  auto flush = [&](std::size_t end) {
    std::string_view chunk = text.substr(begin, end - begin);
    // Every chunk but the first starts with the space it was cut before; the dummy prefix of
    // encode stands for it.
    if (begin > 0) chunk.remove_prefix(1);
    const std::vector<int> part = tokenizer.encode(chunk, false, false);
    tokens.insert(tokens.end(), part.begin(), part.end());
    begin = end;
  };
  // Spaces at the very end stay with the chunk before them (a chunk of spaces alone would encode
  // to nothing once its leading space is removed).
  const std::size_t last = text.find_last_not_of(' ');
  const std::size_t content_end = last == std::string_view::npos ? 0 : last + 1;
  for (std::size_t i = 1; i < content_end; ++i)
    if (text[i] == ' ' && text[i - 1] != ' ') flush(i);
  if (!text.empty()) flush(text.size());
  return tokens;
}

CorpusSplit split_corpus(std::span<const int> tokens, double calibration_fraction) {
  if (!(calibration_fraction >= 0.0 && calibration_fraction <= 1.0))
    throw invalid_argument("split_corpus: the calibration fraction must be in [0, 1]");
  auto cut = static_cast<std::size_t>(calibration_fraction * static_cast<double>(tokens.size()));
  cut = std::min(cut, tokens.size());
  CorpusSplit split;
  split.calibration.assign(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(cut));
  split.evaluation.assign(tokens.begin() + static_cast<std::ptrdiff_t>(cut), tokens.end());
  return split;
}

Perplexity perplexity(LlamaModel& model, std::span<const int> tokens, const EvalOptions& options,
                      const Progress& progress) {
  const std::size_t windows = window_count(model, tokens.size(), options);
  std::vector<double> log_probs;
  double nll_sum = 0.0;
  std::size_t count = 0;
  for (std::size_t w = 0; w < windows; ++w) {
    for_each_position(tokens, w, options, [&](int input, std::size_t position, int target) {
      check_target(model, target);
      log_softmax(model.forward(input, static_cast<int>(position)), log_probs);
      nll_sum -= log_probs[static_cast<std::size_t>(target)];
      ++count;
    });
    if (progress) progress(w + 1, windows);
  }
  return make_perplexity(nll_sum, count);
}

Comparison compare(LlamaModel& reference, LlamaModel& candidate, std::span<const int> tokens,
                   const EvalOptions& options, const Progress& progress) {
  if (reference.config().vocab_size != candidate.config().vocab_size)
    throw invalid_argument("compare: the two models have different vocabulary sizes");
  const std::size_t windows = window_count(reference, tokens.size(), options);
  window_count(candidate, tokens.size(), options);
  std::vector<double> p, q;  // log-probabilities of the reference and the candidate
  double nll_p = 0.0, nll_q = 0.0, kl_sum = 0.0;
  std::size_t agree = 0, count = 0;
  for (std::size_t w = 0; w < windows; ++w) {
    for_each_position(tokens, w, options, [&](int input, std::size_t position, int target) {
      check_target(reference, target);
      const int pos = static_cast<int>(position);
      // Everything needed from the reference's logits is taken before the candidate runs (the
      // two may be the same object).
      const auto ref_logits = reference.forward(input, pos);
      log_softmax(ref_logits, p);
      const std::size_t ref_top = argmax(ref_logits);
      const auto cand_logits = candidate.forward(input, pos);
      log_softmax(cand_logits, q);
      const std::size_t cand_top = argmax(cand_logits);

      const auto t = static_cast<std::size_t>(target);
      nll_p -= p[t];
      nll_q -= q[t];
      double kl = 0.0;
      for (std::size_t i = 0; i < p.size(); ++i) kl += std::exp(p[i]) * (p[i] - q[i]);
      kl_sum += kl;
      agree += ref_top == cand_top ? 1 : 0;
      ++count;
    });
    if (progress) progress(w + 1, windows);
  }
  Comparison result;
  result.reference = make_perplexity(nll_p, count);
  result.candidate = make_perplexity(nll_q, count);
  result.mean_kl = kl_sum / static_cast<double>(count);
  result.top1_agreement = static_cast<double>(agree) / static_cast<double>(count);
  result.tokens = count;
  return result;
}

}  // namespace lowbit::model
