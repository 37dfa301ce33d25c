#include "lowbit/io/bpe_tokenizer.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/error.hpp"
#include "lowbit/io/bpe_vocabulary.hpp"
#include "lowbit/io/hf_tokenizer.hpp"

namespace {

using lowbit::io::BpeTokenizer;
using lowbit::io::BpeVocabulary;

const std::string data_dir = LOWBIT_DATA_DIR;
const std::string smollm2_json = data_dir + "/smollm2-135m/hf-tokenizer/tokenizer.json";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

const BpeTokenizer& smollm2() {
  static const BpeTokenizer tokenizer = lowbit::io::read_hf_tokenizer(smollm2_json);
  return tokenizer;
}

// SmolLM2's tokenizer.json as a GGUF carries it: every token in id order (the added ones too,
// typed control), merges as "left right", and a pre-tokenizer name.
BpeVocabulary smollm2_as_gguf(const std::string& pre) {
  const auto json = nlohmann::json::parse(read_text(smollm2_json));
  BpeVocabulary v;
  v.model = "gpt2";
  v.pre = pre;
  v.tokens.resize(json["model"]["vocab"].size());
  for (const auto& [text, id] : json["model"]["vocab"].items())
    v.tokens[id.get<std::size_t>()] = text;
  v.token_types.assign(v.tokens.size(), 1);
  for (const auto& added : json["added_tokens"])
    v.token_types[added["id"].get<std::size_t>()] = added["special"].get<bool>() ? 3 : 4;
  for (const auto& merge : json["model"]["merges"])
    v.merges.push_back(merge[0].get<std::string>() + " " + merge[1].get<std::string>());
  v.bos_id = 1;
  v.eos_id = 2;
  v.add_bos = false;
  return v;
}

// A small tokenizer.json: byte-level BPE over "a", "b", "c" (and what the tests add).
nlohmann::json tiny_json() {
  return nlohmann::json::parse(R"({
    "added_tokens": [{"id": 6, "content": "<s>", "special": true, "normalized": false,
                      "lstrip": false, "rstrip": false, "single_word": false}],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "post_processor": null,
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "bc": 5, "<s>": 6},
              "merges": [["a", "b"], "ab c", ["b", "c"]]}})");
}

BpeTokenizer parse(const nlohmann::json& json) {
  return lowbit::io::parse_hf_tokenizer(json.dump(), "tiny.json");
}

double seconds_to_encode(const BpeTokenizer& tokenizer, const std::string& text) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int> ids = tokenizer.encode(text);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(!ids.empty());
  return seconds;
}

}  // namespace

TEST_CASE("SmolLM2's tokenizer.json encodes and decodes as tokenizers does", "[io][bpe]") {
  const BpeTokenizer& t = smollm2();
  CHECK(t.vocab_size() == 49152);
  // Ids from tokenizers 0.23.3's Tokenizer.from_file(...).encode(text).ids.
  CHECK(t.encode("Hello world") == std::vector<int>{19556, 905});
  CHECK(t.encode("12345 abc 2024") ==
        std::vector<int>{33, 34, 35, 36, 37, 43239, 216, 34, 32, 34, 36});
  CHECK(t.encode("<|im_start|>user") == std::vector<int>{1, 4093});
  CHECK(t.encode("").empty());
  CHECK(t.is_special(1));
  CHECK(t.token_id("<|im_end|>") == 2);
  const std::string text = "<|im_start|>It's 日本語 🚀\n\n  \t x";
  const std::vector<int> ids = t.encode(text);
  CHECK(t.decode(ids) == text);
  CHECK(t.decode(ids, true) == "It's 日本語 🚀\n\n  \t x");
  CHECK_THROWS_AS(t.decode(std::vector<int>{49152}), lowbit::invalid_argument);
  CHECK_THROWS_AS(t.piece(-1), lowbit::invalid_argument);
}

TEST_CASE("Invalid UTF-8 encodes as its U+FFFD replacement", "[io][bpe]") {
  const BpeTokenizer& t = smollm2();
  // Maximal subparts: "\xE6\x97" (a truncated 3-byte sequence) is one U+FFFD, "\xFF" another.
  CHECK(t.encode("a\xE6\x97\xFFz") == t.encode("a\xEF\xBF\xBD\xEF\xBF\xBDz"));
  CHECK(t.encode("\xC0\xAF") == t.encode("\xEF\xBF\xBD\xEF\xBF\xBD"));  // overlong: two bytes
  CHECK(t.encode("\xED\xA0\x80") == t.encode("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"));
}

