// Files crafted to break the readers: sizes that overflow, shapes a tiny file cannot hold, config
// values that would allocate gigabytes or compute infinities, non-finite weights, duplicate
// names, things that are not regular files, and interrupted writes. Each must end in lowbit's own
// error naming the file (and the tensor) and the reason, before anything large is allocated.
#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "lowbit/detail/checked_arithmetic.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/packing.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/io/llama_checkpoint.hpp"
#include "lowbit/io/quantized_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/model/llama.hpp"
#include "lowbit/model/load.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace fs = std::filesystem;
using namespace lowbit;
using lowbit::test::TempDir;

namespace {

constexpr std::uint64_t two_to(int power) { return std::uint64_t{1} << power; }

/// The message of the `Error` that `action` throws; fails the test for no exception or another
/// type (a std::length_error or std::bad_alloc escaping is exactly what these tests catch).
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

/// A safetensors file of an explicit header and `data_bytes` zero bytes.
fs::path write_raw(const fs::path& path, const std::string& header, std::size_t data_bytes = 0) {
  std::vector<char> bytes(8);
  for (std::size_t i = 0; i < 8; ++i)
    bytes[i] = static_cast<char>((static_cast<std::uint64_t>(header.size()) >> (8 * i)) & 0xFF);
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.resize(bytes.size() + data_bytes, '\0');
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

/// A quantized weight "w" as a file declares it: its metadata entry, and zero-filled parts of the
/// given dtypes and shapes (written by lowbit's own writer, which takes any consistent layout).
struct Part {
  std::string name;
  io::DType dtype;
  std::vector<std::size_t> shape;
};
fs::path write_quantized_file(const fs::path& path, const std::string& scheme_json,
                              std::uint64_t rows, std::uint64_t cols,
                              const std::vector<Part>& parts) {
  std::vector<std::vector<std::byte>> storage;
  std::vector<io::TensorToWrite> tensors;
  for (const Part& part : parts) {
    std::size_t bytes = io::dtype_size(part.dtype);
    for (std::size_t d : part.shape) bytes *= d;
    storage.emplace_back(bytes);
    tensors.push_back({part.name, part.dtype, part.shape, storage.back()});
  }
  const std::string entry = R"({"w.weight":{"scheme":)" + scheme_json + R"(,"shape":[)" +
                            std::to_string(rows) + "," + std::to_string(cols) + "]}}";
  io::write_safetensors(path, tensors, {{"lowbit.quantization", entry}});
  return path;
}

std::string int4_scheme(const std::string& granularity) {
  return R"({"element":"int","bits":4,)" + granularity + R"(,"scale_format":"f16"})";
}

// --- A tiny float Llama, written as lowbit writes checkpoints ---

model::LlamaConfig tiny_config() {
  model::LlamaConfig c;
  c.dim = 8;
  c.hidden_dim = 16;
  c.n_layers = 1;
  c.n_heads = 2;
  c.n_kv_heads = 2;
  c.vocab_size = 16;
  c.seq_len = 32;
  return c;
}

std::vector<model::NamedTensor> tiny_tensors(const model::LlamaConfig& c) {
  const auto dim = static_cast<std::size_t>(c.dim), hidden = static_cast<std::size_t>(c.hidden_dim),
             kv = static_cast<std::size_t>(c.kv_dim()),
             vocab = static_cast<std::size_t>(c.vocab_size);
  std::vector<model::NamedTensor> tensors;
  const auto add = [&](const std::string& name, std::vector<std::size_t> shape) {
    std::size_t count = 1;
    for (std::size_t d : shape) count *= d;
    std::vector<float> data(count);
    for (std::size_t i = 0; i < count; ++i)
      data[i] = 0.01f * static_cast<float>((i * 7 + name.size()) % 23) - 0.1f;
    tensors.push_back({name, std::move(shape), std::move(data)});
  };
  add("tok_embeddings.weight", {vocab, dim});
  add("layers.0.attention_norm.weight", {dim});
  add("layers.0.attention.wq.weight", {dim, dim});
  add("layers.0.attention.wk.weight", {kv, dim});
  add("layers.0.attention.wv.weight", {kv, dim});
  add("layers.0.attention.wo.weight", {dim, dim});
  add("layers.0.ffn_norm.weight", {dim});
  add("layers.0.feed_forward.w1.weight", {hidden, dim});
  add("layers.0.feed_forward.w2.weight", {dim, hidden});
  add("layers.0.feed_forward.w3.weight", {hidden, dim});
  add("norm.weight", {dim});
  return tensors;
}

/// Writes `tensors` as F32 with `config_json` (or the config itself) as the model config.
fs::path write_model(const fs::path& path, const std::vector<model::NamedTensor>& tensors,
                     const model::LlamaConfig& config, const std::string& config_json = {},
                     std::map<std::string, std::string> metadata = {}) {
  std::vector<io::TensorToWrite> out;
  for (const auto& t : tensors)
    out.push_back({t.name, io::DType::F32, t.shape, std::as_bytes(std::span<const float>(t.data))});
  io::add_llama_config(metadata, config);
  if (!config_json.empty()) metadata[std::string(io::llama_config_metadata_key)] = config_json;
  io::write_safetensors(path, out, metadata);
  return path;
}

std::string config_json(const model::LlamaConfig& c, const std::string& field,
                        const std::string& value) {
  std::map<std::string, std::string> metadata;
  io::add_llama_config(metadata, c);
  std::string json = metadata.at(std::string(io::llama_config_metadata_key));
  const std::string key = "\"" + field + "\":";
  const std::size_t start = json.find(key) + key.size();
  const std::size_t end = json.find_first_of(",}", start);
  return json.replace(start, end - start, value);
}

std::vector<std::string> temporaries_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().find(".tmp.") != std::string::npos)
      names.push_back(entry.path().filename().string());
  return names;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Checked arithmetic

TEST_CASE("checked arithmetic refuses what wraps", "[hostile][checked]") {
  using detail::CheckedSize;
  constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
  STATIC_REQUIRE(detail::checked_mul(max, 2) == std::nullopt);
  STATIC_REQUIRE(detail::checked_mul(max, 1) == max);
  STATIC_REQUIRE(detail::checked_mul(0, max) == 0);
  STATIC_REQUIRE(detail::checked_add(max, 1) == std::nullopt);
  STATIC_REQUIRE(detail::checked_add(max - 1, 1) == max);
  STATIC_REQUIRE(detail::ceil_div(max, max) == 1);
  STATIC_REQUIRE(detail::ceil_div(64, max) == 1);
  STATIC_REQUIRE(detail::ceil_div(0, 7) == 0);
  STATIC_REQUIRE(detail::ceil_div(15, 7) == 3);
  STATIC_REQUIRE(!(CheckedSize(two_to(40)) * two_to(30)).valid());
  STATIC_REQUIRE((CheckedSize(two_to(40)) * two_to(20) + 5).get() == two_to(60) + 5);
  STATIC_REQUIRE(!(CheckedSize(max) * 2 * 0).valid());  // an overflow stays one
  STATIC_REQUIRE(!ceil_div(CheckedSize(1), 0).valid());
  STATIC_REQUIRE(!detail::checked_bytes(two_to(62), 4).valid());  // past PTRDIFF_MAX
  const std::vector<std::size_t> huge_and_zero{two_to(63), two_to(63), 0};
  CHECK(!detail::checked_product(huge_and_zero).valid());
  const std::vector<std::size_t> zero{3, 0, 5};
  CHECK(detail::checked_product(zero, 4).get() == 0);
  CHECK(error_of<invalid_argument>([] { (void)(CheckedSize(max) + 1).value("the codes"); }) ==
        "the size of the codes overflows the address space");
  CHECK(error_of([] {
          (void)(CheckedSize(max) + 1).value<io_error>("x", {"f.bin", "t", {}});
        }).find("file 'f.bin': tensor 't'") == 0);

  // packed_words wraps for 2^62 4-bit codes (2^64 bits); the checked form refuses it.
  STATIC_REQUIRE(lowbit::packed_words(two_to(62), 4) == 0);
  STATIC_REQUIRE(!checked_packed_words(two_to(62), 4).valid());
  STATIC_REQUIRE(checked_packed_words(33, 3).get() == 4);
}

TEST_CASE("Scheme bounds its sizes and storage checks every product", "[hostile][scheme]") {
  // A group wider than 2^64 - 1 - cols used to wrap the ceiling division to zero scale columns.
  const Granularity widest = Granularity::per_group(std::numeric_limits<std::size_t>::max());
  CHECK(ScaleGrid::of(widest, 4, 64).cols == 1);
  CHECK(error_of<invalid_argument>([&] {
          Scheme::symmetric_int(4, widest);
        }).find("group size must be at most 2^32") != std::string::npos);
  CHECK_NOTHROW(Scheme::symmetric_int(4, Granularity::per_group(Scheme::max_group_size)));
  Scheme vectors{.element = ElementFormat::codebook,
                 .bits = 2,
                 .granularity = Granularity::none(),
                 .vector_dim = std::size_t{1} << 40};
  CHECK(error_of<invalid_argument>([&] {
          vectors.validate();
        }).find("vector_dim must be at most") != std::string::npos);
  vectors.vector_dim = 2;
  CHECK(vectors.codes_per_row(std::numeric_limits<std::size_t>::max()) == two_to(63));

  const Scheme int4 = Scheme::symmetric_int(4, Granularity::per_tensor());
  // 32 x 2^62 weights: 2^64 bits a row wrapped packed_words to 0 (a 656-byte file was accepted).
  require_all(error_of<invalid_argument>([&] { (void)int4.storage(32, two_to(62)); }),
              {"shape [32, 4611686018427387904]", "overflows"});
  require_all(error_of<invalid_argument>([&] { QuantizedMatrix(int4, two_to(40), two_to(40)); }),
              {"dequantized floats", "overflows"});
  const StorageSizes sizes = Scheme::asymmetric_int(3, Granularity::per_group(32)).storage(5, 100);
  CHECK(sizes.words_per_row == 10);
  CHECK(sizes.code_words == 50);
  CHECK(sizes.scale_grid.rows == 5);
  CHECK(sizes.scale_grid.cols == 4);
  CHECK(sizes.scale_bytes == 40);
  CHECK(sizes.zero_words_per_row == 1);
  CHECK(sizes.zero_code_words == 5);
}

// ---------------------------------------------------------------------------------------------
// Quantized files whose derived sizes wrap

TEST_CASE("quantized files with overflowing derived sizes are refused", "[hostile][quantized]") {
  TempDir dir;
  const auto refused = [&](const fs::path& path, std::initializer_list<std::string> parts) {
    const io::SafetensorsFile file(path);
    require_all(error_of([&] { (void)io::read_quantized(file, "w.weight"); }), parts);
  };
  SECTION("32 x 2^62 int4: packed_words wrapped to an empty qweight") {
    const fs::path path = write_quantized_file(
        dir.path / "wrap.safetensors", int4_scheme(R"("granularity":"tensor")"), 32, two_to(62),
        {{"w.qweight", io::DType::U32, {32, 0}}, {"w.scales", io::DType::F16, {1, 1}}});
    CHECK(fs::file_size(path) < 1000);
    refused(path, {"wrap.safetensors", "w.weight", "overflows"});
    require_all(error_of([&] { (void)model::load_llama(path); }), {"wrap.safetensors"});
  }
  SECTION("group size 2^64 - 1: the scale grid had zero columns") {
    const fs::path path = write_quantized_file(
        dir.path / "group.safetensors",
        int4_scheme(R"("granularity":"group","group_size":18446744073709551615)"), 4, 64,
        {{"w.qweight", io::DType::U32, {4, 8}}, {"w.scales", io::DType::F16, {4, 0}}});
    refused(path, {"group.safetensors", "w.weight", "group size must be at most"});
  }
  SECTION("a group of 2^32 columns is one group a row, and the file must say so") {
    const fs::path path = write_quantized_file(
        dir.path / "group.safetensors",
        int4_scheme(R"("granularity":"group","group_size":4294967296)"), 4, 64,
        {{"w.qweight", io::DType::U32, {4, 8}}, {"w.scales", io::DType::F16, {4, 0}}});
    refused(path, {"w.scales", "[4, 0]", "expected [4, 1]"});
  }
  SECTION("uint4 zero points of a huge group: the qzeros had zero columns") {
    const fs::path path = write_quantized_file(
        dir.path / "zeros.safetensors",
        R"({"element":"uint","bits":4,"granularity":"group","group_size":18446744073709551615,)"
        R"("scale_format":"f16","zero_format":"code"})",
        4, 64,
        {{"w.qweight", io::DType::U32, {4, 8}},
         {"w.scales", io::DType::F16, {4, 0}},
         {"w.qzeros", io::DType::U32, {4, 0}}});
    refused(path, {"zeros.safetensors", "group size"});
  }
  SECTION("a huge vector_dim") {
    const fs::path path = write_quantized_file(
        dir.path / "vector.safetensors",
        R"({"element":"codebook","bits":2,"granularity":"none","scale_format":"f16",)"
        R"("vector_dim":1099511627776,"codebook_granularity":"tensor","codebook_format":"f16"})",
        4, 64, {{"w.qweight", io::DType::U32, {4, 1}}});
    refused(path, {"vector.safetensors", "vector_dim must be at most"});
  }
  SECTION("a huge double-quantization block") {
    const fs::path path = write_quantized_file(
        dir.path / "dq.safetensors",
        R"({"element":"nf4","bits":4,"granularity":"group","group_size":64,"scale_format":"f32",)"
        R"("double_quant_block":18446744073709551615})",
        4, 64,
        {{"w.qweight", io::DType::U32, {4, 8}},
         {"w.scales", io::DType::U8, {4, 1}},
         {"w.scale_absmax", io::DType::F32, {0}},
         {"w.scale_offset", io::DType::F32, {1}}});
    refused(path, {"dq.safetensors", "double quantization blocks"});
  }
}

// ---------------------------------------------------------------------------------------------
// safetensors headers

TEST_CASE("safetensors refuses repeated keys instead of picking one", "[hostile][safetensors]") {
  TempDir dir;
  const auto refused = [](const fs::path& path, std::initializer_list<std::string> parts) {
    require_all(error_of([&] { io::SafetensorsFile file(path); }), parts);
  };
  SECTION("the same tensor twice") {
    refused(write_raw(dir.path / "same.safetensors",
                      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                      4),
            {"same.safetensors", "tensor 'a'", "appears twice"});
  }
  SECTION("one name at two offsets (was a hole in the data section)") {
    refused(write_raw(dir.path / "two.safetensors",
                      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                      8),
            {"tensor 'a'", "tensor name appears twice"});
  }
  SECTION("a field twice in one entry") {
    refused(write_raw(dir.path / "field.safetensors",
                      R"({"a":{"dtype":"F32","dtype":"U8","shape":[1],"data_offsets":[0,4]}})", 4),
            {"tensor 'a'", "key 'dtype' appears twice"});
  }
  SECTION("a metadata key twice") {
    refused(write_raw(dir.path / "meta.safetensors", R"({"__metadata__":{"k":"1","k":"2"}})"),
            {"key 'k' appears twice"});
  }
}

TEST_CASE("readers refuse what is not a regular file", "[hostile][files]") {
  TempDir dir;
  const fs::path fifo = dir.path / "pipe.safetensors";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const fs::path directory = dir.path / "dir.safetensors";
  fs::create_directory(directory);
  // A FIFO must be refused without waiting for a writer (the test would hang otherwise).
  for (const auto& [path, kind] :
       {std::pair{fifo, "a FIFO"}, std::pair{fs::path("/dev/null"), "a character device"},
        std::pair{directory, "a directory"}}) {
    INFO(path);
    require_all(error_of([&] { io::SafetensorsFile file(path); }),
                {path.string(), "not a regular file", kind});
    require_all(error_of([&] { io::Llama2cFile file(path); }),
                {path.string(), "not a regular file"});
    require_all(error_of([&] { (void)io::detect_checkpoint_format(path); }),
                {path.string(), "not a regular file"});
    require_all(error_of([&] { (void)model::load_llama(path); }), {"not a regular file"});
    require_all(error_of([&] { io::ShardedSafetensors sharded(path); }),
                {path.string(), "not a regular file"});
  }
}

TEST_CASE("a broken .safetensors file is reported as safetensors", "[hostile][files]") {
  TempDir dir;
  const model::LlamaConfig config = tiny_config();
  const fs::path good = write_model(dir.path / "good.safetensors", tiny_tensors(config), config);
  std::string bytes = read_text(good);
  const auto write = [&](const std::string& name, const std::string& content) {
    const fs::path path = dir.path / name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  };
  SECTION("a header length past the end") {
    std::string bad = bytes;
    bad[5] = '\x01';  // a length of 2^40 and more
    const fs::path path = write("long.safetensors", bad);
    CHECK(io::detect_checkpoint_format(path) == "safetensors");
    const std::string message = error_of([&] { (void)model::load_llama(path); });
    require_all(message, {"long.safetensors", "header length"});
    CHECK(message.find("llama2.c") == std::string::npos);
  }
  SECTION("truncated inside its header") {
    const fs::path path = write("cut.safetensors", bytes.substr(0, 40));
    const std::string message = error_of([&] { (void)model::load_llama(path); });
    require_all(message, {"cut.safetensors", "runs past the end"});
    CHECK(message.find("llama2.c") == std::string::npos);
  }
  SECTION("under another name: both readings' reasons") {
    const fs::path path = write("cut.bin", bytes.substr(0, 40));
    require_all(error_of([&] { (void)io::detect_checkpoint_format(path); }),
                {"cut.bin", "neither a safetensors file nor a llama2.c checkpoint",
                 "as safetensors: header length", "as llama2.c: implausible llama2.c header"});
  }
}

TEST_CASE("sharded checkpoints: a directory index is an io_error", "[hostile][files]") {
  TempDir dir;
  require_all(error_of([&] { io::ShardedSafetensors sharded(dir.path); }),
              {dir.path.string(), "not a regular file (a directory)"});
}

// ---------------------------------------------------------------------------------------------
// Config values

TEST_CASE("config values that would allocate or compute absurdly are refused",
          "[hostile][config]") {
  TempDir dir;
  const model::LlamaConfig config = tiny_config();
  const auto tensors = tiny_tensors(config);
  const auto refused = [&](const std::string& field, const std::string& value,
                           std::initializer_list<std::string> parts) {
    INFO(field << " = " << value);
    const fs::path path = write_model(dir.path / "config.safetensors", tensors, config,
                                      config_json(config, field, value));
    const std::string message = error_of([&] { (void)model::load_llama(path); });
    require_all(message, {"config.safetensors", "lowbit.llama.config"});
    require_all(message, parts);
  };
  refused("seq_len", "2147483647", {"seq_len is 2147483647, outside [1, 2097152]"});
  refused("seq_len", "16777216", {"seq_len is 16777216"});
  refused("n_heads", "0", {"n_heads is 0, outside [1, 1024]"});
  refused("n_heads", "3", {"dim 8 is not a multiple of n_heads 3"});
  refused("n_heads", "8", {"head size 1 is odd"});
  refused("n_kv_heads", "0", {"n_kv_heads is 0"});
  refused("dim", "100000", {"dim is 100000"});
  refused("rope_theta", "1e300", {"\"rope_theta\" is 1e+300, not a finite float"});
  refused("rope_theta", "1e30", {"rope_theta 1e+30 is outside [1, 1e12]"});
  refused("rope_theta", "0", {"rope_theta 0 is outside"});
  refused("norm_eps", "0", {"norm_eps 0 is outside (0, 1]"});
  refused("norm_eps", "-1e-5", {"norm_eps -1e-05 is outside"});

  // The model itself says the same, without a file.
  model::LlamaConfig no_heads = config;
  no_heads.n_heads = 0;
  CHECK(error_of<invalid_argument>([&] { model::LlamaModel(no_heads, tensors); }) ==
        "llama model: config: n_heads is 0, outside [1, 1024]");
}

TEST_CASE("the KV cache follows the positions used, not seq_len", "[hostile][model]") {
  model::LlamaConfig config = tiny_config();
  config.seq_len = io::LlamaConfigLimits::seq_len;  // the cap: 2^21 positions
  model::LlamaModel model(config, tiny_tensors(config));
  CHECK(model.cached_positions() == 0);
  model::LlamaModel reference(tiny_config(), tiny_tensors(tiny_config()));
  for (int position = 0; position < 5; ++position) {
    const auto logits = model.forward(position + 1, position);
    const auto expected = reference.forward(position + 1, position);
    CHECK(std::equal(logits.begin(), logits.end(), expected.begin(), expected.end()));
  }
  CHECK(model.cached_positions() == 8);  // doubled from 1 as positions 0..4 were reached
  // A new sequence reuses the cache without growing it.
  (void)model.forward(1, 0);
  CHECK(model.cached_positions() == 8);
}

// ---------------------------------------------------------------------------------------------
// Non-finite weights

TEST_CASE("NaN and infinite weights are refused at load on every path", "[hostile][model]") {
  TempDir dir;
  const model::LlamaConfig config = tiny_config();
  SECTION("a float safetensors model") {
    auto tensors = tiny_tensors(config);
    tensors[2].data[1 * 8 + 2] = std::numeric_limits<float>::quiet_NaN();  // wq [1, 2]
    const fs::path path = write_model(dir.path / "nan.safetensors", tensors, config);
    require_all(error_of([&] { (void)model::load_llama(path); }),
                {"nan.safetensors", "layers.0.attention.wq.weight", "weight [1, 2] is NaN"});
    tensors = tiny_tensors(config);
    tensors[1].data[3] = std::numeric_limits<float>::infinity();  // attention_norm [3]
    const fs::path inf = write_model(dir.path / "inf.safetensors", tensors, config);
    require_all(error_of([&] { (void)model::load_llama(inf); }),
                {"layers.0.attention_norm.weight", "weight [3] is infinite"});
  }
  SECTION("a quantized weight whose scale is NaN") {
    const auto tensors = tiny_tensors(config);
    QuantizedMatrix q(Scheme::symmetric_int(8, Granularity::per_channel()), 8, 8);
    for (std::size_t r = 0; r < 8; ++r) q.set_scale(r, 1.0f);
    q.set_scale(5, std::numeric_limits<float>::quiet_NaN());
    const std::string name = "layers.0.attention.wq.weight";
    std::map<std::string, std::string> metadata;
    io::add_llama_config(metadata, config);
    io::add_quantization_metadata(metadata, name, q.scheme(), 8, 8);
    std::vector<io::TensorLayout> layout;
    for (const auto& t : tensors)
      if (t.name != name) layout.push_back({t.name, io::DType::F32, t.shape});
    for (const auto& part : io::quantized_layout(name, q.scheme(), 8, 8)) layout.push_back(part);
    const fs::path path = dir.path / "scale.safetensors";
    {
      io::SafetensorsWriter writer(path, layout, metadata);
      for (const auto& t : tensors)
        if (t.name != name) writer.write(t.name, std::as_bytes(std::span<const float>(t.data)));
      io::write_quantized(writer, name, q);
      writer.finish();
    }
    require_all(error_of([&] { (void)model::load_llama(path); }),
                {"scale.safetensors", name, "dequantized weight [5, 0] is NaN"});
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs

namespace {

/// Sets the umask for a scope.
struct ScopedUmask {
  mode_t saved;
  explicit ScopedUmask(mode_t mask) : saved(::umask(mask)) {}
  ~ScopedUmask() { ::umask(saved); }
};

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

void write_small(const fs::path& path) {
  const std::vector<float> a{1, 2, 3};
  io::write_safetensors(path,
                        {{"a", io::DType::F32, {3}, std::as_bytes(std::span<const float>(a))}});
}

}  // namespace

TEST_CASE("written files get the permissions a plain create gives", "[hostile][outputs]") {
  TempDir dir;
  {
    const ScopedUmask mask(022);
    write_small(dir.path / "a.safetensors");
    CHECK(mode_of(dir.path / "a.safetensors") == 0644);
  }
  {
    const ScopedUmask mask(077);
    write_small(dir.path / "b.safetensors");
    CHECK(mode_of(dir.path / "b.safetensors") == 0600);
    // An existing destination keeps its mode, whatever the umask.
    write_small(dir.path / "a.safetensors");
    CHECK(mode_of(dir.path / "a.safetensors") == 0644);
    REQUIRE(::chmod((dir.path / "b.safetensors").c_str(), 0640) == 0);
    write_small(dir.path / "b.safetensors");
    CHECK(mode_of(dir.path / "b.safetensors") == 0640);
  }
  CHECK(temporaries_in(dir.path).empty());
}

TEST_CASE("a signal mid-write removes the temporary and leaves the destination alone",
          "[hostile][outputs]") {
  for (const int signal_number : {SIGTERM, SIGINT}) {
    INFO("signal " << signal_number);
    TempDir dir;
    const fs::path out = dir.path / "out.safetensors";
    std::ofstream(out) << "the previous contents";
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      // A plain program: the signal's default action (Catch2 installs handlers of its own).
      ::signal(signal_number, SIG_DFL);
      ::close(ready[0]);
      try {
        const std::vector<float> a(1 << 16, 1.0f);
        io::SafetensorsWriter writer(
            out, {{"a", io::DType::F32, {a.size()}}, {"b", io::DType::F32, {4}}}, {});
        writer.write("a", std::as_bytes(std::span<const float>(a)));
        const char byte = 1;
        if (::write(ready[1], &byte, 1) != 1) ::_exit(2);
        for (;;) ::pause();
      } catch (...) {
        ::_exit(3);  // never back into the test runner from the child
      }
    }
    ::close(ready[1]);
    char byte = 0;
    REQUIRE(::read(ready[0], &byte, 1) == 1);
    ::close(ready[0]);
    const std::vector<std::string> live = temporaries_in(dir.path);
    REQUIRE(live.size() == 1);
    CHECK(fs::file_size(dir.path / live[0]) > (1u << 18));  // what was written so far
    REQUIRE(::kill(child, signal_number) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == signal_number);  // still killed by the signal, as without lowbit
    CHECK(temporaries_in(dir.path).empty());
    CHECK(read_text(out) == "the previous contents");
  }
}

namespace {
extern "C" void ignore_signal(int) {}
}  // namespace

TEST_CASE("a program's own signal handler is left in place", "[hostile][outputs]") {
  struct sigaction own {
  }, saved{};
  own.sa_handler = ignore_signal;
  sigemptyset(&own.sa_mask);
  REQUIRE(::sigaction(SIGTERM, &own, &saved) == 0);
  TempDir dir;
  write_small(dir.path / "x.safetensors");
  struct sigaction after {};
  REQUIRE(::sigaction(SIGTERM, &saved, &after) == 0);
  CHECK(after.sa_handler == ignore_signal);
}
