// Writes the seed corpora of the fuzz harnesses with lowbit's own writers and quantizers, so that
// the fuzzers start from files lowbit itself produces (scripts/fuzz.sh runs it; nothing binary is
// committed).
//
// Usage: lowbit_fuzz_seeds OUT_DIR [DATA_DIR]
// Writes OUT_DIR/llama2c/, OUT_DIR/safetensors/, OUT_DIR/quantized/, OUT_DIR/sharded_index/ and
// OUT_DIR/tokenizer/, one directory per harness; prints how many seeds each holds. DATA_DIR (the
// project's ../shared/data) adds the tokenizer seeds built around stories260K/tok512.bin.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "gguf_seeds.hpp"
#include "lowbit/algo/methods.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/io/named_quantized.hpp"
#include "lowbit/io/quantized_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/pipeline/quantize_checkpoint.hpp"

namespace {

namespace fs = std::filesystem;
using namespace lowbit;
using namespace lowbit::io;

// Small models, so that the fuzzers run fast: every array is tiny, yet the shapes exercise
// grouped-query attention, an unshared classifier and more than one layer.
struct TinyLlama {
  const char* name;
  int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
  bool shared_classifier;
};
constexpr TinyLlama tiny_llamas[] = {
    {"tiny", 8, 12, 1, 2, 1, 8, 4, true},
    {"tiny-unshared", 8, 8, 2, 2, 2, 6, 2, false},
    {"small", 32, 64, 1, 4, 2, 32, 8, true},
};

// A llama2.c checkpoint (version 0): the seven int32 fields, then the float32 arrays in file order.
void write_llama2c(const fs::path& path, const TinyLlama& m, std::mt19937& rng) {
  std::normal_distribution<float> weight(0.0f, 0.2f);
  std::vector<float> values;
  const auto add = [&](std::size_t count, bool norm) {
    for (std::size_t i = 0; i < count; ++i)
      values.push_back(norm ? 1.0f + weight(rng) : weight(rng));
  };
  const auto dim = static_cast<std::size_t>(m.dim), hidden = static_cast<std::size_t>(m.hidden_dim),
             layers = static_cast<std::size_t>(m.n_layers),
             vocab = static_cast<std::size_t>(m.vocab_size),
             kv_dim =
                 dim / static_cast<std::size_t>(m.n_heads) * static_cast<std::size_t>(m.n_kv_heads),
             rope = static_cast<std::size_t>(m.seq_len) * dim /
                    static_cast<std::size_t>(m.n_heads) / 2;
  add(vocab * dim, false);
  add(layers * dim, true);
  add(layers * dim * dim, false);
  add(layers * kv_dim * dim, false);
  add(layers * kv_dim * dim, false);
  add(layers * dim * dim, false);
  add(layers * dim, true);
  add(layers * hidden * dim, false);
  add(layers * dim * hidden, false);
  add(layers * hidden * dim, false);
  add(dim, true);
  add(2 * rope, false);  // freq_cis_real, freq_cis_imag (ignored by the reader)
  if (!m.shared_classifier) add(vocab * dim, false);
  const std::int32_t header[7] = {m.dim,        m.hidden_dim,
                                  m.n_layers,   m.n_heads,
                                  m.n_kv_heads, m.shared_classifier ? m.vocab_size : -m.vocab_size,
                                  m.seq_len};
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(header), sizeof header);
  out.write(reinterpret_cast<const char*>(values.data()),
            static_cast<std::streamsize>(values.size() * sizeof(float)));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

template <typename T>
std::vector<std::byte> bytes_of(const std::vector<T>& v) {
  const auto b = std::as_bytes(std::span<const T>(v));
  return {b.begin(), b.end()};
}

// One tensor of every dtype safetensors defines, an empty and a scalar one, with metadata.
void write_every_dtype(const fs::path& path) {
  std::vector<TensorToWrite> tensors;
  std::vector<std::vector<std::byte>> storage;
  const DType dtypes[] = {DType::F64,     DType::F32, DType::F16, DType::BF16, DType::F8_E4M3,
                          DType::F8_E5M2, DType::I64, DType::I32, DType::I16,  DType::I8,
                          DType::U64,     DType::U32, DType::U16, DType::U8,   DType::BOOL};
  storage.reserve(std::size(dtypes) + 1);
  std::uint8_t next = 1;
  for (DType dtype : dtypes) {
    std::vector<std::byte> bytes(3 * dtype_size(dtype));
    for (auto& b : bytes) b = std::byte{next++};
    if (dtype == DType::BOOL)
      for (auto& b : bytes) b = std::byte{static_cast<std::uint8_t>(std::to_integer<int>(b) & 1)};
    storage.push_back(std::move(bytes));
    tensors.push_back(
        {std::string("t.") + std::string(dtype_name(dtype)), dtype, {3}, storage.back()});
  }
  storage.push_back(bytes_of(std::vector<float>{1.5f}));
  tensors.push_back({"scalar", DType::F32, {}, storage.back()});
  tensors.push_back({"empty", DType::F32, {0, 4}, {}});
  order_like_reference(tensors);
  write_safetensors(path, tensors, {{"format", "pt"}, {"note", "every dtype"}});
}

// The method variants the seeds cover: every calibration-free method, some in several settings.
std::vector<MethodOptions> method_variants() {
  std::vector<MethodOptions> variants;
  for (const std::string& method : Quantizer::method_names()) {
    MethodOptions options;
    options.method = method;
    variants.push_back(options);
  }
  MethodOptions o;
  o.method = "rtn";
  o.bits = 3;
  o.group = 32;
  o.symmetric = true;
  variants.push_back(o);
  o = {};
  o.method = "rtn";
  o.bits = 2;
  o.group = 0;  // per output channel
  o.scale_format = ScalarFormat::f32;
  variants.push_back(o);
  o = {};
  o.method = "rtn";
  o.bits = 8;
  o.group = -1;  // per tensor
  o.scale_format = ScalarFormat::bf16;
  o.mse_clip = true;
  variants.push_back(o);
  o = {};
  o.method = "kmeans";
  o.bits = 2;
  o.group = 64;
  variants.push_back(o);
  o = {};
  o.method = "nf4";
  o.double_quant = true;
  variants.push_back(o);
  o = {};
  o.method = "fp8";
  o.group = 32;
  variants.push_back(o);
  o = {};
  o.method = "higgs";
  o.bits = 2;
  o.group = 128;
  o.higgs_dimension = 1;
  variants.push_back(o);
  return variants;
}

std::string file_name(const std::string& description) {
  std::string name;
  for (char c : description) name += (std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
  return name;
}

void write_quantized_file(const fs::path& path, const std::vector<NamedQuantized>& matrices,
                          const std::vector<float>& extra) {
  std::vector<TensorLayout> layout{{"norm.weight", DType::F32, {extra.size()}}};
  std::map<std::string, std::string> metadata{{"format", "pt"}};
  for (const auto& [name, q] : matrices) {
    for (auto& part : quantized_layout(name, q.scheme(), q.rows(), q.cols()))
      layout.push_back(part);
    add_quantization_metadata(metadata, name, q.scheme(), q.rows(), q.cols(), q.input_rotation());
  }
  SafetensorsWriter writer(path, layout, metadata);
  writer.write("norm.weight", std::as_bytes(std::span<const float>(extra)));
  for (const auto& [name, q] : matrices) write_quantized(writer, name, q);
  writer.finish();
}

// fuzz_tokenizer's input (see its header): flags, vocab_size, the tokenizer file's length, the
// file, then the text to encode.
void write_tokenizer_seed(const fs::path& path, std::uint8_t flags, std::uint16_t vocab_size,
                          const std::string& file, const std::string& text) {
  std::string seed(1, static_cast<char>(flags));
  for (int i = 0; i < 2; ++i) seed += static_cast<char>(vocab_size >> (8 * i) & 0xff);
  const auto length = static_cast<std::uint32_t>(file.size());
  for (int i = 0; i < 4; ++i) seed += static_cast<char>(length >> (8 * i) & 0xff);
  std::ofstream(path, std::ios::binary) << seed << file << text;
}

// A libFuzzer dictionary for the JSON the harnesses parse: every key and string value (quoted, as
// it appears in a header) and every number in the seeds' safetensors headers, the JSON held in
// their metadata values too, plus the integers where sizes overflow. Mutations then splice
// whole field names, enum names and boundary values instead of finding them byte by byte.
void add_json_tokens(const nlohmann::json& j, std::set<std::string>& tokens) {
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      tokens.insert(nlohmann::json(key).dump());
      add_json_tokens(value, tokens);
    }
  } else if (j.is_array()) {
    for (const auto& value : j) add_json_tokens(value, tokens);
  } else if (j.is_string()) {
    tokens.insert(j.dump());
    const auto inner = nlohmann::json::parse(j.get<std::string>(), nullptr, false);
    if (!inner.is_discarded() && inner.is_structured()) add_json_tokens(inner, tokens);
  } else {
    tokens.insert(j.dump());
  }
}

