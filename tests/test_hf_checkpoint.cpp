#include "lowbit/io/hf_checkpoint.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/io/tokenizer.hpp"
#include "lowbit/model/llama.hpp"
#include "lowbit/model/load.hpp"
#include "lowbit/pipeline/quantize_checkpoint.hpp"
#include "support/temp_dir.hpp"

#ifndef LOWBIT_DATA_DIR
#define LOWBIT_DATA_DIR "../shared/data"
#endif

namespace fs = std::filesystem;
using namespace lowbit;
using lowbit::test::TempDir;

namespace {

const fs::path data_dir = LOWBIT_DATA_DIR;
const fs::path hf_f32 = data_dir / "stories260K-hf" / "f32";
const fs::path hf_bf16 = data_dir / "stories260K-hf" / "bf16-sharded";
const fs::path llama2c_bin = data_dir / "stories260K" / "stories260K.bin";

template <class Error = io_error>
std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("expected a lowbit error, got: " << e.what());
  }
  FAIL("no exception");
  return {};
}

void require_all(const std::string& message, std::initializer_list<std::string> parts) {
  INFO(message);
  for (const std::string& part : parts) CHECK(message.find(part) != std::string::npos);
}

/// Logits of `tokens` fed at positions 0, 1, ..., concatenated.
std::vector<float> run(model::LlamaModel& model, const std::vector<int>& tokens) {
  std::vector<float> out;
  for (std::size_t pos = 0; pos < tokens.size(); ++pos) {
    const auto logits = model.forward(tokens[pos], static_cast<int>(pos));
    out.insert(out.end(), logits.begin(), logits.end());
  }
  return out;
}

float max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float worst = 0.0f;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

float max_abs(const std::vector<float>& a) {
  float worst = 0.0f;
  for (float v : a) worst = std::max(worst, std::fabs(v));
  return worst;
}

const std::vector<int> prompt{1, 403, 407, 261, 378, 280, 439, 285, 266, 433, 270, 322, 347, 60};

// A tiny Llama in Hugging Face's layout, written by the test: config.json fields as raw JSON text
// (so that a test can give any JSON type), tensors F32 with seeded random values.
struct TinyHf {
  std::map<std::string, std::string> config = {
      {"architectures", R"(["LlamaForCausalLM"])"},
      {"hidden_size", "8"},
      {"intermediate_size", "12"},
      {"num_hidden_layers", "1"},
      {"num_attention_heads", "2"},
      {"num_key_value_heads", "1"},
      {"vocab_size", "8"},
      {"max_position_embeddings", "16"},
      {"rms_norm_eps", "1e-05"},
      {"rope_theta", "10000.0"},
      {"tie_word_embeddings", "true"},
  };
  std::map<std::string, std::vector<std::size_t>> shapes = {
      {"model.embed_tokens.weight", {8, 8}},
      {"model.layers.0.input_layernorm.weight", {8}},
      {"model.layers.0.self_attn.q_proj.weight", {8, 8}},
      {"model.layers.0.self_attn.k_proj.weight", {4, 8}},
      {"model.layers.0.self_attn.v_proj.weight", {4, 8}},
      {"model.layers.0.self_attn.o_proj.weight", {8, 8}},
      {"model.layers.0.post_attention_layernorm.weight", {8}},
      {"model.layers.0.mlp.gate_proj.weight", {12, 8}},
      {"model.layers.0.mlp.up_proj.weight", {12, 8}},
      {"model.layers.0.mlp.down_proj.weight", {8, 12}},
      {"model.norm.weight", {8}},
  };
  io::DType dtype = io::DType::F32;

