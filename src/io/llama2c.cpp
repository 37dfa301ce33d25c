#include "lowbit/io/llama2c.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>

#include "lowbit/detail/checked_arithmetic.hpp"
#include "lowbit/error.hpp"
#include "lowbit/io/safetensors.hpp"

namespace lowbit::io {

// The format is little-endian and read by copying bytes.
static_assert(std::endian::native == std::endian::little, "llama2c reader assumes little-endian");

namespace {

constexpr std::uint64_t header_bytes = 7 * sizeof(std::int32_t);

std::uint64_t file_size_of(const std::filesystem::path& path) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) throw io_error("cannot read file: " + ec.message(), {path.string(), "", {}});
  return size;
}

std::ifstream open(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error("cannot open file", {path.string(), "", {}});
  return in;
}

void read_bytes(std::ifstream& in, const std::filesystem::path& path, void* out, std::size_t bytes,
                const std::string& what) {
  in.read(static_cast<char*>(out), static_cast<std::streamsize>(bytes));
  if (static_cast<std::size_t>(in.gcount()) != bytes)
    throw io_error("read failed inside " + what + " (needs " + std::to_string(bytes) +
                       " bytes, got " + std::to_string(in.gcount()) + ")",
                   {path.string(), "", {}});
}

// One float32 array of the file, in file order.
struct Entry {
  std::string name;  // empty for the RoPE tables, which are skipped
  std::vector<std::size_t> shape;
  detail::CheckedSize bytes() const { return detail::checked_product(shape, sizeof(float)); }
};

}  // namespace

Llama2cFile::Llama2cFile(const std::filesystem::path& path) : path_(path) {
  const std::string file = path.string();
  const std::uint64_t size = regular_file_size(path);  // no FIFO, device or directory
  if (size < header_bytes)
    throw io_error("file ends inside the header (needs " + std::to_string(header_bytes) +
                       " bytes, has " + std::to_string(size) + ")",
                   {file, "", {}});
  std::ifstream in = open(path);
  std::int32_t h[7];
  read_bytes(in, path, h, sizeof h, "the header");

  LlamaConfig& config = config_;
  config.dim = h[0];
  config.hidden_dim = h[1];
  config.n_layers = h[2];
  config.n_heads = h[3];
  config.n_kv_heads = h[4];
  config.shared_classifier = h[5] > 0;
  // Widened first: negating INT32_MIN would overflow. Out-of-range values fail the check below.
  const std::int64_t vocab_size = h[5] < 0 ? -std::int64_t{h[5]} : std::int64_t{h[5]};
  config.vocab_size = vocab_size > LlamaConfigLimits::vocab_size ? 0 : static_cast<int>(vocab_size);
  config.seq_len = h[6];

  // Plausibility: the bounds and consistency every reader holds a config to (llama_config.hpp).
  if (const std::string problem = llama_config_problem(config); !problem.empty())
    throw io_error("implausible llama2.c header (dim=" + std::to_string(h[0]) +
                       ", hidden_dim=" + std::to_string(h[1]) +
                       ", n_layers=" + std::to_string(h[2]) + ", n_heads=" + std::to_string(h[3]) +
                       ", n_kv_heads=" + std::to_string(h[4]) + ", vocab_size=" +
                       std::to_string(h[5]) + ", seq_len=" + std::to_string(h[6]) + "): " + problem,
                   {file, "", {}});

  const auto dim = static_cast<std::size_t>(config.dim);
  const auto hidden = static_cast<std::size_t>(config.hidden_dim);
  const auto kv_dim = static_cast<std::size_t>(config.kv_dim());
  const auto vocab = static_cast<std::size_t>(config.vocab_size);
  const auto n_layers = static_cast<std::size_t>(config.n_layers);
  const auto rope =
      static_cast<std::size_t>(config.seq_len) * static_cast<std::size_t>(config.head_size() / 2);

  // The file's layout: each per-layer block holds that array for every layer in turn.
  std::vector<Entry> layout;
  layout.push_back({"tok_embeddings.weight", {vocab, dim}});
  const auto per_layer = [&](const std::string& suffix, std::vector<std::size_t> shape) {
    for (std::size_t l = 0; l < n_layers; ++l)
      layout.push_back({"layers." + std::to_string(l) + "." + suffix, shape});
  };
  per_layer("attention_norm.weight", {dim});
  per_layer("attention.wq.weight", {dim, dim});
  per_layer("attention.wk.weight", {kv_dim, dim});
  per_layer("attention.wv.weight", {kv_dim, dim});
  per_layer("attention.wo.weight", {dim, dim});
  per_layer("ffn_norm.weight", {dim});
  per_layer("feed_forward.w1.weight", {hidden, dim});
  per_layer("feed_forward.w2.weight", {dim, hidden});
  per_layer("feed_forward.w3.weight", {hidden, dim});
  layout.push_back({"norm.weight", {dim}});
  layout.push_back({"", {rope}});  // freq_cis_real
  layout.push_back({"", {rope}});  // freq_cis_imag
  if (!config.shared_classifier) layout.push_back({"output.weight", {vocab, dim}});

  // Check the size against the header before reading anything, so a wrong header costs nothing.
  std::uint64_t offset = header_bytes;
  for (const Entry& e : layout) {
    const std::uint64_t bytes = e.bytes().value<io_error>("the tensor", {file, e.name, e.shape});
    if (!e.name.empty()) tensors_.push_back({e.name, e.shape, offset});
    if (bytes > size - offset) {
      const std::string what = e.name.empty() ? "the RoPE tables" : "tensor " + e.name;
      throw io_error("file ends inside " + what + " (needs " + std::to_string(bytes) +
                         " bytes, has " + std::to_string(size - offset) + ")",
                     {file, e.name, e.shape});
    }
    offset += bytes;
  }
  if (offset != size)
    throw io_error("file has " + std::to_string(size - offset) +
                       " bytes after the last tensor (the header says it ends at byte " +
                       std::to_string(offset) + ")",
                   {file, "", {}});
}

