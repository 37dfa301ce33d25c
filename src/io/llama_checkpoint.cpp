#include "lowbit/io/llama_checkpoint.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>
#include <tuple>
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

std::string out_of_range(const char* name, std::int64_t value, std::int64_t max) {
  std::string text = name;
  text.append(" is ").append(std::to_string(value)).append(", outside [1, ");
  text.append(std::to_string(max)).append("]");
  return text;
}

std::string number_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

/// An error's reason with its tensor, without the file (which the caller's message names).
std::string reason_of(const io_error& e) {
  const std::string& tensor = e.context().tensor;
  if (tensor.empty() || e.reason().find(tensor) != std::string::npos) return e.reason();
  return "tensor '" + tensor + "': " + e.reason();
}

}  // namespace

std::string llama_config_problem(const LlamaConfig& c) {
  using Limits = LlamaConfigLimits;
  const std::array<std::tuple<const char*, int, int>, 7> ranges{{
      {"dim", c.dim, Limits::dim},
      {"hidden_dim", c.hidden_dim, Limits::hidden_dim},
      {"n_layers", c.n_layers, Limits::n_layers},
      {"n_heads", c.n_heads, Limits::n_heads},
      {"n_kv_heads", c.n_kv_heads, Limits::n_heads},
      {"vocab_size", c.vocab_size, Limits::vocab_size},
      {"seq_len", c.seq_len, Limits::seq_len},
  }};
  for (const auto& [name, value, max] : ranges)
    if (value < 1 || value > max) return out_of_range(name, value, max);
  if (c.dim % c.n_heads != 0)
    return "dim " + std::to_string(c.dim) + " is not a multiple of n_heads " +
           std::to_string(c.n_heads);
  if (c.head_size() % 2 != 0)
    return "head size " + std::to_string(c.head_size()) + " is odd (RoPE rotates pairs)";
  if (c.n_heads % c.n_kv_heads != 0)
    return "n_heads " + std::to_string(c.n_heads) + " is not a multiple of n_kv_heads " +
           std::to_string(c.n_kv_heads);
  // (negated comparisons: NaN fails them)
  if (!(c.norm_eps > 0.0f && c.norm_eps <= 1.0f))
    return "norm_eps " + number_text(c.norm_eps) + " is outside (0, 1]";
  if (!(c.rope_theta >= 1.0f && c.rope_theta <= Limits::rope_theta))
    return "rope_theta " + number_text(c.rope_theta) + " is outside [1, 1e12]";
  return {};
}

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
    // As a double first: a value past float's range (1e300) must not be converted.
    const auto value = f->get<double>();
    if (!std::isfinite(value) || std::fabs(value) > std::numeric_limits<float>::max())
      fail(std::string("field \"") + name + "\" is " + f->dump() + ", not a finite float");
    (std::strcmp(name, "norm_eps") == 0 ? c.norm_eps : c.rope_theta) = static_cast<float>(value);
  }
  auto shared = j.find("shared_classifier");
  if (shared == j.end() || !shared->is_boolean())
    fail("field \"shared_classifier\" is missing or not a boolean");
  c.shared_classifier = shared->get<bool>();
  if (const std::string problem = llama_config_problem(c); !problem.empty()) fail(problem);
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
  const std::uint64_t size = regular_file_size(path);  // no FIFO, device or directory
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error("cannot open file", ErrorContext{file, {}, {}});
  std::array<unsigned char, 9> head{};
  in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
  const auto got = static_cast<std::size_t>(in.gcount());
  if (got == head.size()) {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | head[static_cast<std::size_t>(i)];
    if (n >= 2 && n <= size - 8 && head[8] == '{') return "safetensors";
  }
  // A file named .safetensors is one, however broken: opening it says what is wrong with it.
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (extension == ".safetensors") return "safetensors";
  // A llama2.c checkpoint has no magic number: it is one when its header is plausible and its
  // arrays fill the file exactly, which is what opening it checks.
  std::string as_llama2c;
  try {
    const Llama2cFile checkpoint(path);
    return "llama2c";
  } catch (const io_error& e) {
    as_llama2c = reason_of(e);
  }
  // Neither: say what is wrong with it as each, so the real reason is among them (as safetensors,
  // only where its JSON header would start: otherwise its "header length" is any 8 bytes).
  std::string as_safetensors = "no JSON header at byte 8";
  if (got < head.size() || head[8] == '{') {
    try {
      const SafetensorsFile safetensors(path);
      return "safetensors";
    } catch (const io_error& e) {
      as_safetensors = reason_of(e);
    }
  }
  throw io_error("neither a safetensors file nor a llama2.c checkpoint (as safetensors: " +
                     as_safetensors + "; as llama2.c: " + as_llama2c + ")",
                 ErrorContext{file, {}, {}});
}

}  // namespace lowbit::io
