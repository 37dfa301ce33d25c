// tokenizer.json (Hugging Face `tokenizers`) into a BpeTokenizer. The file is untrusted: every
// field is type-checked before use and every failure names the file and the field.
#include "lowbit/io/hf_tokenizer.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/bpe_pipeline.hpp"
#include "io/utf8.hpp"
#include "lowbit/error.hpp"

namespace lowbit::io {

namespace {

using nlohmann::json;
using Pipeline = BpeTokenizer::Pipeline;
using detail::PrependScheme;
using detail::SplitBehavior;

// Strings of a field that takes one character (Metaspace's replacement, Strip's content).
constexpr std::size_t max_strip_count = 1 << 20;

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& reason) const {
    throw io_error("field '" + field + "': " + reason, {source_, "", {}});
  }
  [[noreturn]] void unsupported_component(const std::string& field, const std::string& what) const {
    throw unsupported("field '" + field + "': " + what + " is not supported by lowbit",
                      {source_, "", {}});
  }

  static const char* type_name(const json& value) { return value.type_name(); }

  const json& member(const json& object, const std::string& field, const std::string& key) const {
    const auto it = object.find(key);
    if (it == object.end()) fail(field + "." + key, "is missing");
    return *it;
  }
  const json* optional_member(const json& object, const std::string& key) const {
    const auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
  }
  const json& object(const json& value, const std::string& field) const {
    if (!value.is_object()) fail(field, std::string("is ") + type_name(value) + ", not an object");
    return value;
  }
  const json& array(const json& value, const std::string& field) const {
    if (!value.is_array()) fail(field, std::string("is ") + type_name(value) + ", not an array");
    return value;
  }
  const std::string& string(const json& value, const std::string& field) const {
    if (!value.is_string()) fail(field, std::string("is ") + type_name(value) + ", not a string");
    return value.get_ref<const std::string&>();
  }
  bool boolean(const json& object, const std::string& field, const std::string& key,
               bool fallback) const {
    const json* value = optional_member(object, key);
    if (!value) return fallback;
    if (!value->is_boolean())
      fail(field + "." + key, std::string("is ") + type_name(*value) + ", not a boolean");
    return value->get<bool>();
  }
  std::uint64_t unsigned_integer(const json& value, const std::string& field,
                                 std::uint64_t limit) const {
    if (value.is_number_integer() && value.get<std::int64_t>() < 0)
      fail(field, "is negative (" + value.dump() + ")");
    if (!value.is_number_unsigned())
      fail(field, std::string("is ") + type_name(value) + ", not an integer");
    const auto number = value.get<std::uint64_t>();
    if (number >= limit)
      fail(field, "is " + std::to_string(number) + ", not below " + std::to_string(limit));
    return number;
  }
  std::string type_of(const json& value, const std::string& field) const {
    return string(member(object(value, field), field, "type"), field + ".type");
  }
  /// A one-character string (a char field of tokenizers).
  const std::string& character(const json& value, const std::string& field) const {
    const std::string& text = string(value, field);
    if (text.empty() || utf8::sequence_length(text, 0) != text.size())
      fail(field, "'" + text + "' is not one character");
    return text;
  }
  /// {"String": s} or {"Regex": r}: a Split's or Replace's pattern.
  std::pair<std::string, bool> pattern(const json& value, const std::string& field) const {
    object(value, field);
    if (const json* text = optional_member(value, "String"))
      return {string(*text, field + ".String"), false};
    if (const json* regex = optional_member(value, "Regex"))
      return {string(*regex, field + ".Regex"), true};
    fail(field, "has neither \"String\" nor \"Regex\"");
  }
  PrependScheme prepend_scheme(const json& value, const std::string& field) const {
    PrependScheme scheme = PrependScheme::always;
    if (const json* name = optional_member(value, "prepend_scheme")) {
      const std::string& text = string(*name, field + ".prepend_scheme");
      if (text == "always")
        scheme = PrependScheme::always;
      else if (text == "first")
        scheme = PrependScheme::first;
      else if (text == "never")
        scheme = PrependScheme::never;
      else
        fail(field + ".prepend_scheme", "'" + text + "' is not always, first or never");
    }
    // The older add_prefix_space: false must agree with the scheme, as tokenizers requires.
    if (!boolean(value, field, "add_prefix_space", true)) {
      if (scheme != PrependScheme::never)
        fail(field + ".add_prefix_space", "false does not match prepend_scheme");
    }
    return scheme;
  }