  std::string config_text() const {
    std::string text = "{";
    for (const auto& [key, value] : config)
      text += (text.size() > 1 ? ", \"" : "\"") + key + "\": " + value;
    return text + "}";
  }
  /// Writes config.json and model.safetensors into `dir`; returns `dir`.
  fs::path write(const fs::path& dir) const {
    fs::create_directories(dir);
    std::ofstream(dir / "config.json") << config_text();
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 0.5f);
    std::vector<std::vector<std::byte>> storage;
    std::vector<io::TensorToWrite> tensors;
    for (const auto& [name, shape] : shapes) {
      std::size_t count = 1;
      for (std::size_t d : shape) count *= d;
      std::vector<float> values(count);
      for (float& v : values) v = normal(rng);
      const std::size_t element = io::dtype_size(dtype);
      std::vector<std::byte> bytes(count * element);
      for (std::size_t i = 0; i < count; ++i)
        std::memcpy(bytes.data() + i * element, &values[i], element);  // (F32, or I32 garbage)
      storage.push_back(std::move(bytes));
      tensors.push_back({name, dtype, shape, storage.back()});
    }
    io::write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
    return dir;
  }
};

}  // namespace

TEST_CASE("stories260K as Hugging Face F32 gives llama2.c's logits", "[hf]") {
  model::LlamaModel reference = model::load_llama(llama2c_bin);
  model::LlamaModel hf = model::load_llama(hf_f32);
  CHECK(hf.config().rope_style == io::RopeStyle::rotate_half);
  CHECK(reference.config().rope_style == io::RopeStyle::adjacent);
  const std::vector<float> expected = run(reference, prompt);
  const std::vector<float> got = run(hf, prompt);
  // The same weights, rows of wq and wk permuted and rotated in the other pairing: only the order
  // of the sums over a head's dimensions differs, so the logits agree to float rounding (logits
  // up to ~15 here; a few ulps of that).
  const float difference = max_abs_difference(expected, got);
  INFO("max |logit difference| " << difference << " of max |logit| " << max_abs(expected));
  CHECK(difference < 1e-4f);
  // The directory, its model.safetensors and the file alone give the same model.
  model::LlamaModel by_file = model::load_llama(hf_f32 / "model.safetensors");
  CHECK(run(by_file, prompt) == got);
}

TEST_CASE("stories260K as sharded BF16 stays within BF16's rounding of F32", "[hf]") {
  model::LlamaModel f32 = model::load_llama(hf_f32);
  model::LlamaModel bf16 = model::load_llama(hf_bf16);
  model::LlamaModel by_index = model::load_llama(hf_bf16 / "model.safetensors.index.json");
  const std::vector<float> expected = run(f32, prompt);
  const std::vector<float> got = run(bf16, prompt);
  CHECK(run(by_index, prompt) == got);
  // Every weight rounded to BF16 (8 significant bits: relative error <= 2^-9 = 0.2%) perturbs
  // each sum a logit is made of by about that much, compounded through five layers and the
  // softmaxes: measured 0.117 on logits up to 18.9 (0.6%). Bound: 2% of the largest logit (about
  // ten times the per-weight rounding), and the same greedy choice at every position.
  const float difference = max_abs_difference(expected, got);
  INFO("max |logit difference| " << difference << " of max |logit| " << max_abs(expected));
  CHECK(difference < 0.02f * max_abs(expected));
  CHECK(difference > 0.0f);  // BF16 did round something: the two files were really read
  const std::size_t vocab = 512;
  for (std::size_t pos = 0; pos < prompt.size(); ++pos) {
    const auto row = [&](const std::vector<float>& v) {
      return std::max_element(v.begin() + static_cast<std::ptrdiff_t>(pos * vocab),
                              v.begin() + static_cast<std::ptrdiff_t>((pos + 1) * vocab)) -
             v.begin();
    };
    CHECK(row(expected) == row(got));
  }
}

