#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/io/quantized_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/model/llama.hpp"
#include "lowbit/model/load.hpp"
#include "lowbit/quant/linear.hpp"

#ifndef LOWBIT_DATA_DIR
#define LOWBIT_DATA_DIR "../shared/data"
#endif

namespace fs = std::filesystem;
using namespace lowbit;
using namespace lowbit::io;
using lowbit::model::load_llama;

namespace {

const fs::path stories_bin = fs::path(LOWBIT_DATA_DIR) / "stories260K" / "stories260K.bin";

using lowbit::test::TempDir;

const std::vector<int> tokens{1, 403, 407, 261, 284, 24, 500, 2};

// The logits of every position of `tokens`, concatenated.
std::vector<float> run(model::LlamaModel& m) {
  std::vector<float> out;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const auto logits = m.forward(tokens[i], static_cast<int>(i));
    out.insert(out.end(), logits.begin(), logits.end());
  }
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

void check_config_equal(const model::LlamaConfig& a, const model::LlamaConfig& b) {
  CHECK(a.dim == b.dim);
  CHECK(a.hidden_dim == b.hidden_dim);
  CHECK(a.n_layers == b.n_layers);
  CHECK(a.n_heads == b.n_heads);
  CHECK(a.n_kv_heads == b.n_kv_heads);
  CHECK(a.vocab_size == b.vocab_size);
  CHECK(a.seq_len == b.seq_len);
  CHECK(a.norm_eps == b.norm_eps);
  CHECK(a.rope_theta == b.rope_theta);
  CHECK(a.shared_classifier == b.shared_classifier);
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

}  // namespace

TEST_CASE("llama config survives the metadata round trip", "[llama_checkpoint]") {
  TempDir dir;
  model::LlamaConfig c;
  c.dim = 4096;
  c.hidden_dim = 11008;
  c.n_layers = 32;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.vocab_size = 32000;
  c.seq_len = 2048;
  c.norm_eps = 1e-6f;
  c.rope_theta = 500000.0f;
  c.shared_classifier = false;
  std::map<std::string, std::string> metadata;
  add_llama_config(metadata, c);
  write_safetensors(dir.path / "c.safetensors", {}, metadata);
  check_config_equal(read_llama_config(SafetensorsFile(dir.path / "c.safetensors")), c);

  write_safetensors(dir.path / "none.safetensors", {}, {});
  CHECK_THROWS_AS(read_llama_config(SafetensorsFile(dir.path / "none.safetensors")), io_error);
  write_safetensors(dir.path / "bad.safetensors", {}, {{"lowbit.llama.config", R"({"dim":"64"})"}});
  try {
    (void)read_llama_config(SafetensorsFile(dir.path / "bad.safetensors"));
    FAIL("no io_error");
  } catch (const io_error& e) {
    const std::string what = e.what();
    CHECK(what.find("bad.safetensors") != std::string::npos);
    CHECK(what.find("\"dim\"") != std::string::npos);
  }
}

TEST_CASE("llama2.c checkpoint converts to safetensors and loads identically",
          "[llama_checkpoint]") {
  TempDir dir;
  const fs::path out = dir.path / "stories260K.safetensors";
  convert_llama2c_to_safetensors(stories_bin, out);
  CHECK(detect_checkpoint_format(stories_bin) == "llama2c");
  CHECK(detect_checkpoint_format(out) == "safetensors");

  const Llama2cCheckpoint checkpoint = read_llama2c(stories_bin);
  const SafetensorsFile file(out);
  check_config_equal(read_llama_config(file), checkpoint.config);
  REQUIRE(file.size() == checkpoint.tensors.size());
  for (const auto& t : checkpoint.tensors) {
    INFO(t.name);
    REQUIRE(file.contains(t.name));
    CHECK(file.info(t.name).dtype == DType::F32);
    CHECK(file.info(t.name).shape == t.shape);
    CHECK(same_bits(file.to_float(t.name), t.data));
  }

  model::LlamaModel from_bin = load_llama(stories_bin);
  model::LlamaModel from_safetensors = load_llama(out);
  const auto a = run(from_bin);
  const auto b = run(from_safetensors);
  CHECK(a.size() == tokens.size() * static_cast<std::size_t>(checkpoint.config.vocab_size));
  CHECK(same_bits(a, b));
}

TEST_CASE("a quantized llama checkpoint loads into the same model", "[llama_checkpoint]") {
  const Scheme scheme = GENERATE(Scheme::symmetric_int(4, Granularity::per_group(32)),
                                 Scheme::asymmetric_int(4, Granularity::per_group(32)));
  INFO(scheme.to_string());
  TempDir dir;
  const fs::path out = dir.path / "q.safetensors";
  const Llama2cCheckpoint checkpoint = read_llama2c(stories_bin);

  // Every linear layer int4 g32 in memory...
  model::LlamaModel quantized(checkpoint.config, checkpoint.tensors);
  const std::vector<std::string> names = quantized.linear_names();
  std::map<std::string, QuantizedMatrix> matrices;
  for (const auto& name : names) {
    matrices.emplace(name, quantize_linear(quantized.linear_layer(name).weights(), scheme));
    quantized.set_linear(name, matrices.at(name));
  }

  // ...and the same written to a file: float tensors that are not quantized, then the quantized
  // ones.
  const std::set<std::string> linear(names.begin(), names.end());
  std::vector<TensorLayout> layout;
  std::map<std::string, std::string> metadata;
  add_llama_config(metadata, checkpoint.config);
  for (const auto& t : checkpoint.tensors)
    if (linear.count(t.name) == 0) layout.push_back({t.name, DType::F32, t.shape});
  for (const auto& [name, q] : matrices) {
    for (auto& part : quantized_layout(name, scheme, q.rows(), q.cols())) layout.push_back(part);
    add_quantization_metadata(metadata, name, scheme, q.rows(), q.cols());
  }
  {
    SafetensorsWriter writer(out, layout, metadata);
    for (const auto& t : checkpoint.tensors)
      if (linear.count(t.name) == 0)
        writer.write(t.name, std::as_bytes(std::span<const float>(t.data)));
    for (const auto& [name, q] : matrices) write_quantized(writer, name, q);
    writer.finish();
  }

  const SafetensorsFile file(out);
  CHECK(quantized_names(file) == std::vector<std::string>(linear.begin(), linear.end()));
  model::LlamaModel loaded = load_llama(out);
  for (const auto& name : names) {
    INFO(name);
    const QuantizedMatrix* q = loaded.linear_layer(name).quantized();
    REQUIRE(q != nullptr);
    CHECK(q->scheme() == scheme);
    const auto& expected = matrices.at(name);
    CHECK(std::equal(q->packed_codes().begin(), q->packed_codes().end(),
                     expected.packed_codes().begin(), expected.packed_codes().end()));
  }
  const auto a = run(quantized);
  const auto b = run(loaded);
  CHECK(same_bits(a, b));
  // Quantization did change the model (the comparison is not vacuous).
  model::LlamaModel original(checkpoint.config, checkpoint.tensors);
  CHECK_FALSE(same_bits(run(original), b));
}

TEST_CASE("checkpoint format detection and load errors", "[llama_checkpoint]") {
  TempDir dir;
  const fs::path junk = dir.path / "junk.bin";
  write_text(junk, "hello, this is not a model at all");
  try {
    (void)detect_checkpoint_format(junk);
    FAIL("no io_error");
  } catch (const io_error& e) {
    CHECK(std::string(e.what()).find("junk.bin") != std::string::npos);
  }
  CHECK_THROWS_AS(load_llama(junk), io_error);
  CHECK_THROWS_AS(detect_checkpoint_format(dir.path / "missing.bin"), io_error);
  write_text(dir.path / "empty.bin", "");
  CHECK_THROWS_AS(detect_checkpoint_format(dir.path / "empty.bin"), io_error);
  // The tokenizer is a llama2.c file, but not a checkpoint.
  CHECK_THROWS_AS(
      detect_checkpoint_format(fs::path(LOWBIT_DATA_DIR) / "stories260K" / "tok512.bin"), io_error);
  // A truncated llama2.c checkpoint is not recognized.
  {
    std::ifstream in(stories_bin, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    write_text(dir.path / "cut.bin", bytes.substr(0, bytes.size() - 4));
  }
  CHECK_THROWS_AS(detect_checkpoint_format(dir.path / "cut.bin"), io_error);

  // safetensors without the config, or with a tensor missing, is an io_error naming the file.
  write_safetensors(dir.path / "noconfig.safetensors", {}, {});
  CHECK_THROWS_AS(load_llama(dir.path / "noconfig.safetensors"), io_error);
  std::map<std::string, std::string> metadata;
  add_llama_config(metadata, read_llama2c(stories_bin).config);
  write_safetensors(dir.path / "empty.safetensors", {}, metadata);
  try {
    (void)load_llama(dir.path / "empty.safetensors");
    FAIL("no io_error");
  } catch (const io_error& e) {
    const std::string what = e.what();
    CHECK(what.find("empty.safetensors") != std::string::npos);
    CHECK(what.find("missing") != std::string::npos);
  }
}