void write_json_dictionary(const fs::path& path, const std::vector<fs::path>& seed_dirs) {
  std::set<std::string> tokens{"0",
                               "1",
                               "-1",
                               "255",
                               "256",
                               "65535",
                               "65536",
                               "2147483647",
                               "2147483648",
                               "4294967295",
                               "4294967296",
                               "9223372036854775807",
                               "9223372036854775808",
                               "18446744073709551615",
                               "18446744073709551616",
                               "1e308",
                               "1e309",
                               "-0",
                               "null",
                               "true",
                               "[]",
                               "{}"};
  for (const fs::path& dir : seed_dirs) {
    for (const auto& entry : fs::directory_iterator(dir)) {
      std::ifstream in(entry.path(), std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
      // A safetensors file's header follows its 8-byte length; an index is JSON throughout.
      std::string_view json_text = bytes;
      if (entry.path().extension() == ".safetensors") {
        std::uint64_t length = 0;
        for (int i = 7; i >= 0; --i)
          length = length << 8 | static_cast<unsigned char>(bytes.at(static_cast<std::size_t>(i)));
        json_text = json_text.substr(8, length);
      }
      const auto j = nlohmann::json::parse(json_text, nullptr, false);
      if (!j.is_discarded()) add_json_tokens(j, tokens);
    }
  }
  std::ofstream out(path);
  for (const std::string& token : tokens) {
    if (token.size() > 64) continue;  // libFuzzer's longest dictionary word
    out << '"';
    for (char c : token) {
      const auto byte = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out << '\\' << c;
      } else if (byte < 0x20 || byte >= 0x7f) {
        static constexpr char digits[] = "0123456789abcdef";
        out << "\\x" << digits[byte >> 4] << digits[byte & 15];
      } else {
        out << c;
      }
    }
    out << "\"\n";
  }
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

int count_files(const fs::path& dir) {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++n;
  return n;
}

}  // namespace