TEST_CASE("stories260K as Hugging Face decodes the reference story", "[hf]") {
  const io::Tokenizer tokenizer =
      io::read_llama2c_tokenizer(data_dir / "stories260K" / "tok512.bin", 512);
  for (const fs::path& path : {hf_f32, hf_bf16}) {
    INFO(path);
    model::LlamaModel model = model::load_llama(path);
    const std::vector<int> tokens = tokenizer.encode("Once upon a time", true, false);
    std::string text;
    int token = tokens[0];
    // 61 forward passes, as test_model.cpp's llama2.c check counts them.
    for (int pos = 0; pos < 61; ++pos) {
      const auto logits = model.forward(token, pos);
      const auto index = static_cast<std::size_t>(pos) + 1;
      const int next =
          index < tokens.size()
              ? tokens[index]
              : static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      text += tokenizer.decode(token, next);
      token = next;
    }
    CHECK(text ==
          "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
          "park. One day, she saw a big, red ball. She wanted to play with it, but it was too "
          "high.");
  }
}

TEST_CASE("a quantized Hugging Face model reloads with the same architecture", "[hf]") {
  TempDir dir;
  const fs::path out = dir.path / "q8.safetensors";
  pipeline::CheckpointQuantizeOptions options;
  options.method.method = "rtn";
  options.method.bits = 8;
  const auto report = pipeline::quantize_checkpoint(hf_bf16, out, options);
  CHECK(report.tensors.size() == 35);  // 7 per layer; the tied classifier is the embedding
  model::LlamaModel quantized = model::load_llama(out);
  model::LlamaModel bf16 = model::load_llama(hf_bf16);
  CHECK(quantized.config().rope_style == io::RopeStyle::rotate_half);
  CHECK(quantized.config().head_size() == 8);
  CHECK(quantized.linear_layer("layers.0.attention.wq.weight").is_quantized());
  const std::vector<float> expected = run(bf16, prompt);
  const std::vector<float> got = run(quantized, prompt);
  CHECK(max_abs_difference(expected, got) < 0.05f * max_abs(expected));
  // Read as a lowbit file even when written beside a config.json.
  CHECK(io::detect_checkpoint_format(out) == "safetensors");
}

TEST_CASE("the Llama family's config fields survive lowbit's metadata", "[hf][llama_checkpoint]") {
  io::LlamaConfig c;
  c.dim = 16;
  c.hidden_dim = 24;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 32;
  c.seq_len = 64;
  c.head_dim = 6;
  c.rope_style = io::RopeStyle::rotate_half;
  c.qkv_bias = true;
  c.output_bias = true;
  c.qk_norm = true;
  c.sliding_window = 5;
  c.rope_scaling = {io::RopeScalingType::llama3, 8.0f, 1.0f, 4.0f, 32};
  std::map<std::string, std::string> metadata;
  io::add_llama_config(metadata, c);
  TempDir dir;
  const std::vector<float> one{1.0f};
  io::write_safetensors(dir.path / "c.safetensors",
                        {{"x", io::DType::F32, {1}, std::as_bytes(std::span<const float>(one))}},
                        metadata);
  const io::LlamaConfig back =
      io::read_llama_config(io::SafetensorsFile(dir.path / "c.safetensors"));
  CHECK(back.head_dim == 6);
  CHECK(back.q_dim() == 24);
  CHECK(back.rope_style == io::RopeStyle::rotate_half);
  CHECK(back.qkv_bias);
  CHECK(back.output_bias);
  CHECK(back.qk_norm);
  CHECK(back.sliding_window == 5);
  CHECK(back.rope_scaling.type == io::RopeScalingType::llama3);
  CHECK(back.rope_scaling.factor == 8.0f);
  CHECK(back.rope_scaling.high_freq_factor == 4.0f);
  CHECK(back.rope_scaling.original_max_position_embeddings == 32);
}