  std::shared_ptr<const detail::Regex> regex(const std::string& pattern, bool is_regex,
                                             const std::string& field) const {
    try {
      return std::make_shared<const detail::Regex>(pattern, !is_regex);
    } catch (const std::invalid_argument& e) {
      fail(field, e.what());
    }
  }

  void normalizer(const json& value, const std::string& field, Pipeline& p) const {
    const std::string type = type_of(value, field);
    if (type == "Sequence") {
      const json& steps = array(member(value, field, "normalizers"), field + ".normalizers");
      for (std::size_t i = 0; i < steps.size(); ++i)
        normalizer(steps[i], field + ".normalizers[" + std::to_string(i) + "]", p);
    } else if (type == "Prepend") {
      p.normalizer.push_back({Pipeline::NormalizerStep::Kind::prepend, "",
                              string(member(value, field, "prepend"), field + ".prepend")});
    } else if (type == "Replace") {
      const auto [text, is_regex] = pattern(member(value, field, "pattern"), field + ".pattern");
      if (is_regex) unsupported_component(field, "a Replace normalizer with a regex");
      p.normalizer.push_back({Pipeline::NormalizerStep::Kind::replace, text,
                              string(member(value, field, "content"), field + ".content")});
    } else {
      unsupported_component(field, "the normalizer '" + type + "'");
    }
  }

