#include "lowbit/model/eval.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "lowbit/error.hpp"
#include "lowbit/io/safetensors.hpp"

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
  if (options.bos && (*options.bos < 0 || *options.bos >= c.vocab_size)) {
    std::string message = "evaluation: BOS token ";
    message.append(std::to_string(*options.bos))
        .append(" is outside the vocabulary [0, ")
        .append(std::to_string(c.vocab_size))
        .append(")");
    throw invalid_argument(message);
  }
  const std::size_t span = window_tokens(options);
  std::size_t windows = token_count / span;
  if (options.max_windows != 0) windows = std::min(windows, options.max_windows);
  if (windows == 0) {
    std::string message = "evaluation: ";
    message.append(std::to_string(token_count))
        .append(" tokens do not fill one window of ")
        .append(std::to_string(span));
    if (!options.bos) message.append(" (window + 1: without BOS the first is context only)");
    throw invalid_argument(message);
  }
  return windows;
}

/// Window `w`'s inputs (the token fed at each position) and targets (the text token each
/// position's prediction is scored against).
struct WindowTokens {
  std::vector<int> inputs, targets;
};

WindowTokens window_tokens_of(std::span<const int> tokens, std::size_t w,
                              const EvalOptions& options) {
  const auto window = static_cast<std::size_t>(options.window);
  const std::size_t span = window_tokens(options);
  const std::span<const int> text = tokens.subspan(w * span, span);
  WindowTokens result;
  if (options.bos) {
    result.inputs.push_back(*options.bos);
    result.inputs.insert(result.inputs.end(), text.begin(), text.begin() + (window - 1));
    result.targets.assign(text.begin(), text.begin() + window);
  } else {
    result.inputs.assign(text.begin(), text.begin() + window);
    result.targets.assign(text.begin() + 1, text.begin() + (window + 1));
  }
  return result;
}

/// How the metadata spells EvalOptions::bos: its id, or "none".
std::string bos_text(const std::optional<int>& bos) {
  return bos ? std::to_string(*bos) : std::string("none");
}

Perplexity make_perplexity(double nll_sum, std::size_t count) {
  Perplexity result;
  result.tokens = count;
  result.mean_nll = nll_sum / static_cast<double>(count);
  result.perplexity = std::exp(result.mean_nll);
  return result;
}

void check_target(int vocab_size, int target) {
  if (target < 0 || target >= vocab_size) {
    std::string message = "evaluation: token ";
    message.append(std::to_string(target))
        .append(" is outside the vocabulary [0, ")
        .append(std::to_string(vocab_size))
        .append(")");
    throw invalid_argument(message);
  }
}

