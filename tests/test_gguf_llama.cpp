// A Llama-family model from GGUF: SmolLM2's config, tensors and tokenizer as llama.cpp reads them,
// and hand-built files for the other architectures and for what lowbit refuses.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/bpe_tokenizer.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/gguf_llama.hpp"
#include "lowbit/io/hf_tokenizer.hpp"
#include "lowbit/model/load.hpp"
#include "support/gguf_builder.hpp"
#include "support/temp_dir.hpp"

#ifndef LOWBIT_DATA_DIR
#define LOWBIT_DATA_DIR "../shared/data"
#endif

namespace fs = std::filesystem;
using lowbit::io::GgufFile;
using lowbit::io::RopeStyle;
using lowbit::test::ByteWriter;
using lowbit::test::GgufBuilder;

namespace {

const fs::path smollm2_dir = fs::path(LOWBIT_DATA_DIR) / "smollm2-135m";
const fs::path smollm2_gguf = smollm2_dir / "SmolLM2-135M-Instruct.Q4_1.gguf";

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A tiny model of `arch` in GGUF: dim 8, 2 heads of 4 (1 KV head), FFN 12, one block, vocab 16,
// every tensor F32 (zeros), plus `extra` keys and tensors.
struct TinyGguf {
  std::string arch = "llama";
  bool qkv_bias = false, qk_norm = false, untied = false;
  std::uint32_t heads = 2;
  bool block_count_as_string = false;
  GgufBuilder gguf;
  std::string data;

  void tensor(const std::string& name, std::vector<std::uint64_t> dims) {
    std::uint64_t count = 1;
    for (auto d : dims) count *= d;
    gguf.tensor(name, dims, 0, data.size());
    data.append(count * 4, '\0');
    data.resize((data.size() + 31) / 32 * 32, '\0');
  }
  fs::path write(const lowbit::test::TempDir& dir) {
    const std::string p = arch + ".";
    gguf.key_string("general.architecture", arch)
        .key_u32(p + "embedding_length", 8)
        .key_u32(p + "feed_forward_length", 12)
        .key_u32(p + "attention.head_count", heads)
        .key_u32(p + "attention.head_count_kv", 1)
        .key_u32(p + "context_length", 64)
        .key_f32(p + "attention.layer_norm_rms_epsilon", 1e-6f)
        .key_f32(p + "rope.freq_base", 1e6f);
    if (block_count_as_string)
      gguf.key_string(p + "block_count", "1");
    else
      gguf.key_u32(p + "block_count", 1);
    tensor("token_embd.weight", {8, 16});
    tensor("output_norm.weight", {8});
    if (untied) tensor("output.weight", {8, 16});
    tensor("blk.0.attn_norm.weight", {8});
    tensor("blk.0.attn_q.weight", {8, 8});
    tensor("blk.0.attn_k.weight", {8, 4});
    tensor("blk.0.attn_v.weight", {8, 4});
    tensor("blk.0.attn_output.weight", {8, 8});
    if (qkv_bias) {
      tensor("blk.0.attn_q.bias", {8});
      tensor("blk.0.attn_k.bias", {4});
      tensor("blk.0.attn_v.bias", {4});
    }
    if (qk_norm) {
      tensor("blk.0.attn_q_norm.weight", {4});
      tensor("blk.0.attn_k_norm.weight", {4});
    }
    tensor("blk.0.ffn_norm.weight", {8});
    tensor("blk.0.ffn_gate.weight", {8, 12});
    tensor("blk.0.ffn_down.weight", {12, 8});
    tensor("blk.0.ffn_up.weight", {8, 12});
    gguf.data(data);
    const std::string bytes = gguf.build();
    return dir.write(arch + ".gguf", std::vector<char>(bytes.begin(), bytes.end()));
  }
};

}  // namespace