// fuzz_hf_tokenizer's input: flags, the tokenizer.json, NUL, the text.
void write_hf_tokenizer_seed(const fs::path& path, const nlohmann::json& tokenizer,
                             std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  out << '\x01' << tokenizer.dump() << '\0' << text;
}

/// hf_config/: config.json of each architecture lowbit reads, in transformers 4's and 5's spellings
/// of the rotary settings, and stories260K-hf's own when DATA_DIR is given.
void write_hf_config_seeds(const fs::path& dir, const fs::path& data) {
  const std::string base =
      R"("hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 5, )"
      R"("num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 512, )"
      R"("max_position_embeddings": 512, "rms_norm_eps": 1e-05, "bos_token_id": 1, )";
  const std::map<std::string, std::string> seeds = {
      {"llama-llama3.json",
       R"({"architectures": ["LlamaForCausalLM"], )" + base +
           R"("eos_token_id": [2, 3], "tie_word_embeddings": true, "attention_bias": false, )"
           R"("rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, )"
           R"("low_freq_factor": 1.0, "high_freq_factor": 4.0, )"
           R"("original_max_position_embeddings": 128}})"},
      {"llama-transformers4.json",
       R"({"architectures": ["LlamaForCausalLM"], )" + base +
           R"("eos_token_id": 2, "rope_theta": 10000.0, "rope_scaling": {"type": "llama3", )"
           R"("factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 2.0, )"
           R"("original_max_position_embeddings": 64}, "head_dim": null})"},
      {"mistral.json", R"({"architectures": ["MistralForCausalLM"], )" + base +
                           R"("eos_token_id": 2, "sliding_window": 4096, "hidden_act": "silu"})"},
      {"qwen2.json",
       R"({"model_type": "qwen2", )" + base +
           R"("eos_token_id": null, "use_sliding_window": false, "rope_theta": 1e6})"},
      {"qwen3.json", R"({"architectures": ["Qwen3ForCausalLM"], )" + base +
                         R"("eos_token_id": 2, "head_dim": 12, "attention_bias": true, )"
                         R"("rope_parameters": {"rope_type": "default", "rope_theta": 1e6}})"},
  };
  for (const auto& [name, text] : seeds) std::ofstream(dir / name, std::ios::binary) << text;
  if (!data.empty())
    for (const char* form : {"f32", "bf16-sharded"})
      fs::copy_file(data / "stories260K-hf" / form / "config.json",
                    dir / ("stories260K-hf-" + std::string(form) + ".json"),
                    fs::copy_options::overwrite_existing);
}

