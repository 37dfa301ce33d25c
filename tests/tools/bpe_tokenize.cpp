// Encodes and decodes texts with a BpeTokenizer, for tests/python/check_tokenizers.py, which
// compares the results with Hugging Face `tokenizers`.
//
// Usage: lowbit_bpe_tokenize (--json TOKENIZER.json | --gguf-vocab VOCAB.json) CASES
// CASES holds texts as records (uint32 little-endian length, then the bytes). Prints one JSON
// array: per text {"ids", "ids_special" (with the post-processor's tokens), "decoded" and
// "decoded_skip" (decode of ids keeping and skipping special tokens, as hex)}, then timings.
// VOCAB.json has BpeVocabulary's fields by name, as a GGUF file's tokenizer.ggml.* keys hold them.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/error.hpp"
#include "lowbit/io/bpe_tokenizer.hpp"
#include "lowbit/io/bpe_vocabulary.hpp"
#include "lowbit/io/hf_tokenizer.hpp"

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw lowbit::io_error("cannot open", {path, "", {}});
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

lowbit::io::BpeTokenizer from_vocabulary_json(const char* path) {
  const auto j = nlohmann::json::parse(read_file(path));
  lowbit::io::BpeVocabulary v;
  v.model = j.at("model").get<std::string>();
  v.pre = j.value("pre", std::string("default"));
  v.tokens = j.at("tokens").get<std::vector<std::string>>();
  v.merges = j.value("merges", std::vector<std::string>{});
  v.scores = j.value("scores", std::vector<float>{});
  v.token_types = j.value("token_types", std::vector<std::int32_t>{});
  const auto id = [&](const char* key, std::optional<std::int64_t>& out) {
    if (j.contains(key)) out = j[key].get<std::int64_t>();
  };
  id("bos_id", v.bos_id);
  id("eos_id", v.eos_id);
  id("unk_id", v.unk_id);
  id("pad_id", v.pad_id);
  const auto flag = [&](const char* key, std::optional<bool>& out) {
    if (j.contains(key)) out = j[key].get<bool>();
  };
  flag("add_bos", v.add_bos);
  flag("add_eos", v.add_eos);
  flag("add_space_prefix", v.add_space_prefix);
  return lowbit::io::BpeTokenizer(v, path);
}

std::string hex(const std::string& bytes) {
  std::string out;
  char digits[3];
  for (const char c : bytes) {
    std::snprintf(digits, sizeof digits, "%02x",
                  static_cast<unsigned>(static_cast<unsigned char>(c)));
    out += digits;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s (--json FILE | --gguf-vocab FILE) CASES\n", argv[0]);
    return 2;
  }
  try {
    using clock = std::chrono::steady_clock;
    const auto load_start = clock::now();
    const std::string mode = argv[1];
    const lowbit::io::BpeTokenizer tokenizer =
        mode == "--json" ? lowbit::io::read_hf_tokenizer(argv[2]) : from_vocabulary_json(argv[2]);
    const double load_seconds = std::chrono::duration<double>(clock::now() - load_start).count();

    const std::string cases = read_file(argv[3]);
    nlohmann::json results = nlohmann::json::array();
    double encode_seconds = 0;
    std::size_t encoded_bytes = 0;
    for (std::size_t at = 0; at + 4 <= cases.size();) {
      std::uint32_t length = 0;
      for (int i = 3; i >= 0; --i)
        length = length << 8 | static_cast<unsigned char>(cases[at + static_cast<std::size_t>(i)]);
      at += 4;
      if (length > cases.size() - at) throw lowbit::io_error("truncated record", {argv[3], "", {}});
      const std::string text = cases.substr(at, length);
      at += length;
      const auto start = clock::now();
      const std::vector<int> ids = tokenizer.encode(text);
      encode_seconds += std::chrono::duration<double>(clock::now() - start).count();
      encoded_bytes += text.size();
      results.push_back({{"ids", ids},
                         {"ids_special", tokenizer.encode(text, true)},
                         {"decoded", hex(tokenizer.decode(ids))},
                         {"decoded_skip", hex(tokenizer.decode(ids, true))}});
    }
    nlohmann::json out = {{"results", results},
                          {"vocab_size", tokenizer.vocab_size()},
                          {"load_seconds", load_seconds},
                          {"encode_seconds", encode_seconds},
                          {"encoded_bytes", encoded_bytes}};
    std::cout << out.dump() << "\n";
    return 0;
  } catch (const lowbit::error& e) {
    std::fprintf(stderr, "lowbit_bpe_tokenize: %s\n", e.what());
    return 1;
  }
}
