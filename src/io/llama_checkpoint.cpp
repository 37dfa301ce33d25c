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

int& int_field(LlamaConfig& c, std::size_t i) {
  std::array<int*, 7> fields{&c.dim,        &c.hidden_dim, &c.n_layers, &c.n_heads,
                             &c.n_kv_heads, &c.vocab_size, &c.seq_len};
  return *fields[i];
}

}  // namespace

void add_llama_config(std::map<std::string, std::string>& metadata, const LlamaConfig& config) {
  LlamaConfig c = config;
  json j = json::object();
  for (std::size_t i = 0; i < int_fields.size(); ++i) j[int_fields[i]] = int_field(c, i);
  j["norm_eps"] = config.norm_eps;
  j["rope_theta"] = config.rope_theta;
  j["shared_classifier"] = config.shared_classifier;
  metadata[std::string(llama_config_metadata_key)] = j.dump();
}

LlamaConfig read_llama_config(const SafetensorsFile& file) {
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
  LlamaConfig c;
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
    const NamedTensor tensor = checkpoint.read(t.name);
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

}  // namespace lowbit::io