TEST_CASE("gguf llama: SmolLM2's config and tensors as llama.cpp reads them", "[gguf][data]") {
  const GgufFile file(smollm2_gguf);
  const lowbit::io::GgufLlama model = lowbit::io::read_gguf_llama(file);
  const auto& c = model.config;
  CHECK(c.dim == 576);
  CHECK(c.hidden_dim == 1536);
  CHECK(c.n_layers == 30);
  CHECK(c.n_heads == 9);
  CHECK(c.n_kv_heads == 3);
  CHECK(c.head_size() == 64);
  CHECK(c.vocab_size == 49152);
  CHECK(c.seq_len == 8192);
  CHECK(c.norm_eps == 1e-5f);
  CHECK(c.rope_theta == 100000.0f);
  CHECK(c.shared_classifier);
  CHECK(c.rope_style == RopeStyle::adjacent);
  CHECK_FALSE(c.qkv_bias);
  CHECK_FALSE(c.qk_norm);

  // 7 linear weights per block in Q4_1, and the tied classifier as the embedding's Q8_0 blocks.
  REQUIRE(model.block_weights.size() == 30 * 7 + 1);
  std::size_t q4_1 = 0;
  for (const auto& w : model.block_weights) {
    if (w.name == "output.weight") {
      CHECK(w.matrix.scheme().ggml_type == lowbit::GgmlType::q8_0);
      CHECK(w.matrix.rows() == 49152);
    } else if (w.matrix.scheme().ggml_type == lowbit::GgmlType::q4_1) {
      ++q4_1;
    }
  }
  CHECK(q4_1 == 30 * 7);
  // Float: the embedding (dequantized, for the lookup) and 61 norms.
  CHECK(model.tensors.size() == 1 + 61);
  CHECK(model.tensors.front().name == "tok_embeddings.weight");
  CHECK(model.tensors.front().shape == std::vector<std::size_t>{49152, 576});
}

TEST_CASE("gguf llama: SmolLM2's vocabulary gives tokenizer.json's ids on the whole book",
          "[gguf][data]") {
  const GgufFile file(smollm2_gguf);
  const lowbit::io::BpeVocabulary vocabulary = lowbit::io::read_gguf_vocabulary(file);
  CHECK(vocabulary.model == "gpt2");
  CHECK(vocabulary.pre == "smollm");
  CHECK(vocabulary.tokens.size() == 49152);
  CHECK(vocabulary.merges.size() == 48900);
  CHECK(vocabulary.bos_id == 1);
  CHECK(vocabulary.eos_id == 2);
  CHECK(vocabulary.add_bos == false);
  const lowbit::io::BpeTokenizer from_gguf(vocabulary, smollm2_gguf.string());
  const lowbit::io::BpeTokenizer from_json =
      lowbit::io::read_hf_tokenizer(smollm2_dir / "hf-tokenizer" / "tokenizer.json");
  const std::string book =
      read_text(fs::path(LOWBIT_DATA_DIR) / "text" / "pride-and-prejudice.txt");
  REQUIRE(book.size() > 600000);
  const std::vector<int> ids = from_gguf.encode(book);
  CHECK(ids == from_json.encode(book));
  CHECK(ids.size() > 100000);
  CHECK(from_gguf.decode(ids) == book);
  CHECK(from_gguf.encode("The capital of France is") ==
        from_json.encode("The capital of France is"));
}