/// compare()'s loop over `windows` windows, the reference's logits of each window ([window,
/// vocab]) written into its last argument by reference_logits(window, inputs, logits). Both
/// compare() overloads run this one loop, so a saved reference gives the same sums in the same
/// order as the live model. Each window runs through the candidate in one forward_batch.
template <class ReferenceLogits>
Comparison compare_windows(ReferenceLogits&& reference_logits, LlamaModel& candidate,
                           std::span<const int> tokens, std::size_t windows,
                           const EvalOptions& options, const Progress& progress) {
  const int vocab_size = candidate.config().vocab_size;
  const auto vocab = static_cast<std::size_t>(vocab_size);
  std::vector<double> p, q;  // log-probabilities of the reference and the candidate
  std::vector<float> reference_window;
  double nll_p = 0.0, nll_q = 0.0, kl_sum = 0.0;
  std::size_t agree = 0, count = 0;
  for (std::size_t w = 0; w < windows; ++w) {
    const WindowTokens window = window_tokens_of(tokens, w, options);
    for (const int target : window.targets) check_target(vocab_size, target);
    // The reference's logits are copied out before the candidate runs (the two may be the same
    // object).
    reference_logits(w, window.inputs, reference_window);
    const std::span<const float> candidate_window = candidate.forward_batch(window.inputs, 0);
    for (std::size_t j = 0; j < window.targets.size(); ++j) {
      const std::span<const float> ref_logits(reference_window.data() + j * vocab, vocab);
      const std::span<const float> cand_logits = candidate_window.subspan(j * vocab, vocab);
      log_softmax(ref_logits, p);
      log_softmax(cand_logits, q);
      const auto t = static_cast<std::size_t>(window.targets[j]);
      nll_p -= p[t];
      nll_q -= q[t];
      double kl = 0.0;
      for (std::size_t i = 0; i < p.size(); ++i) kl += std::exp(p[i]) * (p[i] - q[i]);
      kl_sum += kl;
      agree += argmax(ref_logits) == argmax(cand_logits) ? 1 : 0;
      ++count;
    }
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

// The metadata tag of a saved reference, and the version of its layout.
constexpr std::string_view reference_format = "lowbit.reference_logits";
constexpr std::string_view reference_version = "1";

static_assert(std::endian::native == std::endian::little,
              "saved logits are little-endian F32, read by copying their bytes");

std::string window_tensor_name(std::size_t w) { return "window." + std::to_string(w); }

std::string hex64(std::uint64_t value) {
  std::string text(16, '0');
  for (std::size_t i = 0; i < 16; ++i, value >>= 4) text[15 - i] = "0123456789abcdef"[value & 15];
  return text;
}

/// A saved reference, mapped and validated.
struct ReferenceFile {
  io::SafetensorsFile file;
  ReferenceLogitsInfo info;
};

ErrorContext file_context(const std::filesystem::path& path) { return {path.string(), "", {}}; }

/// The metadata value under `key`, which must be there.
const std::string& metadata_field(const io::SafetensorsFile& file, const std::string& key) {
  const auto& metadata = file.metadata();
  const auto found = metadata.find(key);
  if (found == metadata.end())
    throw io_error("not a saved reference: its metadata has no '" + key + "'",
                   file_context(file.path()));
  return found->second;
}

/// The metadata value under `key` as an unsigned integer (all digits, in `base`) at most `max`.
std::uint64_t metadata_number(const io::SafetensorsFile& file, const std::string& key,
                              std::uint64_t max, int base = 10) {
  const std::string& text = metadata_field(file, key);
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() || value > max) {
    std::string reason = "metadata '";
    reason.append(key).append("' is '").append(text).append("', not a number in [0, ");
    reason.append(std::to_string(max)).append("]");
    throw io_error(reason, file_context(file.path()));
  }
  return value;
}

ReferenceFile open_reference(const std::filesystem::path& path) {
  io::SafetensorsFile file(path);
  const auto fail = [&](const std::string& reason) -> void {
    throw io_error(reason, file_context(path));
  };
  if (metadata_field(file, "format") != reference_format)
    fail("not a saved reference: its metadata 'format' is '" + metadata_field(file, "format") +
         "', not '" + std::string(reference_format) + "'");
  if (metadata_field(file, "version") != reference_version)
    fail("saved reference version '" + metadata_field(file, "version") + "' is not " +
         std::string(reference_version));
  constexpr auto int_max = static_cast<std::uint64_t>(std::numeric_limits<int>::max());
  constexpr auto size_max = static_cast<std::uint64_t>(std::numeric_limits<std::size_t>::max());
  ReferenceLogitsInfo info;
  info.model = metadata_field(file, "model");
  info.vocab_size = static_cast<int>(metadata_number(file, "vocab_size", int_max));
  info.window = static_cast<int>(metadata_number(file, "window", int_max));
  info.max_windows = metadata_number(file, "max_windows", size_max);
  // Files from before BOS became optional always hold a number.
  if (metadata_field(file, "bos") != "none")
    info.bos = static_cast<int>(metadata_number(file, "bos", int_max));
  info.windows = metadata_number(file, "windows", size_max);
  info.tokens = metadata_number(file, "tokens", size_max);
  if (metadata_field(file, "token_hash").size() != 16)
    fail("metadata 'token_hash' is not 16 hex digits");
  info.token_hash =
      metadata_number(file, "token_hash", std::numeric_limits<std::uint64_t>::max(), 16);

  if (info.vocab_size < 1 || info.window < 1 || info.windows < 1)
    fail("metadata says vocab_size " + std::to_string(info.vocab_size) + ", window " +
         std::to_string(info.window) + ", windows " + std::to_string(info.windows) +
         ": each must be at least 1");
  if (info.bos && *info.bos >= info.vocab_size)
    fail("metadata 'bos' " + std::to_string(*info.bos) + " is outside the vocabulary [0, " +
         std::to_string(info.vocab_size) + ")");
  const auto window = static_cast<std::size_t>(info.window);
  if (info.windows > size_max / window || info.tokens != info.windows * window)
    fail("metadata 'tokens' " + std::to_string(info.tokens) + " is not windows " +
         std::to_string(info.windows) + " x window " + std::to_string(info.window));
  // One tensor per window, each exactly [window, vocab_size] F32; the reader has checked that the
  // data section holds exactly the tensors' bytes.
  if (file.size() != info.windows)
    fail("holds " + std::to_string(file.size()) + " tensors, but its metadata says " +
         std::to_string(info.windows) + " windows");
  const std::vector<std::size_t> shape{window, static_cast<std::size_t>(info.vocab_size)};
  for (std::size_t w = 0; w < info.windows; ++w) {
    const std::string name = window_tensor_name(w);
    if (!file.contains(name)) fail("has no tensor '" + name + "'");
    const io::TensorInfo& tensor = file.info(name);
    if (tensor.dtype != io::DType::F32 || tensor.shape != shape ||
        tensor.data.size() != window * shape[1] * sizeof(float))
      throw io_error("expected F32 of shape " + detail::shape_text(shape[0], shape[1]) +
                         ", found " + std::string(io::dtype_name(tensor.dtype)),
                     {path.string(), name, tensor.shape});
  }
  return {std::move(file), std::move(info)};
}

}  // namespace

