// The backend conformance suite: every backend (the reference, the cpu backend for each
// instruction set this CPU runs, cuda where a device is present) runs every scenario (a weight
// format on a shape, over batch sizes that reach each backend's GEMV and GEMM paths), and its
// output is held to the reference GEMM (kernels/reference.hpp) under that backend's error bound
// (support/backend_conformance.hpp).
//
// What a backend may do with a scenario is what the dispatch interface (kernels/backend.hpp) lets
// it say: run it with its own kernel, which supports() advertises; fall back to the reference
// kernels (PreparedMatrix::fallback()), whose output must then equal the reference's exactly; or,
// for an activation mode the weights cannot run, throw unsupported from prepare, as the reference
// does. Each format names the backends expected to have a kernel for it, so a backend that starts
// falling back, or stops, fails here; without a device, the cuda column is held to what the cuda
// backend's prepare decides on the host. A failure names the scenario, the backend and the batch.
#include <catch2/catch.hpp>

#include "../kernels/cuda/packed_layout.hpp"
#include "support/backend_conformance.hpp"
#include "support/bound_check.hpp"
#include "support/random_data.hpp"
#include "support/random_ggml_blocks.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <omp.h>

#include "lowbit/algo/hqq.hpp"
#include "lowbit/algo/incoherence.hpp"
#include "lowbit/algo/smoothquant.hpp"
#include "lowbit/cpu_features.hpp"
#include "lowbit/error.hpp"
#include "lowbit/kernels/cuda.hpp"
#include "lowbit/kernels/gemm.hpp"
#include "lowbit/kernels/reference.hpp"
#include "lowbit/quant/codebook.hpp"
#include "lowbit/quant/fp8.hpp"
#include "lowbit/quant/ggml.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quant/microscaling.hpp"
#include "lowbit/quant/nf4.hpp"

using lowbit::Granularity;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;
using lowbit::ScalarFormat;
using lowbit::Scheme;
namespace kernels = lowbit::kernels;