TEST_CASE("Merges apply by rank, the leftmost first among equals", "[io][bpe]") {
  const BpeTokenizer t = parse(tiny_json());
  CHECK(t.encode("abc") == std::vector<int>{4});      // ab (rank 0), then ab c
  CHECK(t.encode("bcab") == std::vector<int>{5, 3});  // no merge across: one pre-token "bcab"
  CHECK(t.encode("abab<s>c") == std::vector<int>{3, 3, 6, 2});
  CHECK(t.decode(std::vector<int>{3, 6, 2}) == "ab<s>c");
  CHECK(t.decode(std::vector<int>{3, 6, 2}, true) == "abc");
  // A character outside the vocabulary, with no <unk>, is dropped (as tokenizers drops it).
  // "a" and "b" then meet and merge.
  CHECK(t.encode("axb") == std::vector<int>{3});
}

TEST_CASE("A GGUF vocabulary gives the ids of the tokenizer.json it came from", "[io][bpe]") {
  const std::string book = read_text(data_dir + "/text/pride-and-prejudice.txt");
  REQUIRE(book.size() > 600000);
  const std::vector<int> expected = smollm2().encode(book);
  CHECK(expected.size() == 167892);  // tokenizers 0.23.3
  const BpeTokenizer gguf(smollm2_as_gguf("smollm"), "smollm2.gguf");
  CHECK(gguf.encode(book) == expected);
  const std::string hostile = "<|im_start|>It's 日本語 🚀 x1 22\n\n<|im_end|>";
  CHECK(gguf.encode(hostile) == smollm2().encode(hostile));
  CHECK(gguf.decode(gguf.encode(hostile)) == hostile);
  CHECK(gguf.bos_id() == 1);
  // llama.cpp's "smollm" splits digits before GPT-2's regex, SmolLM2's tokenizer.json does not:
  // two spaces before a digit then merge into one token ("ĠĠ") instead of two.
  CHECK(gguf.encode("a  1") == std::vector<int>{81, 256, 33});
  CHECK(smollm2().encode("a  1") == std::vector<int>{81, 216, 216, 33});
  CHECK(BpeTokenizer(smollm2_as_gguf("gpt-2")).encode("a  1") == smollm2().encode("a  1"));
}