std::vector<int> tokenize_corpus(const Tokenizer& tokenizer, std::string_view text) {
  return io::encode_corpus(tokenizer, text);
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
  const auto vocab = static_cast<std::size_t>(model.config().vocab_size);
  std::vector<double> log_probs;
  double nll_sum = 0.0;
  std::size_t count = 0;
  for (std::size_t w = 0; w < windows; ++w) {
    const WindowTokens window = window_tokens_of(tokens, w, options);
    for (const int target : window.targets) check_target(model.config().vocab_size, target);
    const std::span<const float> logits = model.forward_batch(window.inputs, 0);
    for (std::size_t j = 0; j < window.targets.size(); ++j) {
      log_softmax(logits.subspan(j * vocab, vocab), log_probs);
      nll_sum -= log_probs[static_cast<std::size_t>(window.targets[j])];
      ++count;
    }
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
  return compare_windows(
      [&](std::size_t, const std::vector<int>& inputs, std::vector<float>& logits) {
        const std::span<const float> window = reference.forward_batch(inputs, 0);
        logits.assign(window.begin(), window.end());
      },
      candidate, tokens, windows, options, progress);
}

std::uint64_t hash_tokens(std::span<const int> tokens) noexcept {
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a 64 offset basis
  for (const int token : tokens) {
    const auto id = static_cast<std::uint32_t>(token);
    for (int byte = 0; byte < 4; ++byte) {
      hash ^= (id >> (8 * byte)) & 0xff;
      hash *= 1099511628211ull;  // FNV-1a 64 prime
    }
  }
  return hash;
}

Perplexity save_reference_logits(LlamaModel& reference, std::span<const int> tokens,
                                 const std::filesystem::path& path, const EvalOptions& options,
                                 std::string_view model_name, const Progress& progress) {
  const std::size_t windows = window_count(reference, tokens.size(), options);
  const auto window = static_cast<std::size_t>(options.window);
  const std::size_t used = windows * window_tokens(options);
  const auto vocab = static_cast<std::size_t>(reference.config().vocab_size);
  std::vector<io::TensorLayout> layout;
  for (std::size_t w = 0; w < windows; ++w)
    layout.push_back({window_tensor_name(w), io::DType::F32, {window, vocab}});
  const std::map<std::string, std::string> metadata{
      {"format", std::string(reference_format)},
      {"version", std::string(reference_version)},
      {"model", std::string(model_name)},
      {"vocab_size", std::to_string(vocab)},
      {"window", std::to_string(window)},
      {"max_windows", std::to_string(options.max_windows)},
      {"bos", bos_text(options.bos)},
      {"windows", std::to_string(windows)},
      {"tokens", std::to_string(windows * window)},
      {"token_hash", hex64(hash_tokens(tokens.first(used)))}};
  io::SafetensorsWriter writer(path, std::move(layout), metadata);

  std::vector<double> log_probs;
  double nll_sum = 0.0;
  std::size_t count = 0;
  for (std::size_t w = 0; w < windows; ++w) {
    const WindowTokens tokens_of_window = window_tokens_of(tokens, w, options);
    for (const int target : tokens_of_window.targets)
      check_target(reference.config().vocab_size, target);
    const std::span<const float> logits = reference.forward_batch(tokens_of_window.inputs, 0);
    for (std::size_t j = 0; j < window; ++j) {
      log_softmax(logits.subspan(j * vocab, vocab), log_probs);
      nll_sum -= log_probs[static_cast<std::size_t>(tokens_of_window.targets[j])];
      ++count;
    }
    writer.write(window_tensor_name(w), std::as_bytes(logits));
    if (progress) progress(w + 1, windows);
  }
  writer.finish();
  return make_perplexity(nll_sum, count);
}

ReferenceLogitsInfo read_reference_logits_info(const std::filesystem::path& path) {
  return open_reference(path).info;
}

Comparison compare(const std::filesystem::path& reference_logits, LlamaModel& candidate,
                   std::span<const int> tokens, const EvalOptions& options,
                   const Progress& progress) {
  const ReferenceFile reference = open_reference(reference_logits);
  const ReferenceLogitsInfo& info = reference.info;
  // The file must have been computed on exactly what this evaluation scores.
  const auto mismatch = [&](const std::string& what, const std::string& saved,
                            const std::string& given) {
    std::string reason = "the saved reference has ";
    reason.append(what).append(" ").append(saved).append("; this evaluation uses ").append(given);
    throw invalid_argument(reason, file_context(reference_logits));
  };
  const int vocab_size = candidate.config().vocab_size;
  if (info.vocab_size != vocab_size)
    mismatch("vocabulary size", std::to_string(info.vocab_size),
             std::to_string(vocab_size) + " (the candidate model's)");
  if (info.window != options.window)
    mismatch("window", std::to_string(info.window), std::to_string(options.window));
  if (info.bos != options.bos) mismatch("BOS token", bos_text(info.bos), bos_text(options.bos));
  const std::size_t windows = window_count(candidate, tokens.size(), options);
  if (info.windows != windows)
    mismatch("windows",
             std::to_string(info.windows) + " (saved with max_windows " +
                 std::to_string(info.max_windows) + ")",
             std::to_string(windows) + " (max_windows " + std::to_string(options.max_windows) +
                 " over " + std::to_string(tokens.size()) + " tokens)");
  const std::span<const int> used = tokens.first(windows * window_tokens(options));
  if (hash_tokens(used) != info.token_hash)
    mismatch("token hash", hex64(info.token_hash),
             hex64(hash_tokens(used)) + ": it was saved on other evaluation tokens");

  const auto vocab = static_cast<std::size_t>(info.vocab_size);
  return compare_windows(
      [&](std::size_t w, const std::vector<int>& inputs, std::vector<float>& logits) {
        const std::span<const std::byte> data = reference.file.info(window_tensor_name(w)).data;
        logits.resize(inputs.size() * vocab);
        std::memcpy(logits.data(), data.data(), logits.size() * sizeof(float));
        for (std::size_t i = 0; i < logits.size(); ++i)
          if (!std::isfinite(logits[i]))
            throw io_error(
                "a saved logit at position " + std::to_string(i / vocab) + " is not finite",
                {reference_logits.string(), window_tensor_name(w), {}});
      },
      candidate, tokens, windows, options, progress);
}

}  // namespace lowbit::model
