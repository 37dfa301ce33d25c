#include "lowbit/io/model_tokenizer.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/error.hpp"
#include "lowbit/io/bpe_vocabulary.hpp"
#include "lowbit/io/hf_tokenizer.hpp"
#include "lowbit/io/llama2c.hpp"
#include "support/temp_dir.hpp"

#ifndef LOWBIT_DATA_DIR
#define LOWBIT_DATA_DIR "../shared/data"
#endif

namespace {

using Catch::Matchers::Contains;
using lowbit::io::BpeTokenizer;
using lowbit::io::BpeVocabulary;
using lowbit::io::ModelTokenizer;

const std::filesystem::path data_dir = LOWBIT_DATA_DIR;
const std::filesystem::path tok512 = data_dir / "stories260K" / "tok512.bin";
const std::filesystem::path smollm2_json =
    data_dir / "smollm2-135m" / "hf-tokenizer" / "tokenizer.json";

const std::string opening =
    "It is a truth universally acknowledged, that a single man in possession\n"
    "of a good fortune, must be in want of a wife.";

// A byte-level tokenizer.json over "a", "b", "c" with "<s>" (id 6) and `post_processor`.
std::string tiny_json(const nlohmann::json& post_processor) {
  nlohmann::json json = nlohmann::json::parse(R"({
    "added_tokens": [{"id": 6, "content": "<s>", "special": true, "normalized": false,
                      "lstrip": false, "rstrip": false, "single_word": false}],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "bc": 5, "<s>": 6},
              "merges": [["a", "b"], "ab c", ["b", "c"]]}})");
  json["post_processor"] = post_processor;
  return json.dump();
}

// A GGUF-style vocabulary of each model type, with BOS 1 and `add_bos` as the file says.
BpeVocabulary gguf_vocabulary(const std::string& model, std::optional<bool> add_bos) {
  BpeVocabulary v;
  v.model = model;
  v.tokens = {"<unk>", "<s>", "</s>", "a", "b", "ab", "\xE2\x96\x81"};  // "▁": llama's space prefix
  v.token_types = {2, 3, 3, 1, 1, 1, 1};
  if (model == "gpt2")
    v.merges = {"a b"};
  else
    v.scores = {0, 0, 0, 0, 0, -1, 0};
  v.bos_id = 1;
  v.eos_id = 2;
  v.add_bos = add_bos;
  return v;
}

}  // namespace

TEST_CASE("A llama2.c tokenizer: BOS 1, the dummy prefix and the chunked corpus encoding",
          "[io][model_tokenizer]") {
  const ModelTokenizer tokenizer = lowbit::io::read_model_tokenizer(tok512, 512, "stories260K");
  CHECK(tokenizer.kind() == ModelTokenizer::Kind::llama2c);
  CHECK(tokenizer.kind_name() == "llama2.c");
  CHECK(tokenizer.source() == tok512.string());
  CHECK(tokenizer.vocab_size() == 512);
  CHECK(tokenizer.bos() == 1);
  const auto direct = lowbit::io::read_llama2c_tokenizer(tok512, 512);
  const std::vector<int> ids = tokenizer.encode(opening);
  CHECK(ids == direct.encode(opening, false, false));  // the dummy prefix, no BOS or EOS
  CHECK(ids == lowbit::io::encode_corpus(direct, opening));
  CHECK(ids.front() != 1);
  CHECK(tokenizer.decode(ids) == opening);

  // The file holds exactly the model's vocabulary: another size is refused, naming both.
  for (const int wrong : {600, 400}) {
    INFO(wrong);
    CHECK_THROWS_AS(lowbit::io::read_model_tokenizer(tok512, wrong, "m.bin"), lowbit::io_error);
    CHECK_THROWS_WITH(lowbit::io::read_model_tokenizer(tok512, wrong, "m.bin"),
                      Contains(tok512.string()) && Contains("llama2.c") &&
                          Contains(std::to_string(wrong) + " tokens") && Contains("'m.bin'"));
  }
}

TEST_CASE("A tokenizer.json: no prefix space, BOS only where its post-processor adds one",
          "[io][model_tokenizer]") {
  const ModelTokenizer smollm2 = lowbit::io::read_model_tokenizer(smollm2_json, 49152);
  CHECK(smollm2.kind() == ModelTokenizer::Kind::tokenizer_json);
  CHECK(smollm2.kind_name() == "tokenizer.json");
  CHECK(smollm2.vocab_size() == 49152);
  CHECK_FALSE(smollm2.bos().has_value());  // SmolLM2 adds no BOS
  const BpeTokenizer direct = lowbit::io::read_hf_tokenizer(smollm2_json);
  const std::vector<int> ids = smollm2.encode(opening);
  CHECK(ids == direct.encode(opening, false));
  // "It" begins the text with no space before it: no dummy prefix ("ĠIt" would be another id).
  CHECK(ids.front() == direct.token_id("It"));
  CHECK(smollm2.decode(ids) == opening);
  // Special tokens in the text are the text's; none is added around it.
  CHECK(smollm2.encode("<|im_start|>a") == direct.encode("<|im_start|>a", false));
  // A model with more rows than the tokenizer has tokens is fine (padded vocabularies).
  CHECK(lowbit::io::read_model_tokenizer(smollm2_json, 49216).vocab_size() == 49152);

  const lowbit::test::TempDir dir;
  const nlohmann::json bos_template = nlohmann::json::parse(R"({
      "type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "pair": [],
      "special_tokens": {"<s>": {"id": "<s>", "ids": [6], "tokens": ["<s>"]}}})");
  const std::string with_bos = tiny_json(bos_template);
  // Leading whitespace still reads as JSON.
  const auto bos_file = dir.write("bos.json", std::vector<char>(with_bos.begin(), with_bos.end()));
  const ModelTokenizer llama3_like = lowbit::io::read_model_tokenizer(bos_file, 7);
  CHECK(llama3_like.bos() == 6);
  CHECK(llama3_like.encode("abc") == std::vector<int>{4});  // still no BOS in the text's ids
  const std::string plain = "\n  " + tiny_json(nullptr);
  const auto plain_file = dir.write("plain.json", std::vector<char>(plain.begin(), plain.end()));
  CHECK_FALSE(lowbit::io::read_model_tokenizer(plain_file, 7).bos().has_value());
}

