#include "lowbit/io/llama_checkpoint.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/io/quantized_safetensors.hpp"

namespace lowbit::io {
namespace {

using nlohmann::json;

constexpr std::array<const char*, 7> int_fields{"dim",        "hidden_dim", "n_layers", "n_heads",
                                                "n_kv_heads", "vocab_size", "seq_len"};

int& int_field(model::LlamaConfig& c, std::size_t i) {
  std::array<int*, 7> fields{&c.dim,        &c.hidden_dim, &c.n_layers, &c.n_heads,
                             &c.n_kv_heads, &c.vocab_size, &c.seq_len};
  return *fields[i];
}

}  // namespace

void add_llama_config(std::map<std::string, std::string>& metadata,
                      const model::LlamaConfig& config) {
  model::LlamaConfig c = config;
  json j = json::object();
  for (std::size_t i = 0; i < int_fields.size(); ++i) j[int_fields[i]] = int_field(c, i);
  j["norm_eps"] = config.norm_eps;
  j["rope_theta"] = config.rope_theta;
  j["shared_classifier"] = config.shared_classifier;
  metadata[std::string(llama_config_metadata_key)] = j.dump();
}

model::LlamaConfig read_llama_config(const SafetensorsFile& file) {
  const std::string path = file.path().string();
  auto fail = [&](const std::string& why) -> void {
    std::string message = "metadata \"lowbit.llama.config\": ";
    message.append(why);
    throw io_error(message, ErrorContext{path, {}, {}});
  };
  auto it = file.metadata().find(std::string(llama_config_metadata_key));
  if (it == file.metadata().end()) fail("absent (not a Llama checkpoint written by lowbit)");
  json j = json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) fail("not a JSON object");
  model::LlamaConfig c;
  for (std::size_t i = 0; i < int_fields.size(); ++i) {
    auto f = j.find(int_fields[i]);
    if (f == j.end() || !f->is_number_integer())
      fail(std::string("field \"") + int_fields[i] + "\" is missing or not an integer");
    const auto value = f->get<std::int64_t>();
    if (value < 0 || value > std::numeric_limits<int>::max())
      fail(std::string("field \"") + int_fields[i] + "\" is out of range");
    int_field(c, i) = static_cast<int>(value);
  }
  for (const char* name : {"norm_eps", "rope_theta"}) {
    auto f = j.find(name);
    if (f == j.end() || !f->is_number())
      fail(std::string("field \"") + name + "\" is missing or not a number");
    (std::strcmp(name, "norm_eps") == 0 ? c.norm_eps : c.rope_theta) = f->get<float>();
  }
  auto shared = j.find("shared_classifier");
  if (shared == j.end() || !shared->is_boolean())
    fail("field \"shared_classifier\" is missing or not a boolean");
  c.shared_classifier = shared->get<bool>();
  return c;
}

void convert_llama2c_to_safetensors(const std::filesystem::path& in,
                                    const std::filesystem::path& out) {
  // One tensor in memory at a time.
  const Llama2cFile checkpoint(in);
  std::vector<TensorLayout> layout;
  layout.reserve(checkpoint.tensors().size());
  for (const auto& t : checkpoint.tensors()) layout.push_back({t.name, DType::F32, t.shape});
  std::map<std::string, std::string> metadata;
  add_llama_config(metadata, checkpoint.config());
  SafetensorsWriter writer(out, std::move(layout), std::move(metadata));
  for (const auto& t : checkpoint.tensors()) {
    const model::NamedTensor tensor = checkpoint.read(t.name);
    writer.write(t.name, std::as_bytes(std::span<const float>(tensor.data)));
  }
  writer.finish();
}

std::string detect_checkpoint_format(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) throw io_error("cannot read file: " + ec.message(), ErrorContext{file, {}, {}});
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error("cannot open file", ErrorContext{file, {}, {}});
  std::array<unsigned char, 28> head{};
  in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
  const auto got = static_cast<std::size_t>(in.gcount());
  if (got >= 9) {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | head[static_cast<std::size_t>(i)];
    if (n >= 2 && n <= size - 8 && head[8] == '{') return "safetensors";
  }
  // A llama2.c checkpoint has no magic number: it is one when its header is plausible and its
  // arrays fill the file exactly, which is what opening it checks.
  try {
    const Llama2cFile checkpoint(path);
    return "llama2c";
  } catch (const io_error& e) {
    throw io_error(
        "neither a safetensors file nor a llama2.c checkpoint (as llama2.c: " + e.reason() + ")",
        ErrorContext{file, {}, {}});
  }
}

model::LlamaModel load_llama(const std::filesystem::path& path) {
  const std::string format = detect_checkpoint_format(path);
  if (format == "llama2c") {
    const Llama2cCheckpoint checkpoint = read_llama2c(path);
    return model::LlamaModel(checkpoint.config, checkpoint.tensors);
  }
  const SafetensorsFile file(path);
  const std::string name = path.string();
  const model::LlamaConfig config = read_llama_config(file);
  const std::vector<std::string> quantized = quantized_names(file);

  std::set<std::string> parts;  // tensors that belong to a quantized weight
  std::vector<QuantizedMatrix> matrices;
  matrices.reserve(quantized.size());
  for (const auto& q : quantized) {
    matrices.push_back(read_quantized(file, q));
    for (const auto& part : quantized_layout(q, matrices.back().scheme(), matrices.back().rows(),
                                             matrices.back().cols()))
      parts.insert(part.name);
  }
  std::vector<model::NamedTensor> tensors;
  std::set<std::string> float_names;
  for (const auto& t : file.names()) {
    if (parts.count(t) != 0) continue;
    const TensorInfo& info = file.info(t);
    switch (info.dtype) {
      case DType::F64:
      case DType::F32:
      case DType::F16:
      case DType::BF16:
        break;
      default:
        throw io_error("tensor of dtype " + std::string(dtype_name(info.dtype)) +
                           " is neither a float weight nor part of a quantized one",
                       ErrorContext{name, t, info.shape});
    }
    tensors.push_back({t, info.shape, file.to_float(t)});
    float_names.insert(t);
  }
  // LlamaModel wants every weight as floats; quantized layers get a zero placeholder that
  // set_linear replaces (no dequantization happens twice).
  for (std::size_t i = 0; i < quantized.size(); ++i) {
    if (float_names.count(quantized[i]) != 0)
      throw io_error("tensor is stored both as floats and quantized",
                     ErrorContext{name, quantized[i], {}});
    const QuantizedMatrix& m = matrices[i];
    tensors.push_back(
        {quantized[i], {m.rows(), m.cols()}, std::vector<float>(m.rows() * m.cols(), 0.0f)});
  }
  try {
    model::LlamaModel model(config, tensors);
    tensors.clear();
    for (std::size_t i = 0; i < quantized.size(); ++i)
      model.set_linear(quantized[i], std::move(matrices[i]));
    return model;
  } catch (const invalid_argument& e) {
    throw io_error(e.what(), ErrorContext{name, {}, {}});
  }
}

}  // namespace lowbit::io