  void pre_tokenizer(const json& value, const std::string& field, Pipeline& p) const {
    using Step = Pipeline::PreTokenizerStep;
    const std::string type = type_of(value, field);
    if (type == "Sequence") {
      const json& steps = array(member(value, field, "pretokenizers"), field + ".pretokenizers");
      for (std::size_t i = 0; i < steps.size(); ++i)
        pre_tokenizer(steps[i], field + ".pretokenizers[" + std::to_string(i) + "]", p);
    } else if (type == "ByteLevel") {
      Step step{Step::Kind::byte_level};
      step.add_prefix_space = boolean(value, field, "add_prefix_space", true);
      if (boolean(value, field, "use_regex", true))
        step.regex = regex(std::string(pre_tokenizer_patterns::gpt2), true, field);
      p.pre_tokenizer.push_back(std::move(step));
    } else if (type == "Split") {
      Step step{Step::Kind::split};
      const auto [text, is_regex] = pattern(member(value, field, "pattern"), field + ".pattern");
      step.regex = regex(text, is_regex, field + ".pattern");
      const std::string& behavior = string(member(value, field, "behavior"), field + ".behavior");
      if (behavior == "Isolated")
        step.behavior = SplitBehavior::isolated;
      else if (behavior == "Removed")
        step.behavior = SplitBehavior::removed;
      else if (behavior == "MergedWithPrevious")
        step.behavior = SplitBehavior::merged_with_previous;
      else if (behavior == "MergedWithNext")
        step.behavior = SplitBehavior::merged_with_next;
      else if (behavior == "Contiguous")
        step.behavior = SplitBehavior::contiguous;
      else
        fail(field + ".behavior", "'" + behavior + "' is not a split behaviour");
      if (boolean(value, field, "invert", false)) unsupported_component(field, "an inverted Split");
      p.pre_tokenizer.push_back(std::move(step));
    } else if (type == "Digits") {
      // tokenizers splits at each numeric character (Isolated) or at runs of them (Contiguous).
      Step step{Step::Kind::split};
      step.regex =
          regex(boolean(value, field, "individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)", true,
                field);
      p.pre_tokenizer.push_back(std::move(step));
    } else if (type == "Metaspace") {
      Step step{Step::Kind::metaspace};
      step.replacement = character(member(value, field, "replacement"), field + ".replacement");
      step.prepend = prepend_scheme(value, field);
      step.split = boolean(value, field, "split", true);
      p.pre_tokenizer.push_back(std::move(step));
    } else {
      unsupported_component(field, "the pre-tokenizer '" + type + "'");
    }
  }

  void decoder(const json& value, const std::string& field, Pipeline& p) const {
    using Step = Pipeline::DecoderStep;
    const std::string type = type_of(value, field);
    if (type == "Sequence") {
      const json& steps = array(member(value, field, "decoders"), field + ".decoders");
      for (std::size_t i = 0; i < steps.size(); ++i)
        decoder(steps[i], field + ".decoders[" + std::to_string(i) + "]", p);
    } else if (type == "ByteLevel") {
      p.decoder.push_back(Step{Step::Kind::byte_level});
    } else if (type == "Metaspace") {
      Step step{Step::Kind::metaspace};
      step.content = character(member(value, field, "replacement"), field + ".replacement");
      step.prepend = prepend_scheme(value, field);
      p.decoder.push_back(std::move(step));
    } else if (type == "Replace") {
      const auto [text, is_regex] = pattern(member(value, field, "pattern"), field + ".pattern");
      if (is_regex) unsupported_component(field, "a Replace decoder with a regex");
      p.decoder.push_back(Step{Step::Kind::replace, text,
                               string(member(value, field, "content"), field + ".content")});
    } else if (type == "ByteFallback") {
      p.decoder.push_back(Step{Step::Kind::byte_fallback});
    } else if (type == "Fuse") {
      p.decoder.push_back(Step{Step::Kind::fuse});
    } else if (type == "Strip") {
      Step step{Step::Kind::strip};
      step.content = character(member(value, field, "content"), field + ".content");
      step.start =
          unsigned_integer(member(value, field, "start"), field + ".start", max_strip_count);
      step.stop = unsigned_integer(member(value, field, "stop"), field + ".stop", max_strip_count);
      p.decoder.push_back(std::move(step));
    } else {
      unsupported_component(field, "the decoder '" + type + "'");
    }
  }

  // The special tokens a post-processor puts before and after the text.
  void post_processor(const json& value, const std::string& field, Pipeline& p) const {
    const std::string type = type_of(value, field);
    std::vector<int> prefix, suffix;
    if (type == "Sequence") {
      const json& steps = array(member(value, field, "processors"), field + ".processors");
      for (std::size_t i = 0; i < steps.size(); ++i)
        post_processor(steps[i], field + ".processors[" + std::to_string(i) + "]", p);
      return;
    } else if (type == "ByteLevel") {
      return;  // offsets only
    } else if (type == "TemplateProcessing") {
      const json& special =
          object(member(value, field, "special_tokens"), field + ".special_tokens");
      const json& single = array(member(value, field, "single"), field + ".single");
      bool seen_text = false;
      for (std::size_t i = 0; i < single.size(); ++i) {
        const std::string item = field + ".single[" + std::to_string(i) + "]";
        object(single[i], item);
        if (const json* sequence = optional_member(single[i], "Sequence")) {
          const std::string& id =
              string(member(object(*sequence, item + ".Sequence"), item + ".Sequence", "id"),
                     item + ".Sequence.id");
          if (id != "A" || seen_text) fail(item, "a single-text template takes sequence A once");
          seen_text = true;
        } else if (const json* token = optional_member(single[i], "SpecialToken")) {
          const std::string& name =
              string(member(object(*token, item + ".SpecialToken"), item + ".SpecialToken", "id"),
                     item + ".SpecialToken.id");
          const std::string entry = field + ".special_tokens." + name;
          const json& ids = array(
              member(object(member(special, field + ".special_tokens", name), entry), entry, "ids"),
              entry + ".ids");
          for (std::size_t k = 0; k < ids.size(); ++k) {
            const auto id = static_cast<int>(unsigned_integer(
                ids[k], entry + ".ids[" + std::to_string(k) + "]", p.pieces.size()));
            if (!p.known[static_cast<std::size_t>(id)])
              fail(entry + ".ids[" + std::to_string(k) + "]",
                   "token " + std::to_string(id) + " is not in the vocabulary");
            (seen_text ? suffix : prefix).push_back(id);
          }
        } else {
          fail(item, "is neither a Sequence nor a SpecialToken");
        }
      }
      if (!seen_text) fail(field + ".single", "has no sequence A");
    } else if (type == "RobertaProcessing" || type == "BertProcessing") {
      for (const char* key : {"cls", "sep"}) {
        const std::string item = field + "." + key;
        const json& pair = array(member(value, field, key), item);
        if (pair.size() != 2) fail(item, "is not [token, id]");
        const auto id = static_cast<int>(unsigned_integer(pair[1], item + "[1]", p.pieces.size()));
        if (!p.known[static_cast<std::size_t>(id)])
          fail(item, "token " + std::to_string(id) + " is not in the vocabulary");
        (std::string(key) == "cls" ? prefix : suffix).push_back(id);
      }
    } else {
      unsupported_component(field, "the post-processor '" + type + "'");
    }
    // A later processor wraps what the earlier ones made.
    p.prefix.insert(p.prefix.begin(), prefix.begin(), prefix.end());
    p.suffix.insert(p.suffix.end(), suffix.begin(), suffix.end());
  }

  void model(const json& value, const json* added_tokens, Pipeline& p) const {
    const std::string field = "model";
    object(value, field);
    if (const json* type = optional_member(value, "type");
        type && string(*type, "model.type") != "BPE")
      unsupported_component("model.type", "the model '" + type->get<std::string>() + "'");
    const json& vocab = object(member(value, field, "vocab"), "model.vocab");
    const json& merges = array(member(value, field, "merges"), "model.merges");
    if (const json* dropout = optional_member(value, "dropout")) {
      if (!dropout->is_number()) fail("model.dropout", "is not a number");
      if (dropout->get<double>() != 0.0) unsupported_component("model.dropout", "BPE dropout");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (const json* affix = optional_member(value, key);
          affix && !string(*affix, std::string("model.") + key).empty())
        unsupported_component(std::string("model.") + key, "a subword prefix or suffix");

    // Ids: the model's tokens and the added ones. They may leave holes, but not so many that a
    // small file makes lowbit allocate for ids it never uses.
    const std::size_t added_count = added_tokens ? added_tokens->size() : 0;
    const std::uint64_t id_limit =
        std::min<std::uint64_t>(2 * (vocab.size() + added_count) + 1024,
                                static_cast<std::uint64_t>(std::numeric_limits<int>::max()));
    std::uint64_t largest = 0;
    for (const auto& [text, id] : vocab.items())
      largest = std::max(largest, unsigned_integer(id, "model.vocab." + text, id_limit));
    std::vector<std::pair<std::uint64_t, const json*>> added_ids;
    if (added_tokens)
      for (std::size_t i = 0; i < added_tokens->size(); ++i) {
        const std::string item = "added_tokens[" + std::to_string(i) + "]";
        object((*added_tokens)[i], item);
        largest = std::max(largest, unsigned_integer(member((*added_tokens)[i], item, "id"),
                                                     item + ".id", id_limit));
      }
    p.reserve_ids(vocab.empty() && added_count == 0 ? 0 : static_cast<std::size_t>(largest) + 1);
    for (const auto& [text, id_value] : vocab.items()) {
      const int id = id_value.get<int>();
      if (p.known[static_cast<std::size_t>(id)])
        fail("model.vocab." + text, "id " + std::to_string(id) + " is also the id of '" +
                                        p.pieces[static_cast<std::size_t>(id)] + "'");
      p.set_piece(id, text);
      p.vocab.emplace(text, id);
    }

    p.byte_fallback = boolean(value, field, "byte_fallback", false);
    p.fuse_unk = boolean(value, field, "fuse_unk", false);
    p.ignore_merges = boolean(value, field, "ignore_merges", false);
    p.byte_tokens.fill(-1);
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned>(b));
      if (const auto it = p.vocab.find(std::string_view(name)); it != p.vocab.end())
        p.byte_tokens[static_cast<std::size_t>(b)] = it->second;
    }
    if (const json* unk = optional_member(value, "unk_token")) {
      const std::string& text = string(*unk, "model.unk_token");
      const auto it = p.vocab.find(text);
      if (it == p.vocab.end()) fail("model.unk_token", "'" + text + "' is not in model.vocab");
      p.unk = it->second;
    }

    p.merges.reserve(merges.size());
    for (std::size_t i = 0; i < merges.size(); ++i) {
      const std::string item = "model.merges[" + std::to_string(i) + "]";
      std::string left, right;
      if (merges[i].is_string()) {
        // The older form "left right": exactly one space.
        const std::string& text = merges[i].get_ref<const std::string&>();
        const std::size_t space = text.find(' ');
        if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos)
          fail(item, "'" + text + "' is not \"left right\"");
        left = text.substr(0, space);
        right = text.substr(space + 1);
      } else {
        const json& pair = array(merges[i], item);
        if (pair.size() != 2) fail(item, "has " + std::to_string(pair.size()) + " tokens, not 2");
        left = string(pair[0], item + "[0]");
        right = string(pair[1], item + "[1]");
      }
      const auto find = [&](const std::string& text) {
        const auto it = p.vocab.find(text);
        if (it == p.vocab.end()) fail(item, "names '" + text + "', which is not in model.vocab");
        return it->second;
      };
      const int l = find(left), r = find(right), merged = find(left + right);
      // A repeated pair takes its later rank, as tokenizers' merge map does.
      p.merges[static_cast<std::uint64_t>(static_cast<std::uint32_t>(l)) << 32 |
               static_cast<std::uint32_t>(r)] = {static_cast<int>(i), merged};
    }
  }

  void added(const json& tokens, Pipeline& p) const {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const std::string item = "added_tokens[" + std::to_string(i) + "]";
      const json& token = tokens[i];
      const int id = static_cast<int>(member(token, item, "id").get<std::uint64_t>());  // checked
      const std::string& content = string(member(token, item, "content"), item + ".content");
      if (content.empty()) fail(item + ".content", "is empty");
      if (boolean(token, item, "single_word", false))
        unsupported_component(item + ".single_word", "a single_word added token");
      Pipeline::AddedToken added{content,
                                 id,
                                 boolean(token, item, "special", false),
                                 boolean(token, item, "normalized", true),
                                 boolean(token, item, "lstrip", false),
                                 boolean(token, item, "rstrip", false)};
      if (const auto it = p.vocab.find(content); it != p.vocab.end() && it->second != id)
        fail(item + ".id", "is " + std::to_string(id) + ", but model.vocab has '" + content +
                               "' as " + std::to_string(it->second));
      if (p.known[static_cast<std::size_t>(id)] &&
          p.pieces[static_cast<std::size_t>(id)] != content)
        fail(item + ".id", "is " + std::to_string(id) + ", already the id of '" +
                               p.pieces[static_cast<std::size_t>(id)] + "'");
      if (!p.added_index.emplace(content, id).second)
        fail(item + ".content", "'" + content + "' is added twice");
      p.set_piece(id, content);
      p.added.push_back(std::move(added));
    }
  }

 private:
  std::string source_;
};

}  // namespace