NamedTensor Llama2cFile::read(std::string_view name) const {
  const std::string file = path_.string();
  for (const TensorEntry& e : tensors_) {
    if (e.name != name) continue;
    // Sizes checked when the file was opened: they fit in it.
    const std::size_t count = Entry{e.name, e.shape}.bytes().value("") / sizeof(float);
    NamedTensor tensor{e.name, e.shape, std::vector<float>(count)};
    std::ifstream in = open(path_);
    in.seekg(static_cast<std::streamoff>(e.offset));
    read_bytes(in, path_, tensor.data.data(), count * sizeof(float), "tensor " + e.name);
    for (std::size_t i = 0; i < count; ++i) {
      if (std::isfinite(tensor.data[i])) continue;
      // Its position: [row, column] of a matrix, [index] of a vector. (append, not operator+:
      // GCC 12 reports a false -Wrestrict on the chain of temporaries)
      std::string reason = "weight ";
      if (e.shape.size() == 2)
        reason.append(detail::shape_text(i / e.shape[1], i % e.shape[1]));
      else
        reason.append("[").append(std::to_string(i)).append("]");
      reason.append(" is ").append(std::isnan(tensor.data[i]) ? "NaN" : "infinite");
      throw io_error(reason, {file, e.name, e.shape});
    }
    return tensor;
  }
  throw io_error("no tensor named '" + std::string(name) + "'", {file, std::string(name), {}});
}

Llama2cCheckpoint read_llama2c(const std::filesystem::path& path) {
  const Llama2cFile file(path);
  Llama2cCheckpoint checkpoint;
  checkpoint.config = file.config();
  for (const Llama2cFile::TensorEntry& e : file.tensors())
    checkpoint.tensors.push_back(file.read(e.name));
  return checkpoint;
}

