// The method table (algo/methods.hpp): every method by name, the options each reads, and what a
// Quantizer makes of a matrix.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "lowbit/algo/methods.hpp"
#include "lowbit/error.hpp"
#include "lowbit/quant/fp8.hpp"
#include "lowbit/quant/ggml.hpp"
#include "lowbit/quant/linear.hpp"
#include "support/random_data.hpp"

using lowbit::check_method_options;
using lowbit::MatrixView;
using lowbit::MethodOptions;
using lowbit::Quantizer;

namespace {

MethodOptions named(const char* method) {
  MethodOptions options;
  options.method = method;
  return options;
}

}  // namespace

TEST_CASE("every method of the table runs or says why not", "[methods]") {
  const std::vector<float> w = lowbit::test::gaussian(8 * 256, 3);
  const MatrixView<const float> view(w.data(), 8, 256);
  for (const lowbit::MethodTraits& row : lowbit::method_table) {
    INFO(row.name);
    CHECK(&lowbit::method_traits(row.name) == &row);
    CHECK(row.min_bits <= row.default_bits);
    CHECK(row.default_bits <= row.max_bits);
    if (row.calibrated) {
      CHECK_THROWS_AS(Quantizer(named(row.name)), lowbit::invalid_argument);
      continue;
    }
    const Quantizer quantizer(named(row.name));
    const lowbit::QuantizedMatrix q = quantizer.quantize(view);
    CHECK(q.scheme() == quantizer.scheme(8, 256));
    CHECK(q.scheme().bits == row.default_bits * (std::string(row.name) == "higgs" ? 2 : 1));
  }
  CHECK_THROWS_WITH(lowbit::method_traits("int4"), Catch::Contains("unknown quantization method"));
}

TEST_CASE("an option a method does not read, or a width it cannot store, is refused", "[methods]") {
  MethodOptions o = named("nf4");
  o.bits = 3;
  CHECK_THROWS_WITH(check_method_options(o), Catch::Contains("cannot store 3-bit codes (only 4)"));
  o.bits = 4;
  CHECK_NOTHROW(check_method_options(o));
  o = named("mxfp4");
  o.bits = 8;
  CHECK_THROWS_AS(check_method_options(o), lowbit::invalid_argument);
  o = named("mxfp4");
  o.group = 64;  // MX blocks are 32 by definition
  CHECK_THROWS_WITH(check_method_options(o), Catch::Contains("does not use the option 'group'"));
  o = named("rtn");
  o.double_quant = true;
  CHECK_THROWS_WITH(check_method_options(o),
                    Catch::Contains("'double_quant'") && Catch::Contains("it reads: bits, group"));
  o = named("hqq");
  o.symmetric = true;
  CHECK_THROWS_AS(check_method_options(o), lowbit::invalid_argument);
  o = named("kmeans");
  o.mse_clip = true;
  CHECK_THROWS_AS(check_method_options(o), lowbit::invalid_argument);
  o = named("rtn");
  o.higgs_dimension = 1;
  CHECK_THROWS_AS(check_method_options(o), lowbit::invalid_argument);
  o = named("q4_k");
  o.scale_format = lowbit::ScalarFormat::bf16;
  CHECK_THROWS_AS(check_method_options(o), lowbit::invalid_argument);
  // Every option a method reads is accepted.
  o = named("rtn");
  o.bits = 3, o.group = 64, o.symmetric = true, o.mse_clip = true;
  o.scale_format = lowbit::ScalarFormat::bf16;
  CHECK_NOTHROW(check_method_options(o));
  o = named("gptq");
  o.bits = 3, o.group = 32, o.symmetric = true;
  CHECK_NOTHROW(check_method_options(o));
}

TEST_CASE("fp8 and the ggml methods are the quantizers of quant/", "[methods][fp8][ggml]") {
  const std::vector<float> w = lowbit::test::gaussian(4 * 512, 5);
  const MatrixView<const float> view(w.data(), 4, 512);
  // fp8: E4M3 with f32 scales per channel by default, per group with a group.
  MethodOptions o = named("fp8");
  CHECK(Quantizer(o).quantize(view).dequantize() == lowbit::quantize_fp8(view).dequantize());
  o.group = 128;
  o.scale_format = lowbit::ScalarFormat::f16;
  lowbit::Fp8Options fp8;
  fp8.granularity = lowbit::Granularity::per_group(128);
  fp8.scale_format = lowbit::ScalarFormat::f16;
  CHECK(Quantizer(o).quantize(view).dequantize() == lowbit::quantize_fp8(view, fp8).dequantize());
  CHECK(Quantizer(o).describe() == "fp8 e4m3 g128 scale=f16");
  // The ggml types: llama.cpp's reference quantizers, block for block.
  for (const auto& [name, type] :
       {std::pair{"q4_0", lowbit::GgmlType::q4_0}, std::pair{"q8_0", lowbit::GgmlType::q8_0},
        std::pair{"q4_k", lowbit::GgmlType::q4_k}}) {
    INFO(name);
    const lowbit::QuantizedMatrix q = Quantizer(named(name)).quantize(view);
    const lowbit::QuantizedMatrix expected = lowbit::quantize_ggml(view, type);
    CHECK(q.scheme() == lowbit::Scheme::ggml_blocks(type));
    CHECK(std::vector<std::uint8_t>(q.block_bytes().begin(), q.block_bytes().end()) ==
          std::vector<std::uint8_t>(expected.block_bytes().begin(), expected.block_bytes().end()));
  }
}
