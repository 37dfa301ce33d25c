// Quantizes every Linear weight of a real pretrained model (stories260K, llama2.c format) with
// several schemes and prints how much each one costs in bits and in error.
//
//   quantize_stories260k [path/to/stories260K.bin]
//
// The default path is ../shared/data/stories260K/stories260K.bin, relative to the repository root.
#include <lowbit/lowbit.hpp>

#include <fmt/core.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct Tensor {
  std::string name;
  std::size_t rows = 0, cols = 0;
  std::vector<float> values;
};

// The seven int32 of a llama2.c checkpoint header.
struct Llama2cConfig {
  std::int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

// Reads the Linear weights (wq, wk, wv, wo, w1, w2, w3 of every layer) of a llama2.c checkpoint.
// A deliberately small reader for this example; lowbit::io has the full one.
std::vector<Tensor> read_linear_weights(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw lowbit::io_error("cannot open the checkpoint", {path, "", {}});
  Llama2cConfig c{};
  if (!in.read(reinterpret_cast<char*>(&c), sizeof c))
    throw lowbit::io_error("file is shorter than the 28-byte header", {path, "", {}});
  if (c.dim <= 0 || c.hidden_dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 ||
      c.dim % c.n_heads != 0 || c.dim > 65536 || c.hidden_dim > 262144 || c.n_layers > 1024)
    throw lowbit::io_error("implausible header", {path, "", {}});
  const auto dim = static_cast<std::size_t>(c.dim), hidden = static_cast<std::size_t>(c.hidden_dim),
             layers = static_cast<std::size_t>(c.n_layers),
             vocab = static_cast<std::size_t>(std::abs(c.vocab_size));
  const std::size_t kv_dim =
      dim * static_cast<std::size_t>(c.n_kv_heads) / static_cast<std::size_t>(c.n_heads);

  auto skip = [&](std::size_t floats) {
    in.seekg(static_cast<std::streamoff>(floats * 4), std::ios::cur);
  };
  std::vector<Tensor> tensors;
  auto read = [&](const char* name, std::size_t rows, std::size_t cols) {
    std::vector<Tensor> per_layer(layers);
    for (std::size_t l = 0; l < layers; ++l) {
      Tensor& t = per_layer[l];
      t.name = fmt::format("layers.{}.{}", l, name);
      t.rows = rows;
      t.cols = cols;
      t.values.resize(rows * cols);
      if (!in.read(reinterpret_cast<char*>(t.values.data()),
                   static_cast<std::streamsize>(rows * cols * 4)))
        throw lowbit::io_error("file ends inside this tensor", {path, t.name, {rows, cols}});
    }
    return per_layer;
  };
  auto append = [&](std::vector<Tensor> more) {
    for (Tensor& t : more) tensors.push_back(std::move(t));
  };
  skip(vocab * dim);   // token embedding
  skip(layers * dim);  // attention RMSNorm
  append(read("attention.wq", dim, dim));
  append(read("attention.wk", kv_dim, dim));
  append(read("attention.wv", kv_dim, dim));
  append(read("attention.wo", dim, dim));
  skip(layers * dim);  // FFN RMSNorm
  append(read("feed_forward.w1", hidden, dim));
  append(read("feed_forward.w2", dim, hidden));
  append(read("feed_forward.w3", hidden, dim));
  return tensors;
}

struct Errors {
  double squared_error = 0.0;
  double squared_signal = 0.0;
};

}  // namespace

int main(int argc, char** argv) try {
  const std::string path = argc > 1 ? argv[1] : "../shared/data/stories260K/stories260K.bin";
  const std::vector<Tensor> tensors = read_linear_weights(path);
  std::size_t weights = 0;
  for (const Tensor& t : tensors) weights += t.values.size();
  fmt::print("{}: {} Linear weight matrices, {} weights\n\n", path, tensors.size(), weights);

  using lowbit::Granularity;
  using lowbit::Scheme;
  struct Row {
    Scheme scheme;
    bool clip;
  };
  const std::vector<Row> rows = {
      {Scheme::symmetric_int(8, Granularity::per_channel()), false},
      {Scheme::symmetric_int(8, Granularity::per_tensor()), false},
      {Scheme::symmetric_int(4, Granularity::per_channel()), false},
      {Scheme::symmetric_int(4, Granularity::per_group(32)), false},
      {Scheme::asymmetric_int(4, Granularity::per_group(32)), false},
      {Scheme::asymmetric_int(4, Granularity::per_group(32)), true},
      {Scheme::asymmetric_int(4, Granularity::per_group(128)), false},
      {Scheme::symmetric_int(3, Granularity::per_group(32)), false},
      {Scheme::asymmetric_int(3, Granularity::per_group(32)), false},
      {Scheme::asymmetric_int(3, Granularity::per_group(32)), true},
      {Scheme::asymmetric_int(2, Granularity::per_group(32)), false},
      {Scheme::asymmetric_int(2, Granularity::per_group(32)), true},
  };

  fmt::print("{:<46} {:>6} {:>10} {:>9}\n", "scheme", "bits/w", "rel. RMS", "SQNR dB");
  for (const Row& row : rows) {
    lowbit::LinearQuantizeOptions options;
    if (row.clip) options.clip = lowbit::ClipSearch::mse();
    Errors total;
    double bits = 0.0;
    for (const Tensor& t : tensors) {
      options.tensor_name = t.name;
      const lowbit::QuantizedMatrix q = lowbit::quantize_linear(
          lowbit::MatrixView<const float>(t.values.data(), t.rows, t.cols), row.scheme, options);
      const std::vector<float> back = q.dequantize();
      for (std::size_t i = 0; i < back.size(); ++i) {
        const double e = static_cast<double>(t.values[i]) - back[i];
        total.squared_error += e * e;
        total.squared_signal += static_cast<double>(t.values[i]) * t.values[i];
      }
      bits += q.bits_per_weight() * static_cast<double>(t.values.size());
    }
    const double relative_rms = std::sqrt(total.squared_error / total.squared_signal);
    fmt::print("{:<46} {:>6.3f} {:>10.5f} {:>9.2f}\n",
               row.scheme.to_string() + (row.clip ? " +mse-clip" : ""),
               bits / static_cast<double>(weights), relative_rms, -20.0 * std::log10(relative_rms));
  }
  return 0;
} catch (const lowbit::error& e) {
  std::fprintf(stderr, "quantize_stories260k: %s\n", e.what());
  return 1;
}