TEST_CASE("config.json is read as transformers reads it", "[hf][config]") {
  TinyHf tiny;
  auto parse = [&] { return io::parse_hf_config(tiny.config_text(), "config.json"); };
  io::HfConfig c = parse();
  CHECK(c.architecture == "LlamaForCausalLM");
  CHECK(c.llama.dim == 8);
  CHECK(c.llama.head_size() == 4);
  CHECK(c.llama.n_kv_heads == 1);
  CHECK(c.llama.shared_classifier);
  CHECK(c.llama.rope_style == io::RopeStyle::rotate_half);
  CHECK(c.bos_token_ids.empty());

  tiny.config.erase("num_key_value_heads");
  tiny.config.erase("tie_word_embeddings");
  tiny.config.erase("rope_theta");
  tiny.config["bos_token_id"] = "1";
  tiny.config["eos_token_id"] = "[2, 7]";
  c = parse();
  CHECK(c.llama.n_kv_heads == 2);     // default: the heads
  CHECK(!c.llama.shared_classifier);  // LlamaConfig's default
  CHECK(c.llama.rope_theta == 10000.0f);
  CHECK(c.bos_token_ids == std::vector<int>{1});
  CHECK(c.eos_token_ids == std::vector<int>{2, 7});

  // transformers 5: rope_parameters; transformers 4: rope_theta and rope_scaling ("type" alike).
  tiny.config["rope_parameters"] =
      R"({"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0, "original_max_position_embeddings": 8})";
  c = parse();
  CHECK(c.llama.rope_theta == 500000.0f);
  CHECK(c.llama.rope_scaling.type == io::RopeScalingType::llama3);
  CHECK(c.llama.rope_scaling.factor == 32.0f);
  tiny.config.erase("rope_parameters");
  tiny.config["rope_theta"] = "500000";
  tiny.config["rope_scaling"] =
      R"({"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8})";
  c = parse();
  CHECK(c.llama.rope_theta == 500000.0f);
  CHECK(c.llama.rope_scaling.original_max_position_embeddings == 8);
  tiny.config["rope_scaling"] = R"({"rope_type": "default"})";
  CHECK(parse().llama.rope_scaling.type == io::RopeScalingType::none);

  // Qwen2: q/k/v biases always; Qwen3: q/k norms and head_dim 128 unless given; Mistral: window.
  tiny.config["architectures"] = R"(["Qwen2ForCausalLM"])";
  c = parse();
  CHECK((c.llama.qkv_bias && !c.llama.output_bias && !c.llama.qk_norm));
  tiny.config["architectures"] = R"(["Qwen3ForCausalLM"])";
  tiny.config["attention_bias"] = "true";
  c = parse();
  CHECK((c.llama.qkv_bias && c.llama.output_bias && c.llama.qk_norm));
  CHECK(c.llama.head_size() == 128);
  tiny.config["head_dim"] = "6";
  CHECK(parse().llama.q_dim() == 12);
  tiny.config["architectures"] = R"(["MistralForCausalLM"])";
  tiny.config["sliding_window"] = "4";
  c = parse();
  CHECK((!c.llama.qkv_bias && !c.llama.qk_norm && c.llama.sliding_window == 4));
  tiny.config["sliding_window"] = "null";
  CHECK(parse().llama.sliding_window == 0);
  // No "architectures": model_type decides, as in transformers.
  tiny.config.erase("architectures");
  tiny.config["model_type"] = "\"qwen3\"";
  CHECK(parse().architecture == "Qwen3ForCausalLM");
}

