// BpeTokenizer from a GGUF vocabulary (tokenizer.ggml.*), as llama.cpp's llama-vocab.cpp reads it.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>

#include "io/bpe_pipeline.hpp"
#include "io/utf8.hpp"
#include "lowbit/error.hpp"
#include "lowbit/io/bpe_tokenizer.hpp"
#include "lowbit/io/bpe_vocabulary.hpp"

namespace lowbit::io {

namespace {

using Pipeline = BpeTokenizer::Pipeline;

struct NamedPreTokenizer {
  std::string_view name;
  std::vector<std::string_view> patterns;  // applied in turn, each splitting the pieces further
  bool ignore_merges;
};

// tokenizer.ggml.pre names as llama.cpp spells them, with its regexes for each (llama-vocab.cpp).
const std::vector<NamedPreTokenizer>& named_pre_tokenizers() {
  namespace patterns = pre_tokenizer_patterns;
  static const std::vector<NamedPreTokenizer> table = {
      {"default",
       {R"([\p{P}\$\+<=>\^~\|]+)", patterns::gpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"},
       false},
      {"gpt-2", {patterns::gpt2}, false},
      {"llama-bpe", {patterns::llama3}, true},
      {"llama3", {patterns::llama3}, true},
      {"llama-v3", {patterns::llama3}, true},
      {"qwen2", {patterns::qwen2}, false},
      // SmolLM's tokenizer splits digits one by one, then GPT-2's regex (llama.cpp's "smollm";
      // StarCoder's tokenizer.json is Digits(individual_digits) + ByteLevel, the same thing).
      {"smollm", {R"(\p{N})", patterns::gpt2}, false},
      {"starcoder", {R"(\p{N})", patterns::gpt2}, false},
      {"refact", {R"(\p{N})", patterns::gpt2}, false},
      {"command-r", {R"(\p{N})", patterns::gpt2}, false},
      {"codeshell", {R"(\p{N})", patterns::gpt2}, false},
  };
  return table;
}

[[noreturn]] void fail(const std::string& source, const std::string& field,
                       const std::string& reason) {
  throw io_error("tokenizer.ggml." + field + ": " + reason, {source, "", {}});
}

int checked_id(const std::string& source, const char* field, std::int64_t id, std::size_t count) {
  if (id < 0 || static_cast<std::uint64_t>(id) >= count)
    fail(source, field,
         "token " + std::to_string(id) + " is outside the " + std::to_string(count) + " tokens");
  return static_cast<int>(id);
}

}  // namespace

BpeTokenizer::BpeTokenizer(const BpeVocabulary& v, const std::string& source) {
  auto p = std::make_shared<Pipeline>();
  const bool byte_level = v.model == "gpt2";
  if (!byte_level && v.model != "llama")
    throw unsupported("tokenizer.ggml.model: '" + v.model +
                          "' is not a BPE vocabulary lowbit reads (\"gpt2\" or \"llama\")",
                      {source, "", {}});
  const std::size_t count = v.tokens.size();
  if (count == 0) fail(source, "tokens", "the vocabulary is empty");
  if (count > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    fail(source, "tokens", std::to_string(count) + " tokens do not fit int ids");
  if (!v.token_types.empty() && v.token_types.size() != count)
    fail(source, "token_type",
         std::to_string(v.token_types.size()) + " types for " + std::to_string(count) + " tokens");

  p->reserve_ids(count);
  p->byte_tokens.fill(-1);
  for (std::size_t i = 0; i < count; ++i) {
    const int id = static_cast<int>(i);
    if (!p->vocab.emplace(v.tokens[i], id).second)
      fail(source, "tokens",
           "token " + std::to_string(i) + " repeats token " +
               std::to_string(p->vocab.find(v.tokens[i])->second));
    p->set_piece(id, v.tokens[i]);
    const std::int32_t type = v.token_types.empty() ? 1 : v.token_types[i];
    if (type < 0 || type > 6)
      fail(source, "token_type",
           "token " + std::to_string(i) + " has type " + std::to_string(type) +
               ", not one of llama.cpp's 0..6");
    const auto kind = static_cast<GgufTokenType>(type);
    // Control, user-defined and unknown tokens are split out of the text before BPE, as
    // tokenizer.json's added tokens are (llama.cpp's special-token cache).
    if (kind == GgufTokenType::control || kind == GgufTokenType::user_defined ||
        kind == GgufTokenType::unknown) {
      if (v.tokens[i].empty() || !utf8::is_valid(v.tokens[i]))
        fail(source, "tokens", "special token " + std::to_string(i) + " is empty or not UTF-8");
      p->added.push_back(
          {v.tokens[i], id, kind != GgufTokenType::user_defined, false, false, false});
      p->added_index.emplace(v.tokens[i], id);
    }
  }

  if (v.bos_id) p->bos = checked_id(source, "bos_token_id", *v.bos_id, count);
  if (v.eos_id) p->eos = checked_id(source, "eos_token_id", *v.eos_id, count);
  if (v.pad_id) checked_id(source, "padding_token_id", *v.pad_id, count);
  const std::optional<int> unk =
      v.unk_id ? std::optional(checked_id(source, "unknown_token_id", *v.unk_id, count))
               : std::nullopt;
  if (v.add_bos.value_or(!byte_level)) {
    if (!p->bos) fail(source, "add_bos_token", "is true but there is no bos_token_id");
    p->prefix.push_back(*p->bos);
  }
  if (v.add_eos.value_or(false)) {
    if (!p->eos) fail(source, "add_eos_token", "is true but there is no eos_token_id");
    p->suffix.push_back(*p->eos);
  }

  using Step = Pipeline::PreTokenizerStep;
  using Decoder = Pipeline::DecoderStep;
  if (byte_level) {
    const NamedPreTokenizer* named = nullptr;
    for (const auto& entry : named_pre_tokenizers())
      if (entry.name == v.pre) named = &entry;
    if (!named)
      throw unsupported("tokenizer.ggml.pre: '" + v.pre +
                            "' is not a pre-tokenizer lowbit knows (default, gpt-2, llama-bpe, "
                            "qwen2, smollm, starcoder, refact, command-r, codeshell)",
                        {source, "", {}});
    for (const std::string_view pattern : named->patterns) {
      Step step{Step::Kind::split};
      step.regex = std::make_shared<const detail::Regex>(pattern);
      p->pre_tokenizer.push_back(std::move(step));
    }
    p->pre_tokenizer.push_back(Step{Step::Kind::byte_level});
    p->ignore_merges = named->ignore_merges;
    p->decoder.push_back(Decoder{Decoder::Kind::byte_level});

    // "left right", split at the first space after the first byte (a left token may be " ").
    p->merges.reserve(v.merges.size());
    for (std::size_t i = 0; i < v.merges.size(); ++i) {
      const std::string& merge = v.merges[i];
      const std::string field = "merges[" + std::to_string(i) + "]";
      const std::size_t space = merge.size() > 1 ? merge.find(' ', 1) : std::string::npos;
      if (space == std::string::npos) fail(source, field, "'" + merge + "' is not \"left right\"");
      const std::string left = merge.substr(0, space), right = merge.substr(space + 1);
      const auto find = [&](const std::string& text) {
        const auto it = p->vocab.find(text);
        if (it == p->vocab.end()) fail(source, field, "names '" + text + "', which is not a token");
        return it->second;
      };
      const int l = find(left), r = find(right), merged = find(left + right);
      // A repeated pair takes its later rank, as tokenizers' merge map does.
      p->merges[static_cast<std::uint64_t>(static_cast<std::uint32_t>(l)) << 32 |
                static_cast<std::uint32_t>(r)] = {static_cast<int>(i), merged};
    }
  } else {
    // SentencePiece-style: "▁" for spaces (and before the text), merges by score, bytes as
    // <0xAB> tokens for characters without one. As Llama 2's tokenizer.json does it.
    if (v.scores.size() != count)
      fail(source, "scores",
           std::to_string(v.scores.size()) + " scores for " + std::to_string(count) + " tokens");
    for (std::size_t i = 0; i < count; ++i)
      if (std::isnan(v.scores[i])) fail(source, "scores", "token " + std::to_string(i) + " is NaN");
    p->scores = v.scores;
    p->merge_by_score = true;
    p->byte_fallback = true;
    p->unk = unk;
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned>(b));
      if (const auto it = p->vocab.find(std::string_view(name)); it != p->vocab.end())
        p->byte_tokens[static_cast<std::size_t>(b)] = it->second;
    }
    const bool space_prefix = v.add_space_prefix.value_or(true);
    if (space_prefix)
      p->normalizer.push_back({Pipeline::NormalizerStep::Kind::prepend, "", "\xE2\x96\x81"});
    p->normalizer.push_back({Pipeline::NormalizerStep::Kind::replace, " ", "\xE2\x96\x81"});
    p->decoder.push_back(Decoder{Decoder::Kind::replace, "\xE2\x96\x81", " "});
    p->decoder.push_back(Decoder{Decoder::Kind::byte_fallback});
    p->decoder.push_back(Decoder{Decoder::Kind::fuse});
    if (space_prefix) {
      Decoder strip{Decoder::Kind::strip, "", " "};
      strip.start = 1;
      p->decoder.push_back(std::move(strip));
    }
  }
  p->has_decoder = true;
  p->index_added_tokens();
  pipeline_ = std::move(p);
}

}  // namespace lowbit::io
