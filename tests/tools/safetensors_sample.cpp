// Writes a safetensors file with lowbit (float tensors of several dtypes and quantized weights of
// several schemes) plus a JSON manifest of what it wrote, for tests/python/check_safetensors.py to
// compare against the official `safetensors` package.
//
// Usage: lowbit_safetensors_sample OUT.safetensors OUT.json
// The manifest: {"tensors": {name: {"dtype", "shape", "hex"}}, "metadata": {...},
//                "quantized": {name: {"scheme": {...}, "shape": [rows, cols], "dequantized_hex"}}}
// where hex strings are the little-endian bytes (dequantized: float32 row-major).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "lowbit/format/half.hpp"
#include "lowbit/io/quantized_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quantized_matrix.hpp"

using namespace lowbit;
using namespace lowbit::io;

namespace {

std::string hex(std::span<const std::byte> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::byte b : bytes) {
    const auto v = std::to_integer<unsigned>(b);
    out += digits[v >> 4];
    out += digits[v & 15];
  }
  return out;
}

struct FloatTensor {
  std::string name;
  DType dtype;
  std::vector<std::size_t> shape;
  std::vector<std::byte> bytes;
};

template <typename T>
std::vector<std::byte> bytes_of(const std::vector<T>& v) {
  const auto b = std::as_bytes(std::span<const T>(v));
  return {b.begin(), b.end()};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s OUT.safetensors OUT.json\n", argv[0]);
    return 2;
  }
  try {
    std::mt19937 rng(1234);
    std::normal_distribution<float> normal(0.0f, 0.05f);

    std::vector<FloatTensor> plain;
    {
      std::vector<float> f32(6 * 5);
      for (auto& x : f32) x = normal(rng);
      plain.push_back({"embed.weight", DType::F32, {6, 5}, bytes_of(f32)});
      std::vector<std::uint16_t> f16, bf16;
      for (int i = 0; i < 7; ++i) {
        f16.push_back(float16::from_float(normal(rng)).code);
        bf16.push_back(bfloat16::from_float(normal(rng)).code);
      }
      plain.push_back({"norm.f16", DType::F16, {7}, bytes_of(f16)});
      plain.push_back({"norm.bf16", DType::BF16, {7}, bytes_of(bf16)});
      plain.push_back(
          {"ids", DType::I64, {2, 2}, bytes_of(std::vector<std::int64_t>{-1, 2, 1LL << 40, 7})});
      plain.push_back({"empty", DType::F32, {0, 3}, {}});
    }

    std::vector<std::pair<std::string, QuantizedMatrix>> quantized;
    const std::size_t rows = 8, cols = 100;  // 100: ragged groups of 32 and 48
    std::vector<float> w(rows * cols);
    for (auto& x : w) x = normal(rng);
    const MatrixView<const float> view(w.data(), rows, cols);
    Scheme awq = Scheme::asymmetric_int(4, Granularity::per_group(32));
    awq.pack_order = PackOrder::awq_interleaved;
    const std::vector<std::pair<std::string, Scheme>> schemes{
        {"layers.0.int4_sym_g32.weight", Scheme::symmetric_int(4, Granularity::per_group(32))},
        {"layers.0.uint4_asym_g32.weight", Scheme::asymmetric_int(4, Granularity::per_group(32))},
        {"layers.0.uint4_awq_g32.weight", awq},
        {"layers.0.uint3_g48_f16zero.weight",
         Scheme::asymmetric_int(3, Granularity::per_group(48), ScalarFormat::f16, ZeroFormat::f16)},
        {"layers.0.int8_channel_bf16.weight",
         Scheme::symmetric_int(8, Granularity::per_channel(), ScalarFormat::bf16)},
        {"layers.0.uint2_tensor_f32.weight",
         Scheme::asymmetric_int(2, Granularity::per_tensor(), ScalarFormat::f32)},
    };
    for (const auto& [name, scheme] : schemes)
      quantized.emplace_back(name, quantize_linear(view, scheme));
    {
      // MXFP4-style: e2m1 codes with power-of-two E8M0 scales, filled directly.
      Scheme mx{ElementFormat::fp4_e2m1,    4,
                Granularity::per_group(32), ScalarFormat::e8m0,
                ZeroFormat::code,           PackOrder::low_first};
      QuantizedMatrix q(mx, rows, cols);
      std::uniform_int_distribution<int> code(0, 15), exponent(-8, 2);
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c)
          q.set_code(r, c, static_cast<std::uint8_t>(code(rng)));
      for (std::size_t i = 0; i < q.scale_grid().size(); ++i)
        q.set_scale(i, std::ldexp(1.0f, exponent(rng)));
      quantized.emplace_back("layers.0.mxfp4.weight", std::move(q));
    }

    std::vector<TensorLayout> layout;
    std::map<std::string, std::string> metadata{{"format", "pt"}};
    for (const auto& t : plain) layout.push_back({t.name, t.dtype, t.shape});
    for (const auto& [name, q] : quantized) {
      for (auto& part : quantized_layout(name, q.scheme(), q.rows(), q.cols()))
        layout.push_back(part);
      add_quantization_metadata(metadata, name, q.scheme(), q.rows(), q.cols());
    }
    SafetensorsWriter writer(argv[1], layout, metadata);
    for (const auto& t : plain) writer.write(t.name, t.bytes);
    for (const auto& [name, q] : quantized) write_quantized(writer, name, q);
    writer.finish();

    // The manifest, from what lowbit reads back.
    const SafetensorsFile file(argv[1]);
    nlohmann::json manifest;
    manifest["metadata"] = file.metadata();
    for (const auto& name : file.names()) {
      const TensorInfo& info = file.info(name);
      manifest["tensors"][name] = {
          {"dtype", dtype_name(info.dtype)}, {"shape", info.shape}, {"hex", hex(info.data)}};
    }
    for (const auto& [name, q] : quantized) {
      const std::vector<float> d = read_quantized(file, name).dequantize();
      manifest["quantized"][name] = {
          {"scheme", nlohmann::json::parse(scheme_to_json(q.scheme()))},
          {"shape", {q.rows(), q.cols()}},
          {"dequantized_hex", hex(std::as_bytes(std::span<const float>(d)))}};
    }
    std::ofstream out(argv[2]);
    out << manifest.dump(1) << '\n';
    if (!out) throw std::runtime_error("cannot write the manifest");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit_safetensors_sample: %s\n", e.what());
    return 1;
  }
  return 0;
}