TEST_CASE("Hugging Face tensor names map to Llama names", "[hf]") {
  CHECK(io::llama_name_of_hf_tensor("model.embed_tokens.weight") == "tok_embeddings.weight");
  CHECK(io::llama_name_of_hf_tensor("model.layers.12.mlp.gate_proj.weight") ==
        "layers.12.feed_forward.w1.weight");
  CHECK(io::llama_name_of_hf_tensor("model.layers.0.mlp.up_proj.weight") ==
        "layers.0.feed_forward.w3.weight");
  CHECK(io::llama_name_of_hf_tensor("model.layers.3.self_attn.k_proj.bias") ==
        "layers.3.attention.wk.bias");
  CHECK(io::llama_name_of_hf_tensor("model.layers.3.self_attn.q_norm.weight") ==
        "layers.3.attention.q_norm.weight");
  CHECK(io::llama_name_of_hf_tensor("model.layers.1.post_attention_layernorm.weight") ==
        "layers.1.ffn_norm.weight");
  CHECK(io::llama_name_of_hf_tensor("lm_head.weight") == "output.weight");
  for (const char* odd :
       {"model.layers.01.mlp.up_proj.weight", "model.layers.-1.mlp.up_proj.weight",
        "model.layers..mlp.up_proj.weight", "model.layers.1", "model.layers.",
        "model.layers.99999999999999999999.mlp.up_proj.weight",
        "model.layers.0.mlp.up_proj.weight.extra", "", "embed_tokens.weight"})
    CHECK(io::llama_name_of_hf_tensor(odd).empty());
}

TEST_CASE("llama3 rope scaling keeps high frequencies and divides low ones", "[hf][model]") {
  io::LlamaConfig c;
  c.dim = 64;
  c.n_heads = 1;
  c.rope_theta = 500000.0f;
  const std::vector<float> plain = model::rope_inverse_frequencies(c);
  c.rope_scaling = {io::RopeScalingType::llama3, 8.0f, 1.0f, 4.0f, 64};
  const std::vector<float> scaled = model::rope_inverse_frequencies(c);
  REQUIRE(scaled.size() == 32);
  CHECK(scaled[0] == plain[0]);           // wavelength 2 pi: below 64 / 4, kept
  CHECK(scaled[31] == plain[31] / 8.0f);  // wavelength above 64: divided by the factor
  int smoothed = 0;
  for (std::size_t i = 0; i < 32; ++i) {
    const double wavelen = 2 * M_PI / plain[i];
    if (wavelen >= 16 && wavelen <= 64) {
      ++smoothed;
      CHECK(scaled[i] < plain[i]);
      CHECK(scaled[i] > plain[i] / 8.0f);
    }
  }
  CHECK(smoothed > 0);
}

TEST_CASE("a tied lm_head and rotary buffers are ignored; extra tensors are not", "[hf]") {
  TempDir dir;
  TinyHf tiny;
  tiny.shapes["lm_head.weight"] = {8, 8};
  tiny.shapes["model.layers.0.self_attn.rotary_emb.inv_freq"] = {2};
  const fs::path path = tiny.write(dir.path / "a");
  const io::HfCheckpoint checkpoint(path);
  CHECK(checkpoint.tensors().size() == 11);
  model::LlamaModel model = model::load_llama(path);
  CHECK(model.forward(3, 0).size() == 8);
  CHECK(io::detect_checkpoint_format(path) == "huggingface");
  CHECK(io::detect_checkpoint_format(path / "model.safetensors") == "huggingface");
}