Tokenizer read_llama2c_tokenizer(const std::filesystem::path& path, int vocab_size) {
  const std::string file = path.string();
  if (vocab_size <= 0)
    throw invalid_argument(
        "read_llama2c_tokenizer: vocab_size " + std::to_string(vocab_size) + " is not positive",
        {file, "", {}});
  const std::uint64_t size = file_size_of(path);
  const auto malformed = [&](const std::string& reason) {
    return io_error(reason, {file, "", {}});
  };

  // int32 max_token_length, then per token at least a float32 score and an int32 length: check
  // vocab_size against the file before allocating for it, so that a wrong one costs nothing.
  constexpr std::uint64_t header = sizeof(std::int32_t);
  constexpr std::uint64_t least_per_token = sizeof(float) + sizeof(std::int32_t);
  const auto tokens = static_cast<std::uint64_t>(vocab_size);
  if (size < header)
    throw malformed("file ends inside the header (needs " + std::to_string(header) +
                    " bytes, has " + std::to_string(size) + ")");
  if ((size - header) / least_per_token < tokens)
    throw malformed("a file of " + std::to_string(size) + " bytes cannot hold " +
                    std::to_string(vocab_size) + " tokens (each takes at least " +
                    std::to_string(least_per_token) + " bytes; is vocab_size right?)");

  std::ifstream in = open(path);
  std::uint64_t offset = 0;
  // Reads `bytes` more, or says where the file ended.
  const auto take = [&](void* out, std::uint64_t bytes, const std::string& what) {
    if (bytes > size - offset)
      throw malformed("file ends inside " + what + " (needs " + std::to_string(bytes) +
                      " bytes, has " + std::to_string(size - offset) + ")");
    read_bytes(in, path, out, static_cast<std::size_t>(bytes), what);
    offset += bytes;
  };

  std::int32_t max_token_length = 0;
  take(&max_token_length, sizeof max_token_length, "the header");
  if (max_token_length <= 0 || max_token_length > (1 << 16))
    throw malformed("implausible max_token_length " + std::to_string(max_token_length));

  std::vector<std::string> vocab(static_cast<std::size_t>(vocab_size));
  std::vector<float> scores(static_cast<std::size_t>(vocab_size));
  for (std::size_t i = 0; i < vocab.size(); ++i) {
    const std::string what = "token " + std::to_string(i);
    take(&scores[i], sizeof(float), what);
    if (!std::isfinite(scores[i])) throw malformed(what + " has a NaN or infinite score");
    std::int32_t length = 0;
    take(&length, sizeof length, what);
    if (length < 0 || length > max_token_length)
      throw malformed(what + " has length " + std::to_string(length) + ", outside [0, " +
                      std::to_string(max_token_length) + "]");
    // Checked before the allocation: a token holds no more bytes than the file has left.
    const auto bytes = static_cast<std::uint64_t>(length);
    if (bytes > size - offset)
      throw malformed("file ends inside " + what + " (needs " + std::to_string(bytes) +
                      " bytes, has " + std::to_string(size - offset) + ")");
    vocab[i].resize(static_cast<std::size_t>(bytes));
    take(vocab[i].data(), bytes, what);
  }
  if (offset != size)
    throw malformed("file has " + std::to_string(size - offset) + " bytes after token " +
                    std::to_string(vocab_size - 1) + " (is vocab_size right?)");

  Tokenizer tokenizer(std::move(vocab), std::move(scores));
  // llama2.c's encode writes a byte without a token as token 3 + byte, with no flag in the file to
  // say otherwise, and SentencePiece's byte fallback needs all 256 byte pieces: a vocabulary
  // without them where llama2.c looks is one that llama2.c itself would misencode or index past.
  // Refused here, naming the file, rather than at the first unusual byte of some text.
  if (vocab_size < Tokenizer::byte_fallback_vocab_size)
    throw malformed("the vocabulary has " + std::to_string(vocab_size) +
                    " tokens; llama2.c's byte fallback needs at least " +
                    std::to_string(Tokenizer::byte_fallback_vocab_size) +
                    " (<unk>, <s>, </s>, then <0x00>..<0xFF> at tokens 3..258)");
  if (!tokenizer.byte_fallback()) {
    for (int b = 0; b < 256; ++b) {
      const int id = Tokenizer::byte_fallback_offset + b;
      const std::string& piece = tokenizer.piece(id);
      if (piece.size() == 6 && tokenizer.decode(0, id) == std::string(1, static_cast<char>(b)))
        continue;
      char expected[8];
      std::snprintf(expected, sizeof expected, "<0x%02X>", static_cast<unsigned>(b));
      throw malformed("token " + std::to_string(id) + " is \"" + piece +
                      "\", not the byte-fallback " + "token " + expected +
                      " (llama2.c encodes a byte without a token as token " + "3 + byte)");
    }
  }
  // llama2.c's encode puts the " " token before every non-empty text.
  if (tokenizer.lookup(" ") < 0) throw malformed("the vocabulary has no \" \" token");
  return tokenizer;
}

}  // namespace lowbit::io