TEST_CASE("A tokenizer with more tokens than the model has rows is refused, naming both",
          "[io][model_tokenizer]") {
  CHECK_THROWS_AS(lowbit::io::read_model_tokenizer(smollm2_json, 512, "f32"),
                  lowbit::invalid_argument);
  CHECK_THROWS_WITH(lowbit::io::read_model_tokenizer(smollm2_json, 512, "f32"),
                    Contains(smollm2_json.string()) && Contains("49152 tokens") &&
                        Contains("512 rows") && Contains("'f32'"));
  CHECK_THROWS_AS(lowbit::io::read_model_tokenizer(smollm2_json, 0), lowbit::invalid_argument);
}

TEST_CASE("A GGUF vocabulary feeds BOS as add_bos_token says, else llama.cpp's default",
          "[io][model_tokenizer]") {
  struct Case {
    std::string model;
    std::optional<bool> add_bos;
    bool bos;
  };
  for (const Case& c : {Case{"gpt2", std::nullopt, false}, Case{"gpt2", true, true},
                        Case{"gpt2", false, false}, Case{"llama", std::nullopt, true},
                        Case{"llama", false, false}, Case{"llama", true, true}}) {
    INFO(c.model << " add_bos " << (c.add_bos ? (*c.add_bos ? "true" : "false") : "absent"));
    const ModelTokenizer tokenizer(BpeTokenizer(gguf_vocabulary(c.model, c.add_bos), "m.gguf"),
                                   ModelTokenizer::Kind::gguf, "m.gguf");
    CHECK(tokenizer.kind_name() == "GGUF");
    CHECK(tokenizer.bos() == (c.bos ? std::optional<int>(1) : std::nullopt));
    CHECK(tokenizer.vocab_size() == 7);
    // The corpus never gets the BOS, whatever the model is fed.
    const std::vector<int> ids = tokenizer.encode("ab");
    CHECK(std::find(ids.begin(), ids.end(), 1) == ids.end());
  }
  CHECK_THROWS_AS(ModelTokenizer(BpeTokenizer(gguf_vocabulary("gpt2", false)),
                                 ModelTokenizer::Kind::llama2c, "x"),
                  lowbit::invalid_argument);
}

TEST_CASE("A GGUF model's own vocabulary: SmolLM2 adds no BOS and encodes as its tokenizer.json",
          "[io][model_tokenizer]") {
  const std::filesystem::path gguf = data_dir / "smollm2-135m" / "SmolLM2-135M-Instruct.Q4_1.gguf";
  const ModelTokenizer tokenizer = lowbit::io::read_model_tokenizer(gguf, 49152, "smollm2");
  CHECK(tokenizer.kind() == ModelTokenizer::Kind::gguf);
  CHECK(tokenizer.vocab_size() == 49152);
  CHECK_FALSE(tokenizer.bos().has_value());  // tokenizer.ggml.add_bos_token = false
  const std::vector<int> ids = tokenizer.encode(opening);
  CHECK(ids == lowbit::io::read_hf_tokenizer(smollm2_json).encode(opening, false));
  CHECK(tokenizer.decode(ids) == opening);
  CHECK_THROWS_WITH(lowbit::io::read_model_tokenizer(gguf, 49151, "smollm2"),
                    Contains(gguf.string()) && Contains("GGUF tokenizer has 49152 tokens") &&
                        Contains("49151 rows") && Contains("'smollm2'"));
}

TEST_CASE("A file that is no tokenizer is an error naming it", "[io][model_tokenizer]") {
  const lowbit::test::TempDir dir;
  const auto refused = [](const std::filesystem::path& file, const std::string& reason) {
    INFO(file.string());
    CHECK_THROWS_AS(lowbit::io::read_model_tokenizer(file, 512), lowbit::io_error);
    CHECK_THROWS_WITH(lowbit::io::read_model_tokenizer(file, 512),
                      Contains(file.string()) && Contains(reason));
  };
  refused(dir.path, "not a regular file");
  refused(dir.path / "missing.json", "not a regular file");
  refused(dir.write("empty.bin", {}), "ends inside the header");
  const std::string truncated = tiny_json(nullptr).substr(0, 80);
  refused(dir.write("truncated.json", {truncated.begin(), truncated.end()}), "");
  // A SentencePiece .model (protobuf) is neither GGUF nor JSON: read as llama2.c, and refused.
  refused(dir.write("tokenizer.model", {'\x0a', '\x0b', '<', 'u', 'n', 'k', '>'}), "llama2.c");
  // GGUF's magic with nothing after it.
  refused(dir.write("bad.gguf", {'G', 'G', 'U', 'F', 3, 0}), "");
}