TEST_CASE("hostile config.json values are refused naming the file and field", "[hf][hostile]") {
  const auto refused = [](const std::string& field, const std::string& value,
                          std::initializer_list<std::string> parts) {
    TinyHf tiny;
    if (value.empty())
      tiny.config.erase(field);
    else
      tiny.config[field] = value;
    INFO(field << " = " << value);
    const std::string message =
        error_of([&] { (void)io::parse_hf_config(tiny.config_text(), "dir/config.json"); });
    require_all(message, {"dir/config.json"});
    require_all(message, parts);
  };
  refused("hidden_size", "\"64\"", {"\"hidden_size\" is \"64\", not an integer"});
  refused("hidden_size", "64.5", {"\"hidden_size\" is 64.5, not an integer"});
  refused("hidden_size", "0", {"\"hidden_size\" is 0, outside [1, 65536]"});
  refused("hidden_size", "", {"\"hidden_size\" is missing"});
  refused("num_hidden_layers", "-3", {"\"num_hidden_layers\" is -3"});
  refused("vocab_size", "18446744073709551615", {"\"vocab_size\" is 18446744073709551615"});
  refused("max_position_embeddings", "4294967296", {"max_position_embeddings"});
  refused("intermediate_size", "1e9", {"intermediate_size"});
  refused("num_attention_heads", "0", {"num_attention_heads"});
  refused("num_attention_heads", "16", {"hidden_size 8 / num_attention_heads 16 is 0"});
  refused("num_key_value_heads", "3", {"n_heads 2 is not a multiple of n_kv_heads 3"});
  refused("head_dim", "5", {"head size 5 is odd"});
  refused("head_dim", "1000000", {"\"head_dim\" is 1000000"});
  refused("head_dim", "[4]", {"\"head_dim\" is [4], not an integer"});
  refused("rms_norm_eps", "\"tiny\"", {"\"rms_norm_eps\" is \"tiny\", not a number"});
  refused("rms_norm_eps", "0", {"norm_eps 0 is outside (0, 1]"});
  refused("rms_norm_eps", "1e999", {"config is not valid JSON"});  // nlohmann: overflow
  refused("rope_theta", "1e300", {"\"rope_theta\" is 1e+300, not a finite float"});
  refused("rope_theta", "0.5", {"rope_theta 0.5 is outside [1, 1e12]"});
  refused("tie_word_embeddings", "1", {"\"tie_word_embeddings\" is 1, not a boolean"});
  refused("architectures", R"(["GPT2LMHeadModel"])",
          {"unsupported architecture 'GPT2LMHeadModel'", "LlamaForCausalLM, MistralForCausalLM"});
  refused("architectures", "\"LlamaForCausalLM\"", {"not a list of names"});
  refused("architectures", "[]", {"not a list of names"});
  refused("architectures", "[7]", {"not a list of names"});
  refused("rope_scaling", R"({"rope_type": "yarn", "factor": 4.0})",
          {"unsupported rope type 'yarn'"});
  refused("rope_scaling", R"({"type": "linear", "factor": 2.0})",
          {"unsupported rope type 'linear'"});
  refused("rope_scaling", "[1]", {"\"rope_scaling\" is not an object"});
  refused("rope_scaling", R"({"rope_type": "llama3", "factor": 8.0})",
          {"\"low_freq_factor\" is missing"});
  refused("rope_scaling",
          R"({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 8192})",
          {"high_freq_factor 4 is not finite and above low_freq_factor 4"});
  refused(
      "rope_scaling",
      R"({"rope_type": "llama3", "factor": -1.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 8192})",
      {"factor -1 is not finite and > 0"});
  refused("rope_parameters", R"({"rope_type": "dynamic", "rope_theta": 10000.0})",
          {"unsupported rope type 'dynamic' in \"rope_parameters\""});
  refused("rope_parameters", "7", {"\"rope_parameters\" is not an object"});
  refused("mlp_bias", "true", {"\"mlp_bias\" is true"});
  refused("hidden_act", "\"gelu\"", {"\"hidden_act\" is \"gelu\""});
  refused("partial_rotary_factor", "0.5", {"partial_rotary_factor"});
  refused("eos_token_id", "[2, \"x\"]", {"\"eos_token_id\" holds \"x\""});
  refused("bos_token_id", "-1", {"\"bos_token_id\" holds -1"});

  for (const char* text : {"", "{", "[1, 2]", "null", "\"config\"", "{\"hidden_size\": 8,}"}) {
    INFO(text);
    const std::string message = error_of([&] { (void)io::parse_hf_config(text, "c.json"); });
    require_all(message, {"c.json", "config is not"});
  }
  // Qwen's per-layer sliding windows are refused rather than ignored.
  TinyHf qwen;
  qwen.config["architectures"] = R"(["Qwen2ForCausalLM"])";
  qwen.config["use_sliding_window"] = "true";
  require_all(error_of([&] { (void)io::parse_hf_config(qwen.config_text(), "q.json"); }),
              {"\"use_sliding_window\" is true"});
}