namespace {

/// The backends with a kernel of their own for a format, a bit set (the reference runs every
/// format).
enum NativeOn : unsigned { on_reference_only = 0, on_cpu = 1, on_cuda = 2, on_cpu_and_cuda = 3 };

/// One backend of the suite, and its bit of NativeOn (0 for the reference).
struct BackendUnderTest {
  const kernels::Backend* backend;
  unsigned bit;
};

/// The one list of backends: the reference, the cpu backend for every instruction set this CPU
/// runs (LOWBIT_ISA only picks the default among them), and cuda when a device is present.
const std::vector<BackendUnderTest>& backends_under_test() {
  static const std::vector<BackendUnderTest> backends = [] {
    std::vector<BackendUnderTest> out{{&kernels::reference_backend(), 0}};
    for (const lowbit::Isa isa : {lowbit::Isa::scalar, lowbit::Isa::avx2, lowbit::Isa::avx512})
      if (lowbit::supports(lowbit::cpu_features(), isa))
        out.push_back({&kernels::cpu_backend(isa), on_cpu});
    if (kernels::cuda_available()) out.push_back({&kernels::cuda_backend(), on_cuda});
    return out;
  }();
  return backends;
}

bool cuda_in_suite() {
  const std::vector<BackendUnderTest>& backends = backends_under_test();
  return std::any_of(backends.begin(), backends.end(),
                     [](const BackendUnderTest& b) { return b.bit == on_cuda; });
}

/// Why the cuda backend is not in the suite; empty when it is.
std::string cuda_absence() {
  if (kernels::cuda_available()) return {};
  try {
    kernels::cuda_backend();
  } catch (const lowbit::unsupported& e) {
    return e.what();
  }
  return "cuda_available() is false";
}

kernels::PrepareOptions int8_per_token() {
  kernels::PrepareOptions options;
  options.activations = kernels::ActivationQuantization::int8_per_token;
  return options;
}

kernels::PrepareOptions llm_int8() {
  kernels::PrepareOptions options;
  options.activations = kernels::ActivationQuantization::llm_int8;
  options.outlier_threshold = 3.0f;  // with outlier_scale 10, a few columns go the float way
  return options;
}

/// A weight format: how the weights are quantized, and how they are multiplied.
struct Format {
  std::string name;
  std::function<QuantizedMatrix(MatrixView<const float>)> quantize;
  unsigned native_on = on_cpu_and_cuda;  // the backends expected to run it with their own kernel
  kernels::PrepareOptions options = {};
  std::size_t column_multiple = 1;  // the quantizer takes only column counts that are multiples
  std::size_t min_rows = 1;         // of this, and at least this many rows
  bool rejected = false;            // the activation mode cannot run these weights: prepare throws
  bool undecodable = false;    // holds codes only the reference decodes: every other backend falls
                               // back, whatever supports() says of the Scheme
  float outlier_scale = 1.0f;  // multiplies a few activation columns (LLM.int8()'s float part)
};

Format linear(std::string name, const Scheme& scheme, unsigned on = on_cpu_and_cuda,
              const kernels::PrepareOptions& options = {}) {
  return {std::move(name),
          [scheme](MatrixView<const float> w) { return lowbit::quantize_linear(w, scheme); }, on,
          options};
}

Format nf4(std::string name, std::size_t block, std::size_t double_quant_block = 0) {
  lowbit::Nf4Options options;
  options.block = block;
  options.double_quant = double_quant_block != 0;
  if (options.double_quant) options.double_quant_block = double_quant_block;
  return {std::move(name),
          [options](MatrixView<const float> w) { return lowbit::quantize_nf4(w, options); }};
}

Format codebook(std::string name, std::size_t vector_dim, Granularity granularity, unsigned on) {
  const Scheme scheme{.element = lowbit::ElementFormat::codebook,
                      .bits = 4,
                      .granularity = Granularity::none(),
                      .vector_dim = vector_dim,
                      .codebook_granularity = granularity,
                      .codebook_format = ScalarFormat::f16};
  return {std::move(name),
          [scheme](MatrixView<const float> w) { return lowbit::quantize_codebook(w, scheme); }, on};
}

Format fp8(std::string name, const lowbit::Fp8Options& options) {
  return {std::move(name),
          [options](MatrixView<const float> w) { return lowbit::quantize_fp8(w, options); }};
}

Format ggml(std::string name, lowbit::GgmlType type) {
  Format format{std::move(name),
                [type](MatrixView<const float> w) { return lowbit::quantize_ggml(w, type); },
                on_cpu};
  const bool float16 = type == lowbit::GgmlType::f16 || type == lowbit::GgmlType::bf16;
  if (!float16) format.column_multiple = lowbit::ggml::block_weights(type);  // whole blocks only
  return format;
}

/// llama.cpp blocks lowbit reads but does not quantize: random bytes with finite fp16 scales
/// (tests/support/random_ggml_blocks.hpp), a matrix per shape.
Format ggml_random(std::string name, lowbit::GgmlType type) {
  Format format{std::move(name),
                [type](MatrixView<const float> w) {
                  const auto seed = static_cast<std::uint32_t>(w.rows * 7919 + w.cols);
                  return lowbit::test::random_ggml_blocks(type, w.rows, w.cols, seed);
                },
                on_cpu};
  format.column_multiple = lowbit::ggml::block_weights(type);
  return format;
}

/// The one list of formats: lowbit's integer layouts (symmetric, asymmetric, fractional zeros,
/// groups, channels, the tensor; f16/bf16/f32 scales; 2..8 bits), inputs rotated by a Hadamard
/// transform, the table formats (NF4, FP4, 4-bit codebooks), FP8 E4M3, llama.cpp's blocks, the int8
/// activation modes, and the formats some backends fall back on or reject.
const std::vector<Format>& formats() {
  static const std::vector<Format> all = [] {
    std::vector<Format> out;
    out.push_back(linear("int4 sym g32", Scheme::symmetric_int(4, Granularity::per_group(32))));
    out.push_back(linear("int4 asym g64", Scheme::asymmetric_int(4, Granularity::per_group(64))));
    out.push_back(
        linear("int4 asym g128 bf16 scales",
               Scheme::asymmetric_int(4, Granularity::per_group(128), ScalarFormat::bf16)));
    out.push_back(
        linear("int4 sym per channel", Scheme::symmetric_int(4, Granularity::per_channel())));
    out.push_back(linear("int4 asym per tensor f32 scales",
                         Scheme::asymmetric_int(4, Granularity::per_tensor(), ScalarFormat::f32)));
    out.push_back(linear("int8 sym per channel f32 scales",
                         Scheme::symmetric_int(8, Granularity::per_channel(), ScalarFormat::f32)));
    out.push_back(linear("int8 asym g32", Scheme::asymmetric_int(8, Granularity::per_group(32))));
    // 3 bits in 4-bit slots, through a table.
    out.push_back(linear("int3 asym g32", Scheme::asymmetric_int(3, Granularity::per_group(32))));
    out.push_back(linear("int2 sym g64", Scheme::symmetric_int(2, Granularity::per_group(64))));
    for (const std::size_t group : {32u, 64u}) {  // HQQ's fractional zero points
      lowbit::HqqOptions hqq;
      hqq.group_size = group;
      out.push_back({"hqq int4 g" + std::to_string(group),
                     [hqq](MatrixView<const float> w) { return lowbit::quantize_hqq(w, 4, hqq); }});
    }
    // Hadamard blocks of 48 across groups of 32: the backends rotate the activations.
    Format rotated{"int4 asym g32, Hadamard-rotated inputs", [](MatrixView<const float> w) {
                     return lowbit::quantize_incoherent(
                         w, {48, 3, true}, [](MatrixView<const float> m) {
                           return lowbit::quantize_linear(
                               m, Scheme::asymmetric_int(4, Granularity::per_group(32)));
                         });
                   }};
    rotated.column_multiple = 48;
    out.push_back(rotated);

    out.push_back(nf4("nf4 block 32", 32));
    out.push_back(nf4("nf4 block 64", 64));
    out.push_back(nf4("nf4 block 64, double quantization per 4", 64, 4));
    out.push_back({"mxfp4", [](MatrixView<const float> w) { return lowbit::quantize_mxfp4(w); }});
    // E2M1 with E4M3 scales per 16 and an fp32 tensor scale.
    out.push_back({"nvfp4", [](MatrixView<const float> w) { return lowbit::quantize_nvfp4(w); }});
    out.push_back(
        codebook("codebook 4-bit per tensor", 1, Granularity::per_tensor(), on_cpu_and_cuda));
    // On one row a per-channel codebook has one table, which the cuda backend's prepare runs with
    // its kernel although supports() says no for the Scheme (decode_of counts the tables,
    // scheme_packable probes two rows): left out until the two agree.
    Format per_channel_codebook =
        codebook("codebook 4-bit per channel", 1, Granularity::per_channel(), on_cpu);
    per_channel_codebook.min_rows = 2;
    out.push_back(per_channel_codebook);
    Format vector_codebook = codebook("codebook of 2-vectors per tensor", 2,
                                      Granularity::per_tensor(), on_reference_only);
    vector_codebook.column_multiple = 2;
    out.push_back(vector_codebook);

    out.push_back({"mxfp8", [](MatrixView<const float> w) { return lowbit::quantize_mxfp8(w); }});
    out.push_back(fp8("fp8 e4m3 per channel f32 scales", {}));
    // Blocks of 4 x 64 cross block rows in most shapes here.
    out.push_back(fp8("fp8 e4m3 4 x 64 blocks", {.granularity = Granularity::per_block(4, 64)}));
    out.push_back(fp8("fp8 e4m3 128 x 128 blocks f32 scales",
                      {.granularity = Granularity::per_block(128, 128)}));
    out.push_back(
        fp8("fp8 e4m3 128 x 128 blocks bf16 scales",
            {.granularity = Granularity::per_block(128, 128), .scale_format = ScalarFormat::bf16}));
    // E5M2: no kernel but the reference's.
    Format e5m2 = fp8("fp8 e5m2 per channel", {.element = lowbit::ElementFormat::fp8_e5m2});
    e5m2.native_on = on_reference_only;
    out.push_back(e5m2);
    // An E4M3 NaN code, which the fast paths do not decode: the reference runs the matrix.
    Format with_nan{"mxfp8 holding a NaN code", [](MatrixView<const float> w) {
                      QuantizedMatrix q = lowbit::quantize_mxfp8(w);
                      q.set_code(w.rows / 2, w.cols / 2, 0x7F);
                      return q;
                    }};
    with_nan.undecodable = true;
    out.push_back(with_nan);

    out.push_back(ggml("ggml q4_0", lowbit::GgmlType::q4_0));
    out.push_back(ggml("ggml q8_0", lowbit::GgmlType::q8_0));
    out.push_back(ggml("ggml q4_k", lowbit::GgmlType::q4_k));
    out.push_back(ggml("ggml f16", lowbit::GgmlType::f16));
    out.push_back(ggml("ggml bf16", lowbit::GgmlType::bf16));
    for (const lowbit::GgmlType type :
         {lowbit::GgmlType::q4_1, lowbit::GgmlType::q5_0, lowbit::GgmlType::q5_1,
          lowbit::GgmlType::q2_k, lowbit::GgmlType::q3_k, lowbit::GgmlType::q5_k,
          lowbit::GgmlType::q6_k, lowbit::GgmlType::iq4_nl, lowbit::GgmlType::iq4_xs})
      out.push_back(
          ggml_random(std::string("ggml ") + lowbit::to_string(type) + " (random blocks)", type));

    // The int8 activation modes: the cuda backend has no kernel for them.
    const auto w8a8_weights = [](MatrixView<const float> w) {
      return lowbit::quantize_w8a8_weights(w);
    };
    out.push_back({"w8a8", w8a8_weights, on_cpu, int8_per_token()});
    Format llm{"llm.int8()", w8a8_weights, on_cpu, llm_int8()};
    llm.outlier_scale = 10.0f;
    out.push_back(llm);
    out.push_back(linear("w4a8 asym g32", Scheme::asymmetric_int(4, Granularity::per_group(32)),
                         on_cpu, int8_per_token()));
    out.push_back(linear("w4a8 sym g64", Scheme::symmetric_int(4, Granularity::per_group(64)),
                         on_cpu, int8_per_token()));
    out.push_back(linear("w8a8 asym per channel",
                         Scheme::asymmetric_int(8, Granularity::per_channel()), on_cpu,
                         int8_per_token()));
    out.push_back(linear("w3a8 asym g32", Scheme::asymmetric_int(3, Granularity::per_group(32)),
                         on_cpu, int8_per_token()));

    // Activation modes the weights cannot run: int8 activations need integer weights, LLM.int8()
    // int8 per-channel ones.
    Format nf4_int8 = nf4("nf4 block 32 with int8 activations", 32);
    nf4_int8.options = int8_per_token();
    nf4_int8.rejected = true;
    out.push_back(nf4_int8);
    Format int4_llm_int8 =
        linear("int4 sym per channel with llm.int8()",
               Scheme::symmetric_int(4, Granularity::per_channel()), on_reference_only, llm_int8());
    int4_llm_int8.rejected = true;
    out.push_back(int4_llm_int8);
    return out;
  }();
  return all;
}

struct Shape {
  std::size_t rows, cols;
};

/// The one list of shapes.
const std::vector<Shape>& shapes() {
  static const std::vector<Shape> all = [] {
    // Ragged: rows that fill no tile, columns that divide no group or block size.
    std::vector<Shape> out = {{1, 1},    {5, 31},   {3, 33},    {1, 33},   {9, 33},
                              {1, 100},  {5, 100},  {9, 100},   {11, 100}, {17, 100},
                              {33, 257}, {64, 257}, {130, 300}, {64, 1000}};
    // Whole groups and llama.cpp blocks (and rows of 48 and 96 for the Hadamard blocks).
    const std::vector<Shape> whole = {{1, 32},  {4, 32},  {9, 32},  {11, 32},  {11, 48}, {12, 96},
                                      {1, 256}, {5, 256}, {9, 256}, {11, 256}, {5, 512}, {9, 512}};
    // Rows longer than the cpu kernels keep in L1 (batch 1 then runs rows in tiles).
    const std::vector<Shape> long_rows = {{7, 6200}, {11, 6200}, {19, 6200}};
    out.insert(out.end(), whole.begin(), whole.end());
    out.insert(out.end(), long_rows.begin(), long_rows.end());
    return out;
  }();
  return all;
}

/// The one list of batch sizes: the cpu kernels' GEMV below 12 and dequantized panels from 12 on;
/// the cuda GEMV up to 8 (padded to 1, 2, 4, 8) and the tensor-core kernel from 9 (padded to 32).
/// Under AddressSanitizer (ten times slower) a subset that still reaches every path and a ragged
/// tile of each: the plain build runs them all.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t batches[] = {1, 3, 8, 9, 12, 17, 33};
#else
constexpr std::size_t batches[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 17, 20, 33, 70};
#endif
constexpr std::size_t max_batch = *std::max_element(std::begin(batches), std::end(batches));

struct Scenario {
  const Format* format;
  Shape shape;
  std::string name() const {
    return format->name + " [" + std::to_string(shape.rows) + ", " + std::to_string(shape.cols) +
           "]";
  }
};

/// Every format on every shape it takes.
const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> all = [] {
    std::vector<Scenario> out;
    for (const Format& format : formats())
      for (const Shape& shape : shapes())
        if (shape.cols % format.column_multiple == 0 && shape.rows >= format.min_rows)
          out.push_back({&format, shape});
    return out;
  }();
  return all;
}