TEST_CASE("gguf llama: the Qwen architectures and what lowbit refuses", "[gguf]") {
  lowbit::test::TempDir dir;
  SECTION("llama, tied") {
    TinyGguf tiny;
    const auto model = lowbit::io::read_gguf_llama(GgufFile(tiny.write(dir)));
    CHECK(model.config.shared_classifier);
    CHECK(model.config.head_size() == 4);
    CHECK(model.config.head_dim == 0);  // the usual width stays implied
    CHECK(model.config.rope_theta == 1e6f);
    CHECK(model.config.norm_eps == 1e-6f);
    CHECK(model.block_weights.empty());  // F32 weights stay float
    CHECK(model.tensors.size() == 11);
  }
  SECTION("qwen2: q, k and v biases, rotate-half") {
    TinyGguf tiny;
    tiny.arch = "qwen2";
    tiny.qkv_bias = true;
    tiny.untied = true;
    const auto model = lowbit::io::read_gguf_llama(GgufFile(tiny.write(dir)));
    CHECK(model.config.qkv_bias);
    CHECK(model.config.rope_style == RopeStyle::rotate_half);
    CHECK_FALSE(model.config.shared_classifier);
    bool has_bias = false;
    for (const auto& t : model.tensors) has_bias |= t.name == "layers.0.attention.wk.bias";
    CHECK(has_bias);
  }
  SECTION("qwen3: q and k norms, an explicit head width") {
    TinyGguf tiny;
    tiny.arch = "qwen3";
    tiny.qk_norm = true;
    tiny.gguf.key_u32("qwen3.attention.key_length", 4).key_u32("qwen3.attention.value_length", 4);
    const auto model = lowbit::io::read_gguf_llama(GgufFile(tiny.write(dir)));
    CHECK(model.config.qk_norm);
    CHECK(model.config.head_size() == 4);
    CHECK(model.config.rope_style == RopeStyle::rotate_half);
  }
  SECTION("refused") {
    auto error = [&](TinyGguf tiny) {
      try {
        (void)lowbit::io::read_gguf_llama(GgufFile(tiny.write(dir)));
      } catch (const lowbit::io_error& e) {
        return std::string(e.what());
      }
      return std::string();
    };
    TinyGguf gemma;
    gemma.arch = "gemma";
    CHECK_THAT(error(gemma), Catch::Contains("\"gemma\" is not one lowbit runs"));
    TinyGguf partial;
    partial.gguf.key_u32("llama.rope.dimension_count", 2);
    CHECK_THAT(error(partial), Catch::Contains("rotates part of each head"));
    TinyGguf scaled;
    scaled.gguf.key_string("llama.rope.scaling.type", "yarn");
    CHECK_THAT(error(scaled), Catch::Contains("\"yarn\" is not supported"));
    TinyGguf widths;
    widths.gguf.key_u32("llama.attention.key_length", 4).key_u32("llama.attention.value_length", 8);
    CHECK_THAT(error(widths), Catch::Contains("differ"));
    TinyGguf extra;
    extra.tensor("blk.0.mystery.weight", {8});
    CHECK_THAT(error(extra),
               Catch::Contains("tensor 'blk.0.mystery.weight'") && Catch::Contains("no place for"));
    TinyGguf freqs;
    freqs.tensor("rope_freqs.weight", {2});
    CHECK_THAT(error(freqs), Catch::Contains("per-frequency rope factors"));
    TinyGguf wrong_type;
    wrong_type.block_count_as_string = true;
    CHECK_THAT(error(wrong_type),
               Catch::Contains("metadata 'llama.block_count' is \"1\" (string), not an integer"));
    TinyGguf zero_heads;
    zero_heads.heads = 0;
    CHECK_THAT(error(zero_heads), Catch::Contains("describes no model: n_heads is 0"));
  }
}

TEST_CASE("gguf llama: SmolLM2 continues \"The capital of France is\" with \" Paris.\"",
          "[gguf][data][model]") {
  // The reference behaviour of ../shared/data/smollm2-135m/README.md: greedy decoding, no BOS (the
  // file's add_bos_token is false), weights in their Q4_1 and Q8_0 blocks on the CPU kernels.
  lowbit::model::LlamaModel model = lowbit::model::load_llama(smollm2_gguf);
  CHECK(model.linear_layer("layers.0.attention.wq.weight").quantized()->scheme().ggml_type ==
        lowbit::GgmlType::q4_1);
  CHECK(model.linear_layer("output.weight").quantized()->scheme().ggml_type ==
        lowbit::GgmlType::q8_0);
  const GgufFile file(smollm2_gguf);
  const lowbit::io::BpeTokenizer tokenizer(lowbit::io::read_gguf_vocabulary(file));
  std::vector<int> tokens = tokenizer.encode("The capital of France is");
  int position = 0;
  std::span<const float> logits;
  for (const int token : tokens) logits = model.forward(token, position++);
  std::vector<int> generated;
  for (int step = 0; step < 3; ++step) {
    const auto next =
        static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    generated.push_back(next);
    logits = model.forward(next, position++);
  }
  CHECK(tokenizer.decode(generated) == " Paris.\n");
}