TEST_CASE("missing, extra, misshapen and non-float tensors name the tensor and file",
          "[hf][hostile]") {
  TempDir dir;
  int written = 0;
  const auto refused = [&](const TinyHf& tiny, std::initializer_list<std::string> parts) {
    const fs::path path = tiny.write(dir.path / ("m" + std::to_string(written++)));
    const std::string message = error_of([&] { (void)model::load_llama(path); });
    require_all(message, parts);
  };
  TinyHf missing;
  missing.shapes.erase("model.layers.0.mlp.up_proj.weight");
  refused(missing, {"model.safetensors", "model.layers.0.mlp.up_proj.weight", "is missing"});
  TinyHf untied;
  untied.config["tie_word_embeddings"] = "false";
  refused(untied, {"lm_head.weight", "is missing"});
  TinyHf extra;
  extra.shapes["model.layers.1.mlp.up_proj.weight"] = {12, 8};
  refused(extra, {"model.safetensors", "model.layers.1.mlp.up_proj.weight", "unexpected tensor"});
  TinyHf bias;
  bias.shapes["model.layers.0.self_attn.q_proj.bias"] = {8};
  refused(bias, {"model.layers.0.self_attn.q_proj.bias", "unexpected tensor"});
  TinyHf unknown;
  unknown.shapes["model.layers.0.mlp.experts.weight"] = {2};
  refused(unknown, {"model.layers.0.mlp.experts.weight", "unexpected tensor"});
  TinyHf misshapen;
  misshapen.shapes["model.layers.0.self_attn.k_proj.weight"] = {8, 8};
  refused(misshapen, {"model.layers.0.self_attn.k_proj.weight", "expected shape [4, 8]"});
  TinyHf integers;
  integers.dtype = io::DType::I32;
  refused(integers, {"dtype I32 is not a float weight"});
  {
    // A NaN weight: refused at load naming the tensor and its position.
    TinyHf().write(dir.path / "nan");
    std::vector<float> bad(8 * 8, 0.5f);
    bad[9] = std::nanf("");
    const io::HfCheckpoint ok(dir.path / "nan");
    std::vector<io::TensorToWrite> tensors;
    std::vector<std::vector<float>> storage;
    for (const io::TensorLayout& t : ok.tensors()) {
      storage.push_back(t.name == "layers.0.attention.wq.weight" ? bad : ok.to_float(t.name));
      tensors.push_back({ok.hf_name(t.name), io::DType::F32, t.shape,
                         std::as_bytes(std::span<const float>(storage.back()))});
    }
    fs::create_directories(dir.path / "nan2");
    io::write_safetensors(dir.path / "nan2" / "model.safetensors", tensors);
    fs::copy_file(dir.path / "nan" / "config.json", dir.path / "nan2" / "config.json");
    require_all(error_of([&] { (void)model::load_llama(dir.path / "nan2"); }),
                {"model.layers.0.self_attn.q_proj.weight", "[1, 1] is NaN"});
  }
  // A directory without weights, or without config.json.
  fs::create_directories(dir.path / "empty");
  std::ofstream(dir.path / "empty" / "config.json") << TinyHf().config_text();
  require_all(error_of([&] { (void)model::load_llama(dir.path / "empty"); }),
              {"empty", "neither model.safetensors nor model.safetensors.index.json"});
  fs::create_directories(dir.path / "bare");
  require_all(error_of([&] { (void)model::load_llama(dir.path / "bare"); }),
              {"bare", "not a regular file"});
  // A broken config.json inside a directory names it.
  fs::create_directories(dir.path / "broken");
  std::ofstream(dir.path / "broken" / "config.json") << "{\"hidden_size\": ";
  require_all(error_of([&] { (void)model::load_llama(dir.path / "broken"); }),
              {"broken/config.json", "not valid JSON"});
}