/// One OpenMP thread for a scope, for the quantizers and the cpu kernels alike: idle OpenMP
/// threads spin for a while after each parallel region, which over the suite's thousands of them
/// costs several times its work. test_kernels.cpp holds the threaded kernels to the one-thread
/// ones.
class OneThread {
 public:
  OneThread() { omp_set_num_threads(1); }
  ~OneThread() { omp_set_num_threads(before_); }
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;

 private:
  int before_ = omp_get_max_threads();
};

/// Which kernels ran, where the backend says: " (fallback)", or the cuda kernel for the batch.
std::string kernel_path(const BackendUnderTest& b, const kernels::PreparedMatrix& prepared,
                        std::size_t batch) {
  if (prepared.fallback()) return " (fallback)";
  if (b.bit == on_cuda) return std::string(" (") + kernels::cuda_kernel_for_batch(batch) + ")";
  return {};
}

/// Elements that differ (NaN matches NaN: an undecodable code gives NaN on every backend).
std::size_t count_different(const std::vector<float>& got, const std::vector<float>& expected) {
  std::size_t differ = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    differ += !(got[i] == expected[i] || (std::isnan(got[i]) && std::isnan(expected[i])));
  return differ;
}

}  // namespace

TEST_CASE("the conformance suite runs the reference, the cpu backend per ISA and cuda if present",
          "[kernels][cuda][conformance]") {
  const std::vector<BackendUnderTest>& backends = backends_under_test();
  REQUIRE(!backends.empty());
  CHECK(backends.front().backend == &kernels::reference_backend());
  auto in_suite = [&](const kernels::Backend& backend) {
    return std::any_of(backends.begin(), backends.end(),
                       [&](const BackendUnderTest& b) { return b.backend == &backend; });
  };
  CHECK(in_suite(kernels::cpu_backend(lowbit::Isa::scalar)));
  CHECK(in_suite(kernels::default_backend()));  // the ISA LOWBIT_ISA or CPUID selects
  if (const std::string reason = cuda_absence(); !reason.empty()) {
    WARN("no CUDA device: the cuda backend is not in the conformance suite (" << reason << ")");
    CHECK_THROWS_AS(kernels::cuda_backend(), lowbit::unsupported);
  } else {
    CHECK(in_suite(kernels::cuda_backend()));
  }
}

