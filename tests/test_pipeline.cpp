// pipeline::quantize_checkpoint: a whole checkpoint into a file in one library call.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/io/quantized_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/model/load.hpp"
#include "lowbit/pipeline/quantize_checkpoint.hpp"
#include "lowbit/quant/linear.hpp"
#include "support/temp_dir.hpp"

#ifndef LOWBIT_DATA_DIR
#define LOWBIT_DATA_DIR "../shared/data"
#endif

namespace fs = std::filesystem;
using lowbit::pipeline::CheckpointQuantizeOptions;
using lowbit::pipeline::quantize_checkpoint;

namespace {
const fs::path stories_bin = fs::path(LOWBIT_DATA_DIR) / "stories260K" / "stories260K.bin";
}

TEST_CASE("quantize_checkpoint writes every Linear weight with its Scheme", "[pipeline]") {
  lowbit::test::TempDir dir;
  const fs::path out = dir.path / "q.safetensors";
  CheckpointQuantizeOptions options;
  options.method.bits = 4;
  options.method.group = 32;
  std::size_t calls = 0, last_done = 0, last_total = 0;
  const auto report = quantize_checkpoint(
      stories_bin, out, options, [&](std::string_view stage, std::size_t done, std::size_t total) {
        CHECK(stage == "write");  // rtn needs no calibration
        CHECK(done == last_done + 1);
        ++calls, last_done = done, last_total = total;
      });
  const lowbit::io::Llama2cFile source(stories_bin);
  CHECK(last_done == last_total);
  CHECK(calls == source.tensors().size());
  CHECK(report.description == "rtn 4-bit g32");
  REQUIRE(report.tensors.size() == 35);  // 5 layers x 7 Linear weights; embeddings stay float
  // The file holds what quantize_linear makes of each weight, bit for bit.
  const lowbit::io::SafetensorsFile file(out);
  const auto scheme = lowbit::Scheme::asymmetric_int(4, lowbit::Granularity::per_group(32));
  for (const auto& t : report.tensors) {
    INFO(t.name);
    const lowbit::QuantizedMatrix stored = lowbit::io::read_quantized(file, t.name);
    const std::vector<float> w = source.read(t.name).data;
    const lowbit::QuantizedMatrix expected =
        lowbit::quantize_linear(lowbit::MatrixView<const float>(w.data(), t.rows, t.cols), scheme);
    CHECK(stored.scheme() == scheme);
    CHECK(stored.dequantize() == expected.dequantize());
    CHECK(t.relative_rms > 0.0);
    CHECK(t.relative_rms < 0.2);
    CHECK(t.sqnr_db == Approx(-20.0 * std::log10(t.relative_rms)));
  }
  CHECK(report.bits_per_weight > 4.0);
  CHECK(file.metadata().at("lowbit.method") == "rtn 4-bit g32");
  // And it loads as a model.
  const lowbit::model::LlamaModel model = lowbit::model::load_llama(out);
  CHECK(model.config().n_layers == 5);
}

TEST_CASE("quantize_checkpoint refuses what it cannot honour, before writing", "[pipeline]") {
  lowbit::test::TempDir dir;
  const fs::path out = dir.path / "q.safetensors";
  CheckpointQuantizeOptions options;
  options.method.method = "nf4";
  options.method.bits = 3;
  CHECK_THROWS_AS(quantize_checkpoint(stories_bin, out, options), lowbit::invalid_argument);
  options = {};
  options.method.method = "gptq";  // calibrated: needs tokens
  CHECK_THROWS_AS(quantize_checkpoint(stories_bin, out, options), lowbit::invalid_argument);
  options = {};
  options.act_order = true;  // a GPTQ option with rtn
  CHECK_THROWS_AS(quantize_checkpoint(stories_bin, out, options), lowbit::invalid_argument);
  options = {};
  options.method.method = "no-such-method";
  CHECK_THROWS_WITH(quantize_checkpoint(stories_bin, out, options),
                    Catch::Contains("unknown quantization method") && Catch::Contains("hqq"));
  CHECK_FALSE(fs::exists(out));

  // A checkpoint without a Linear weight (a norm alone): an error, and no file.
  const std::vector<float> norm(8, 1.0f);
  const fs::path norms_only = dir.path / "norms.safetensors";
  lowbit::io::write_safetensors(norms_only, {{"layers.0.attention_norm.weight",
                                              lowbit::io::DType::F32,
                                              {8},
                                              std::as_bytes(std::span<const float>(norm))}});
  CHECK_THROWS_WITH(quantize_checkpoint(norms_only, out, {}),
                    Catch::Contains("norms.safetensors") && Catch::Contains("no Linear weight"));
  CHECK_FALSE(fs::exists(out));
}