BpeTokenizer parse_hf_tokenizer(std::string_view text, const std::string& source) {
  const Reader reader(source);
  // Repeated keys are refused anywhere in the file: a JSON parser keeps one of them silently, and
  // which one is not the same in every implementation.
  std::vector<std::unordered_set<std::string>> keys;
  const json::parser_callback_t no_repeated_keys = [&](int, json::parse_event_t event,
                                                       json& parsed) {
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == json::parse_event_t::key && !keys.empty() &&
        !keys.back().insert(parsed.get<std::string>()).second)
      reader.fail(parsed.get<std::string>(), "the key appears twice in one object");
    return true;
  };
  json root;
  try {
    root = json::parse(text.begin(), text.end(), no_repeated_keys);
  } catch (const json::exception& e) {
    throw io_error(std::string("not valid JSON: ") + e.what(), {source, "", {}});
  }
  reader.object(root, "(the file)");

  auto p = std::make_shared<Pipeline>();
  const json* added_tokens = reader.optional_member(root, "added_tokens");
  if (added_tokens) reader.array(*added_tokens, "added_tokens");
  reader.model(reader.member(root, "(the file)", "model"), added_tokens, *p);
  if (added_tokens) reader.added(*added_tokens, *p);
  if (const json* normalizer = reader.optional_member(root, "normalizer"))
    reader.normalizer(*normalizer, "normalizer", *p);
  if (const json* pre = reader.optional_member(root, "pre_tokenizer"))
    reader.pre_tokenizer(*pre, "pre_tokenizer", *p);
  if (const json* post = reader.optional_member(root, "post_processor"))
    reader.post_processor(*post, "post_processor", *p);
  if (const json* decoder = reader.optional_member(root, "decoder")) {
    reader.decoder(*decoder, "decoder", *p);
    p->has_decoder = true;
  }
  if (p->prefix.size() == 1) p->bos = p->prefix.front();
  if (p->suffix.size() == 1) p->eos = p->suffix.front();
  p->index_added_tokens();
  return BpeTokenizer(std::shared_ptr<const Pipeline>(std::move(p)));
}

BpeTokenizer read_hf_tokenizer(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw io_error("not a regular file", {path.string(), "", {}});
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error("cannot open the tokenizer", {path.string(), "", {}});
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) throw io_error("cannot read the tokenizer", {path.string(), "", {}});
  return parse_hf_tokenizer(text.str(), path.string());
}

}  // namespace lowbit::io