TEST_CASE("A bad GGUF vocabulary is an error naming the key", "[io][bpe]") {
  const auto message = [](const BpeVocabulary& v) {
    try {
      BpeTokenizer tokenizer(v, "model.gguf");
    } catch (const lowbit::error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  BpeVocabulary v = smollm2_as_gguf("smollm");
  v.pre = "no-such-pre";
  CHECK_THAT(message(v), Catch::Contains("'no-such-pre'") && Catch::Contains("model.gguf"));
  v = smollm2_as_gguf("smollm");
  v.merges[7] = "Ġ zzzq";
  CHECK_THAT(message(v), Catch::Contains("merges[7]") && Catch::Contains("zzzq"));
  v = smollm2_as_gguf("smollm");
  v.merges[3] = "nospace";
  CHECK_THAT(message(v), Catch::Contains("merges[3]"));
  v = smollm2_as_gguf("smollm");
  v.bos_id = 49152;
  CHECK_THAT(message(v), Catch::Contains("bos_token_id"));
  v = smollm2_as_gguf("smollm");
  v.eos_id = -1;
  CHECK_THAT(message(v), Catch::Contains("eos_token_id"));
  v = smollm2_as_gguf("smollm");
  v.tokens[100] = v.tokens[101];
  CHECK_THAT(message(v), Catch::Contains("repeats"));
  v = smollm2_as_gguf("smollm");
  v.token_types.pop_back();
  CHECK_THAT(message(v), Catch::Contains("token_type"));
  v = smollm2_as_gguf("smollm");
  v.model = "bert";
  CHECK_THAT(message(v), Catch::Contains("'bert'"));
  v = BpeVocabulary{};
  v.model = "llama";
  v.tokens = {"<unk>", "a"};
  v.add_bos = false;
  v.scores = {0.0f};
  CHECK_THAT(message(v), Catch::Contains("scores"));
  v.scores = {0.0f, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THAT(message(v), Catch::Contains("NaN"));
}

TEST_CASE("A GGUF llama vocabulary merges by score with byte fallback", "[io][bpe]") {
  BpeVocabulary v;
  v.model = "llama";
  v.tokens = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned>(b));
    v.tokens.emplace_back(name);
  }
  const int first = static_cast<int>(v.tokens.size());
  for (const char* piece : {"\xE2\x96\x81", "a", "b", "ab",
                            "\xE2\x96\x81"
                            "ab",
                            "ba"})
    v.tokens.emplace_back(piece);
  v.scores.assign(v.tokens.size(), 0.0f);
  v.scores[static_cast<std::size_t>(first + 3)] = -1.0f;  // ab
  v.scores[static_cast<std::size_t>(first + 4)] = -2.0f;  // ▁ab
  v.scores[static_cast<std::size_t>(first + 5)] = -0.5f;  // ba: beats ab
  v.token_types.assign(v.tokens.size(), 1);
  v.token_types[0] = 2;
  v.token_types[1] = v.token_types[2] = 3;
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  const BpeTokenizer t(v);
  const int space = first, a = first + 1, b = first + 2, ab = first + 3, space_ab = first + 4,
            ba = first + 5;
  CHECK(t.encode("ab") == std::vector<int>{space_ab});
  CHECK(t.encode("aba") == std::vector<int>{space, a, ba});  // "ba" (-0.5) before "ab" (-1)
  CHECK(t.encode("ab", true) == std::vector<int>{1, space_ab});
  // "é" has no token: its two bytes.
  CHECK(t.encode("b\xC3\xA9") == std::vector<int>{space, b, 3 + 0xC3, 3 + 0xA9});
  CHECK(t.decode(t.encode("ab ab\xC3\xA9")) == "ab ab\xC3\xA9");
  (void)ab;
}

TEST_CASE("Encoding is not quadratic in a pre-token's length", "[io][bpe]") {
  const BpeTokenizer& t = smollm2();
  // Texts of 1 MB and of 64 kB, each one pre-token (no space), or only spaces, newlines or CJK:
  // 16 times the text must cost far less than 256 times the time (quadratic). A ratio, not a
  // wall-clock bound, so that slow builds (sanitizers) and busy machines do not matter; the speed
  // itself is bench_tokenizer's.
  const auto make = [](std::size_t bytes, const std::string& unit, const std::string& prefix) {
    std::string text = prefix;
    while (text.size() < bytes) text += unit;
    return text;
  };
  const std::pair<std::string, std::string> kinds[] = {
      {"a", ""}, {"x", "ab"}, {" ", ""}, {"\n", ""}, {"日本語", ""}};
  for (const auto& [unit, prefix] : kinds) {
    const double small = seconds_to_encode(t, make(std::size_t{1} << 16, unit, prefix));
    const double large = seconds_to_encode(t, make(std::size_t{1} << 20, unit, prefix));
    INFO("unit '" << unit << "': 64 kB in " << small << " s, 1 MB in " << large << " s");
    CHECK(large < 64 * std::max(small, 1e-3));
  }
}

TEST_CASE("A malformed tokenizer.json is an io_error naming the file and the field",
          "[io][bpe][hostile]") {
  const auto message = [](const std::string& text) {
    try {
      lowbit::io::parse_hf_tokenizer(text, "bad.json");
    } catch (const lowbit::error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const auto edited = [](auto edit) {
    nlohmann::json json = tiny_json();
    edit(json);
    return json.dump();
  };
  CHECK_THAT(message(""), Catch::Contains("bad.json") && Catch::Contains("JSON"));
  const std::string whole = tiny_json().dump();
  CHECK_THAT(message(whole.substr(0, whole.size() / 2)), Catch::Contains("not valid JSON"));
  CHECK_THAT(message("[1, 2]"), Catch::Contains("not an object"));
  CHECK_THAT(message("{}"), Catch::Contains("'(the file).model': is missing"));
  CHECK_THAT(message(edited([](auto& j) { j["model"]["vocab"] = "x"; })),
             Catch::Contains("'model.vocab'") && Catch::Contains("not an object"));
  CHECK_THAT(message(edited([](auto& j) { j["model"]["vocab"]["d"] = -3; })),
             Catch::Contains("'model.vocab.d'") && Catch::Contains("negative"));
  CHECK_THAT(message(edited([](auto& j) { j["model"]["vocab"]["d"] = 4000000000u; })),
             Catch::Contains("'model.vocab.d'") && Catch::Contains("not below"));
  CHECK_THAT(message(edited([](auto& j) { j["model"]["vocab"]["d"] = 1.5; })),
             Catch::Contains("'model.vocab.d'") && Catch::Contains("not an integer"));
  CHECK_THAT(message(edited([](auto& j) { j["model"]["vocab"]["d"] = 2; })),
             Catch::Contains("also the id of"));
  CHECK_THAT(message(edited([](auto& j) {
               j["model"]["merges"][1] = {"ab", "zz"};
             })),
             Catch::Contains("'model.merges[1]'") && Catch::Contains("'zz'"));
  CHECK_THAT(message(edited([](auto& j) {
               j["model"]["merges"][2] = {"b", "c", "d"};
             })),
             Catch::Contains("'model.merges[2]'"));
  CHECK_THAT(message(edited([](auto& j) { j["model"]["merges"][1] = "abc"; })),
             Catch::Contains("'model.merges[1]'"));
  CHECK_THAT(message(edited([](auto& j) { j["model"]["merges"][0] = 7; })),
             Catch::Contains("'model.merges[0]'") && Catch::Contains("not an array"));
  CHECK_THAT(message(edited([](auto& j) { j["model"]["unk_token"] = "<unk>"; })),
             Catch::Contains("'model.unk_token'"));
  CHECK_THAT(message(edited([](auto& j) { j["added_tokens"][0]["id"] = 2; })),
             Catch::Contains("'added_tokens[0].id'"));
  CHECK_THAT(message(edited([](auto& j) { j["added_tokens"][0]["id"] = -1; })),
             Catch::Contains("'added_tokens[0].id'") && Catch::Contains("negative"));
  CHECK_THAT(message(edited([](auto& j) { j["added_tokens"][0]["content"] = 5; })),
             Catch::Contains("'added_tokens[0].content'"));
  CHECK_THAT(message(edited([](auto& j) { j["added_tokens"].push_back(j["added_tokens"][0]); })),
             Catch::Contains("added twice"));
  CHECK_THAT(message(edited([](auto& j) {
               j["pre_tokenizer"] = {{"type", "Split"}};
             })),
             Catch::Contains("'pre_tokenizer.pattern': is missing"));
  CHECK_THAT(message(edited([](auto& j) {
               j["pre_tokenizer"] = {{"type", "Split"},
                                     {"pattern", {{"Regex", "(unclosed"}}},
                                     {"behavior", "Isolated"}};
             })),
             Catch::Contains("'pre_tokenizer.pattern'") && Catch::Contains("compile"));
  CHECK_THAT(message(edited([](auto& j) {
               j["decoder"] = {{"type", 3}};
             })),
             Catch::Contains("'decoder.type'"));
  CHECK_THAT(message(edited([](auto& j) {
               j["decoder"] = {{"type", "Strip"}, {"content", "ab"}, {"start", 1}, {"stop", 0}};
             })),
             Catch::Contains("'decoder.content'"));
  // A repeated key (here a token of the vocabulary) in any object.
  std::string repeated = whole;
  repeated.replace(repeated.find("\"ab\":3"), 6, "\"a\":3");
  CHECK_THAT(message(repeated), Catch::Contains("appears twice"));
  // What lowbit does not implement is named.
  CHECK_THAT(message(edited([](auto& j) {
               j["normalizer"] = {{"type", "NFC"}};
             })),
             Catch::Contains("'NFC'") && Catch::Contains("not supported"));
  CHECK_THAT(message(edited([](auto& j) { j["model"]["type"] = "Unigram"; })),
             Catch::Contains("'Unigram'"));
  CHECK_THAT(message(edited([](auto& j) { j["model"]["dropout"] = 0.1; })),
             Catch::Contains("dropout"));
  CHECK_THROWS_AS(lowbit::io::read_hf_tokenizer(data_dir), lowbit::io_error);
  CHECK_THROWS_AS(lowbit::io::read_hf_tokenizer(data_dir + "/no-such.json"), lowbit::io_error);
}