TEST_CASE("every backend runs every scenario like the reference", "[kernels][cuda][conformance]") {
  const std::size_t index = GENERATE(range(std::size_t{0}, scenarios().size()));
  const Scenario& scenario = scenarios()[index];
  const Format& format = *scenario.format;
  const auto seed = static_cast<std::uint32_t>(index * 100 + 1);
  INFO("scenario " << scenario.name());
  const OneThread one_thread;
  const std::vector<float> w =
      lowbit::test::weights_with_outliers(scenario.shape.rows, scenario.shape.cols, seed);
  const auto q = std::make_shared<const QuantizedMatrix>(
      format.quantize(MatrixView<const float>(w.data(), scenario.shape.rows, scenario.shape.cols)));
  const std::size_t rows = q->rows(), cols = q->cols();
  INFO("scheme " << q->scheme().to_string() << ", activations "
                 << kernels::to_string(format.options.activations));
  const std::vector<float> all_activations =
      lowbit::test::gaussian(max_batch * cols, seed + 1, 1.0f);

  if (format.rejected) {  // every backend's prepare throws, as the reference GEMM does
    for (const BackendUnderTest& b : backends_under_test()) {
      INFO("backend " << b.backend->name());
      CHECK_THROWS_AS(b.backend->prepare(q, format.options), lowbit::unsupported);
    }
    std::vector<float> y(rows);
    CHECK_THROWS_AS(
        kernels::reference_gemm(*q, MatrixView<const float>(all_activations.data(), 1, cols),
                                MatrixView<float>(y.data(), 1, rows), format.options),
        lowbit::unsupported);
    return;
  }

  // Without a device, the cuda column of the format table is held to what the cuda backend's
  // prepare decides on the host.
  if (!cuda_in_suite() && format.options.activations == kernels::ActivationQuantization::none) {
    INFO("cuda (its decision on the host only: no device)");
    const bool cuda_runs = (format.native_on & on_cuda) != 0 && !format.undecodable;
    CHECK(kernels::cuda::unpackable_reason(*q).empty() == cuda_runs);
  }

  // Each backend prepares once and says whether it runs its own kernel or the reference's.
  std::vector<std::unique_ptr<kernels::PreparedMatrix>> prepared;
  for (const BackendUnderTest& b : backends_under_test()) {
    INFO("backend " << b.backend->name());
    const bool own_kernel = b.bit == 0 || (format.native_on & b.bit) != 0;
    CHECK(b.backend->supports(q->scheme(), format.options) == own_kernel);
    try {
      prepared.push_back(b.backend->prepare(q, format.options));
    } catch (const std::exception& e) {
      FAIL_CHECK("prepare threw: " << e.what());
      prepared.emplace_back();
      continue;
    }
    const bool falls_back = b.bit != 0 && (!own_kernel || format.undecodable);
    CHECK(prepared.back()->fallback() == falls_back);
  }

  std::optional<lowbit::test::Fp32KernelBound> cpu_bound;
  for (const std::size_t batch : batches) {
    // The first rows of the largest batch, with this batch's outlier columns.
    std::vector<float> xv(all_activations.begin(), all_activations.begin() + batch * cols);
    if (format.outlier_scale != 1.0f)
      for (std::size_t c = 3; c < cols; c += 17) xv[(c % batch) * cols + c] *= format.outlier_scale;
    const MatrixView<const float> x(xv.data(), batch, cols);
    std::vector<float> expected(batch * rows);
    kernels::reference_gemm(*q, x, MatrixView<float>(expected.data(), batch, rows), format.options);
    if (format.undecodable && rows > 0) {
      INFO("the reference decodes the NaN code as NaN");
      CHECK(std::any_of(expected.begin(), expected.end(), [](float v) { return std::isnan(v); }));
    }
    const std::vector<float> rotated = kernels::detail::rotated_inputs(*q, x);
    const MatrixView<const float> rotated_x(rotated.data(), batch, cols);
    std::optional<std::vector<double>> cpu_bounds, cuda_bounds;  // of this batch, when needed

    for (std::size_t i = 0; i < prepared.size(); ++i) {
      if (!prepared[i]) continue;  // its prepare failed above
      const BackendUnderTest& b = backends_under_test()[i];
      INFO("backend " << b.backend->name() << ", batch " << batch
                      << kernel_path(b, *prepared[i], batch));
      std::vector<float> y(batch * rows, std::numeric_limits<float>::quiet_NaN());
      try {
        kernels::gemm(*prepared[i], x, MatrixView<float>(y.data(), batch, rows));
      } catch (const std::exception& e) {
        FAIL_CHECK("gemm threw: " << e.what());
        continue;
      }
      // The reference kernels, as the reference backend or as a fallback: the reference's output.
      if (b.bit == 0 || prepared[i]->fallback()) {
        CHECK(count_different(y, expected) == 0);
        continue;
      }
      std::optional<std::vector<double>>& bounds = b.bit == on_cuda ? cuda_bounds : cpu_bounds;
      if (!bounds && b.bit == on_cuda) {
        bounds = lowbit::test::cuda_kernel_bounds(*q, rotated_x, expected, std::ldexp(1.0, -11));
      } else if (!bounds) {
        if (!cpu_bound) cpu_bound.emplace(*q, format.options.activations);
        bounds = (*cpu_bound)(rotated_x);
      }
      const lowbit::test::BoundCheck check = lowbit::test::check_bounds(y, expected, *bounds);
      INFO("worst error / bound " << check.worst);
      CHECK(check.outside == 0);
    }
  }
}