void write_hf_tokenizer_seeds(const fs::path& dir, const fs::path& data) {
  const std::string_view hostile = "It's 12 日本語 🚀\n\n  \t x<s>ab</s> e\xCC\x81 \xFF";
  nlohmann::json byte_level = nlohmann::json::parse(R"({
    "added_tokens": [{"id": 7, "content": "<s>", "special": true, "normalized": false,
                      "lstrip": false, "rstrip": true, "single_word": false}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Digits", "individual_digits": true},
      {"type": "Split", "pattern": {"Regex": "(?i:'s|'t)|\\p{L}+|\\s+(?!\\S)|\\s+"},
       "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": true, "use_regex": false}]},
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {"<s>": {"id": "<s>", "ids": [7], "tokens": ["<s>"]}}},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "ignore_merges": true,
              "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "bc": 5, "\u0120": 6, "<s>": 7},
              "merges": [["a", "b"], "ab c", ["b", "c"]]}})");
  write_hf_tokenizer_seed(dir / "byte-level.bin", byte_level, hostile);
  nlohmann::json sentencepiece = nlohmann::json::parse(R"({
    "added_tokens": [{"id": 1, "content": "<s>", "special": true, "normalized": false,
                      "lstrip": false, "rstrip": false, "single_word": false}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
      {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
    "pre_tokenizer": null, "post_processor": null,
    "decoder": {"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
      {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>", "fuse_unk": true,
              "vocab": {"<unk>": 0, "<s>": 1, "<0x41>": 2, "<0xE6>": 3, "\u2581": 4, "a": 5,
                        "\u2581a": 6},
              "merges": [["\u2581", "a"]]}})");
  write_hf_tokenizer_seed(dir / "sentencepiece.bin", sentencepiece, hostile);
  nlohmann::json metaspace = sentencepiece;
  metaspace["normalizer"] = nullptr;
  metaspace["pre_tokenizer"] = {{"type", "Metaspace"},
                                {"replacement", "\u2581"},
                                {"prepend_scheme", "first"},
                                {"split", true}};
  metaspace["decoder"] = {{"type", "Metaspace"},
                          {"replacement", "\u2581"},
                          {"prepend_scheme", "first"},
                          {"split", true}};
  write_hf_tokenizer_seed(dir / "metaspace.bin", metaspace, hostile);
  if (data.empty()) return;
  // SmolLM2's tokenizer.json with its first 300 tokens and the merges among them: small enough
  // for the fuzzer's input length, every field of the real file kept.
  std::ifstream in(data / "smollm2-135m" / "hf-tokenizer" / "tokenizer.json", std::ios::binary);
  if (!in) return;
  nlohmann::json smollm2 = nlohmann::json::parse(in);
  nlohmann::json vocab = nlohmann::json::object();
  for (const auto& [text, id] : smollm2["model"]["vocab"].items())
    if (id.get<int>() < 300) vocab[text] = id;
  nlohmann::json merges = nlohmann::json::array();
  for (const auto& merge : smollm2["model"]["merges"]) {
    const std::string left = merge[0], right = merge[1];
    if (vocab.contains(left) && vocab.contains(right) && vocab.contains(left + right))
      merges.push_back(merge);
  }
  smollm2["model"]["vocab"] = vocab;
  smollm2["model"]["merges"] = merges;
  write_hf_tokenizer_seed(dir / "smollm2-cut.bin", smollm2, hostile);
}

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: %s OUT_DIR [DATA_DIR]\n", argv[0]);
    return 2;
  }
  try {
    const fs::path out = argv[1];
    const char* const harness_dirs[] = {"llama2c",   "safetensors", "quantized",    "sharded_index",
                                        "tokenizer", "gguf",        "hf_tokenizer", "hf_config"};
    for (const char* dir : harness_dirs) fs::create_directories(out / dir);
    std::mt19937 rng(2024);

    // llama2c/: tiny checkpoints; safetensors/: the same converted by lowbit, and every dtype.
    for (const TinyLlama& m : tiny_llamas) {
      const fs::path bin = out / "llama2c" / (std::string(m.name) + ".bin");
      write_llama2c(bin, m, rng);
      convert_llama2c_to_safetensors(bin,
                                     out / "safetensors" / (std::string(m.name) + ".safetensors"));
    }
    write_every_dtype(out / "safetensors" / "every-dtype.safetensors");

    // quantized/: one small matrix per method variant (256 columns: whole Q4_K super-blocks),
    // all of them in one file, and the small model quantized whole as `lowbit quantize` does.
    std::normal_distribution<float> weight(0.0f, 0.1f);
    std::vector<float> w(4 * 256);
    for (float& x : w) x = weight(rng);
    const MatrixView<const float> view(w.data(), 4, 256);
    std::vector<NamedQuantized> all;
    int failures = 0;
    for (const MethodOptions& options : method_variants()) {
      try {
        const Quantizer quantizer(options);
        const std::string name = "layers.0.attention.wq.weight";
        std::vector<NamedQuantized> one{{name, quantizer.quantize(view, name)}};
        write_quantized_file(out / "quantized" / (file_name(quantizer.describe()) + ".safetensors"),
                             one, {1.0f, 0.5f});
        all.push_back(
            {"m" + std::to_string(all.size()) + ".weight", std::move(one.front().matrix)});
      } catch (const lowbit::error& e) {
        std::fprintf(stderr, "lowbit_fuzz_seeds: %s skipped: %s\n", options.method.c_str(),
                     e.what());
        ++failures;
      }
    }
    write_quantized_file(out / "quantized" / "every-method.safetensors", all, {1.0f});
    for (const char* method :
         {"rtn", "hqq", "nf4", "mxfp4", "q8_0", "fp8", "kmeans", "hadamard-rtn"}) {
      pipeline::CheckpointQuantizeOptions options;
      options.method.method = method;
      if (options.method.method == "rtn" || options.method.method == "hqq" ||
          options.method.method == "nf4" || options.method.method == "hadamard-rtn")
        options.method.group = 32;  // the small model's rows are 32 and 64 wide
      options.quantize_embeddings = options.method.method == "rtn";
      pipeline::quantize_checkpoint(
          out / "llama2c" / "small.bin",
          out / "quantized" / ("small-" + std::string(method) + ".safetensors"), options);
    }

    // sharded_index/: indexes over the shards fuzz_sharded_index.cpp writes at start-up.
    const nlohmann::json full = {
        {"metadata", {{"total_size", 52}}},
        {"weight_map",
         {{"tok_embeddings.weight", "model-00001-of-00002.safetensors"},
          {"layers.0.attention.wq.weight", "model-00001-of-00002.safetensors"},
          {"norm.weight", "model-00002-of-00002.safetensors"},
          {"empty", "model-00002-of-00002.safetensors"}}}};
    const nlohmann::json one_shard = {
        {"weight_map", {{"norm.weight", "model-00002-of-00002.safetensors"}}}};
    std::ofstream(out / "sharded_index" / "two-shards.json") << full.dump(2) << '\n';
    std::ofstream(out / "sharded_index" / "one-shard.json") << one_shard.dump() << '\n';

    // tokenizer/: stories260K's vocabulary with prose and with multi-byte UTF-8 (byte fallback),
    // and a vocabulary of pieces (flags bit 2) whose merges chain.
    if (argc == 3) {
      const fs::path tok512 = fs::path(argv[2]) / "stories260K" / "tok512.bin";
      std::ifstream in(tok512, std::ios::binary);
      const std::string file((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
      if (file.empty()) throw std::runtime_error("cannot read " + tok512.string());
      write_tokenizer_seed(out / "tokenizer" / "tok512-prose", 0, 512, file,
                           "Once upon a time, there was a little girl named Lily.");
      write_tokenizer_seed(out / "tokenizer" / "tok512-utf8-bos-eos", 3, 512, file,
                           "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 <0x41>\n\t");
    }
    // (Each piece: a score byte, a length byte, the bytes; split literals end the hex escapes.)
    const std::string pieces = std::string(
                                   "\x08\x02"
                                   " a") +
                               "\x04\x02"
                               "ab" +
                               "\x10\x03"
                               "abc" +
                               "\xfc\x02"
                               "bc" +
                               "\x7f\x01"
                               "c" +
                               "\x80\x02"
                               "ca";
    write_tokenizer_seed(out / "tokenizer" / "pieces", 4 | 1, 0, pieces, "abcabc cab");

    // gguf/: small GGUF files built field by field (gguf_seeds.hpp).
    fuzz::write_gguf_seeds(out / "gguf", rng);

    // hf_tokenizer/: small tokenizer.json files of each kind, and SmolLM2's cut down.
    write_hf_tokenizer_seeds(out / "hf_tokenizer", argc == 3 ? fs::path(argv[2]) : fs::path());

    write_hf_config_seeds(out / "hf_config", argc == 3 ? fs::path(argv[2]) : fs::path());

    write_json_dictionary(out / "json.dict", {out / "safetensors", out / "quantized",
                                              out / "sharded_index", out / "hf_config"});

    for (const char* dir : harness_dirs)
      std::printf("lowbit_fuzz_seeds: %s/ %d seeds\n", dir, count_files(out / dir));
    return failures == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit_fuzz_seeds: %s\n", e.what());
    return 1;
  }
}
