#include "lowbit/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "lowbit/error.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/format/minifloat.hpp"

namespace lowbit::io {
namespace {

using nlohmann::json;

// The reference implementation refuses larger headers; so do we, so a corrupt length cannot make
// us parse (or allocate for) gigabytes.
constexpr std::uint64_t max_header_size = 100'000'000;

struct DTypeEntry {
  DType dtype;
  std::string_view name;
  std::size_t size;
};

constexpr std::array<DTypeEntry, 15> dtype_table{{
    {DType::F64, "F64", 8},
    {DType::F32, "F32", 4},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::I64, "I64", 8},
    {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},
    {DType::I8, "I8", 1},
    {DType::U64, "U64", 8},
    {DType::U32, "U32", 4},
    {DType::U16, "U16", 2},
    {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
}};

std::string errno_text() { return std::strerror(errno); }

// Element count times element size, or nullopt when it overflows size_t.
std::optional<std::size_t> byte_size(const std::vector<std::size_t>& shape, std::size_t elem) {
  std::size_t n = elem;
  for (std::size_t d : shape) {
    if (d != 0 && n > std::numeric_limits<std::size_t>::max() / d) return std::nullopt;
    n *= d;
  }
  // A zero dimension makes the product zero even after an earlier "overflow-free" check.
  return n;
}

template <typename T>
T load(const std::byte* p) {
  T value;
  std::memcpy(&value, p, sizeof value);  // the data need not be aligned
  return value;
}

}  // namespace

std::string_view dtype_name(DType dtype) noexcept {
  for (const auto& e : dtype_table)
    if (e.dtype == dtype) return e.name;
  return "?";
}

std::size_t dtype_size(DType dtype) noexcept {
  for (const auto& e : dtype_table)
    if (e.dtype == dtype) return e.size;
  return 0;
}

std::optional<DType> dtype_from_name(std::string_view name) noexcept {
  for (const auto& e : dtype_table)
    if (e.name == name) return e.dtype;
  return std::nullopt;
}

std::size_t TensorInfo::element_count() const noexcept {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Reading

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path) {
  const std::string file = path.string();
  auto fail = [&](const std::string& reason, const std::string& tensor = {},
                  std::vector<std::size_t> shape = {}) -> void {
    unmap();
    throw io_error(reason, ErrorContext{file, tensor, std::move(shape)});
  };

  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open: " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    fail("cannot stat: " + why);
  }
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail("file is " + std::to_string(file_size) + " bytes, too short for the 8-byte header length");
  }
  void* map = ::mmap(nullptr, static_cast<std::size_t>(file_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) fail("cannot mmap: " + errno_text());
  map_ = map;
  map_size_ = static_cast<std::size_t>(file_size);
  const auto* bytes = static_cast<const std::byte*>(map_);

  std::uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i)
    header_size = (header_size << 8) | std::to_integer<std::uint64_t>(bytes[i]);
  if (header_size < 2) fail("header length " + std::to_string(header_size) + " is too small");
  if (header_size > max_header_size)
    fail("header length " + std::to_string(header_size) + " exceeds the 100 MB limit");
  if (header_size > file_size - 8)
    fail("header length " + std::to_string(header_size) + " runs past the end of the " +
         std::to_string(file_size) + "-byte file");

  const auto* header_begin = reinterpret_cast<const char*>(bytes + 8);
  json header =
      json::parse(header_begin, header_begin + header_size, nullptr, /*exceptions=*/false);
  if (header.is_discarded()) fail("header is not valid JSON");
  if (!header.is_object()) fail("header is not a JSON object");

  const std::byte* data = bytes + 8 + header_size;
  const std::uint64_t data_size = file_size - 8 - header_size;

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail("__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) fail("__metadata__ value for '" + key + "' is not a string");
        metadata_.emplace(key, value.get<std::string>());
      }
      continue;
    }
    if (!entry.is_object()) fail("header entry is not an object", name);
    auto dtype_it = entry.find("dtype");
    auto shape_it = entry.find("shape");
    auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string())
      fail("missing or non-string dtype", name);
    const auto dtype = dtype_from_name(dtype_it->get<std::string>());
    if (!dtype) fail("unknown dtype '" + dtype_it->get<std::string>() + "'", name);
    if (shape_it == entry.end() || !shape_it->is_array()) fail("missing or non-array shape", name);
    std::vector<std::size_t> shape;
    for (const auto& d : *shape_it) {
      if (!d.is_number_unsigned())
        fail("shape holds something other than a non-negative integer", name);
      const auto dim = d.get<std::uint64_t>();
      if (dim > std::numeric_limits<std::size_t>::max()) fail("shape dimension too large", name);
      shape.push_back(static_cast<std::size_t>(dim));
    }
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned())
      fail("data_offsets is not a pair of non-negative integers", name, shape);
    const auto begin = (*offsets_it)[0].get<std::uint64_t>();
    const auto end = (*offsets_it)[1].get<std::uint64_t>();
    if (begin > end)
      fail("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] are reversed",
           name, shape);
    if (end > data_size)
      fail("data_offsets end " + std::to_string(end) + " is past the " + std::to_string(data_size) +
               "-byte data section",
           name, shape);
    const auto expected = byte_size(shape, dtype_size(*dtype));
    if (!expected) fail("element count times dtype size overflows", name, shape);
    if (*expected != end - begin)
      fail("shape and dtype need " + std::to_string(*expected) + " bytes but data_offsets span " +
               std::to_string(end - begin),
           name, shape);
    tensors_.push_back(TensorInfo{
        name, *dtype, std::move(shape),
        std::span<const std::byte>(data + begin, static_cast<std::size_t>(end - begin))});
  }

  // File order is data order; ties (empty tensors) fall back to the name for a stable order.
  std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::pair(a.data.data(), a.data.size()) < std::pair(b.data.data(), b.data.size()) ||
           (a.data.data() == b.data.data() && a.data.size() == b.data.size() && a.name < b.name);
  });
  // The data section must be indexed entirely, as the reference implementation requires: in
  // offset order each tensor starts where the one before it ended, and the last ends the file.
  std::size_t cursor = 0;
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    const auto& cur = tensors_[i];
    const auto begin = static_cast<std::size_t>(cur.data.data() - data);
    if (begin < cursor) {
      if (!cur.data.empty())
        fail("data overlaps tensor '" + tensors_[i - 1].name + "'", cur.name, cur.shape);
      fail("data_offsets begin " + std::to_string(begin) + " lies inside tensor '" +
               tensors_[i - 1].name + "'; tensors must be contiguous",
           cur.name, cur.shape);
    }
    if (begin > cursor)
      fail("hole in the data section: bytes [" + std::to_string(cursor) + ", " +
               std::to_string(begin) + ") belong to no tensor",
           cur.name, cur.shape);
    cursor = begin + cur.data.size();
  }
  if (cursor != data_size)
    fail("hole in the data section: bytes [" + std::to_string(cursor) + ", " +
         std::to_string(data_size) + ") after the last tensor belong to no tensor");
  for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

SafetensorsFile::~SafetensorsFile() { unmap(); }

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      map_size_(std::exchange(other.map_size_, 0)),
      tensors_(std::move(other.tensors_)),
      index_(std::move(other.index_)),
      metadata_(std::move(other.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
    tensors_ = std::move(other.tensors_);
    index_ = std::move(other.index_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

void SafetensorsFile::unmap() noexcept {
  if (map_ != nullptr) ::munmap(map_, map_size_);
  map_ = nullptr;
  map_size_ = 0;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& t : tensors_) out.push_back(t.name);
  return out;
}

bool SafetensorsFile::contains(std::string_view name) const {
  return index_.find(name) != index_.end();
}

const TensorInfo& SafetensorsFile::info(std::string_view name) const {
  auto it = index_.find(name);
  if (it == index_.end())
    throw io_error("no such tensor", ErrorContext{path_.string(), std::string(name), {}});
  return tensors_[it->second];
}

std::vector<float> SafetensorsFile::to_float(std::string_view name) const {
  const TensorInfo& t = info(name);
  const std::size_t n = t.element_count();
  const std::size_t w = dtype_size(t.dtype);
  const std::byte* p = t.data.data();
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::byte* e = p + i * w;
    switch (t.dtype) {
      case DType::F64:
        out[i] = static_cast<float>(load<double>(e));
        break;
      case DType::F32:
        out[i] = load<float>(e);
        break;
      case DType::F16:
        out[i] = float16::from_bits(load<std::uint16_t>(e)).to_float();
        break;
      case DType::BF16:
        out[i] = bfloat16::from_bits(load<std::uint16_t>(e)).to_float();
        break;
      case DType::F8_E4M3:
        out[i] = float8_e4m3::from_bits(load<std::uint8_t>(e)).to_float();
        break;
      case DType::F8_E5M2:
        out[i] = float8_e5m2::from_bits(load<std::uint8_t>(e)).to_float();
        break;
      case DType::I64:
        out[i] = static_cast<float>(load<std::int64_t>(e));
        break;
      case DType::I32:
        out[i] = static_cast<float>(load<std::int32_t>(e));
        break;
      case DType::I16:
        out[i] = static_cast<float>(load<std::int16_t>(e));
        break;
      case DType::I8:
        out[i] = static_cast<float>(load<std::int8_t>(e));
        break;
      case DType::U64:
        out[i] = static_cast<float>(load<std::uint64_t>(e));
        break;
      case DType::U32:
        out[i] = static_cast<float>(load<std::uint32_t>(e));
        break;
      case DType::U16:
        out[i] = static_cast<float>(load<std::uint16_t>(e));
        break;
      case DType::U8:
        out[i] = static_cast<float>(load<std::uint8_t>(e));
        break;
      case DType::BOOL:
        out[i] = load<std::uint8_t>(e) != 0 ? 1.0f : 0.0f;
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

namespace {

// Compact JSON in the reference implementation's layout: "__metadata__" first, then the tensors
// in data order (nlohmann's objects sort keys, so the outer object is assembled by hand).
std::string make_header(const std::vector<TensorLayout>& layout,
                        const std::vector<std::size_t>& sizes,
                        const std::map<std::string, std::string>& metadata) {
  std::string h = "{";
  if (!metadata.empty()) {
    h.append("\"__metadata__\":");
    h.append(json(metadata).dump());
  }
  std::size_t offset = 0;
  for (std::size_t i = 0; i < layout.size(); ++i) {
    const auto& t = layout[i];
    if (h.size() > 1) h += ',';
    const std::size_t end = offset + sizes[i];
    h.append(json(t.name).dump());
    h.append(":{\"dtype\":\"");
    h.append(dtype_name(t.dtype));
    h.append("\",\"shape\":");
    h.append(json(t.shape).dump());
    h.append(",\"data_offsets\":[");
    h.append(std::to_string(offset));
    h += ',';
    h.append(std::to_string(end));
    h.append("]}");
    offset = end;
  }
  h += '}';
  h.append((8 - h.size() % 8) % 8, ' ');  // data then starts 8-byte aligned
  return h;
}

void write_all(int fd, const void* data, std::size_t size, const std::string& file,
               const std::string& tensor = {}) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw io_error("cannot write: " + errno_text(), ErrorContext{file, tensor, {}});
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

}  // namespace

SafetensorsWriter::SafetensorsWriter(std::filesystem::path path, std::vector<TensorLayout> layout,
                                     std::map<std::string, std::string> metadata)
    : path_(std::move(path)), layout_(std::move(layout)) {
  const std::string file = path_.string();
  std::set<std::string_view> seen;
  std::size_t total = 0;
  sizes_.reserve(layout_.size());
  for (const auto& t : layout_) {
    const ErrorContext ctx{file, t.name, t.shape};
    if (t.name.empty()) throw io_error("tensor name is empty", ctx);
    if (t.name == "__metadata__") throw io_error("'__metadata__' is reserved", ctx);
    if (!seen.insert(t.name).second) throw io_error("tensor name appears twice", ctx);
    if (dtype_size(t.dtype) == 0) throw io_error("invalid dtype", ctx);
    const auto bytes = byte_size(t.shape, dtype_size(t.dtype));
    if (!bytes) throw io_error("element count times dtype size overflows", ctx);
    if (*bytes > std::numeric_limits<std::size_t>::max() - total)
      throw io_error("total data size overflows", ctx);
    total += *bytes;
    sizes_.push_back(*bytes);
  }
  const std::string header = make_header(layout_, sizes_, metadata);
  if (header.size() > max_header_size)
    throw io_error("header of " + std::to_string(header.size()) + " bytes exceeds the 100 MB limit",
                   ErrorContext{file, {}, {}});
  std::array<unsigned char, 8> length{};
  for (std::size_t i = 0; i < 8; ++i)
    length[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(header.size()) >> (8 * i));

  // mkstemp in the target's directory, so the final rename stays on one filesystem (atomic).
  temp_path_ = file;
  temp_path_.append(".tmp.XXXXXX");
  fd_ = ::mkstemp(temp_path_.data());
  if (fd_ < 0) {
    temp_path_.clear();
    throw io_error("cannot create temporary file: " + errno_text(), ErrorContext{file, {}, {}});
  }
  try {
    write_all(fd_, length.data(), length.size(), file);
    write_all(fd_, header.data(), header.size(), file);
  } catch (...) {
    abandon();
    throw;
  }
}

SafetensorsWriter::SafetensorsWriter(SafetensorsWriter&& other) noexcept
    : path_(std::move(other.path_)),
      temp_path_(std::exchange(other.temp_path_, {})),
      layout_(std::move(other.layout_)),
      sizes_(std::move(other.sizes_)),
      next_(std::exchange(other.next_, 0)),
      fd_(std::exchange(other.fd_, -1)),
      finished_(std::exchange(other.finished_, true)) {}

SafetensorsWriter::~SafetensorsWriter() { abandon(); }

void SafetensorsWriter::abandon() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!finished_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
  temp_path_.clear();
}

void SafetensorsWriter::write(std::string_view name, std::span<const std::byte> data) {
  const std::string file = path_.string();
  if (finished_) throw io_error("write after finish()", ErrorContext{file, std::string(name), {}});
  if (fd_ < 0)
    throw io_error("writer failed earlier; nothing more can be written",
                   ErrorContext{file, std::string(name), {}});
  if (next_ >= layout_.size())
    throw io_error("every declared tensor has been written already",
                   ErrorContext{file, std::string(name), {}});
  const TensorLayout& expected = layout_[next_];
  if (name != expected.name)
    throw io_error("written out of order: the next declared tensor is '" + expected.name + "'",
                   ErrorContext{file, std::string(name), {}});
  if (data.size() != sizes_[next_])
    throw io_error("shape and dtype need " + std::to_string(sizes_[next_]) + " bytes but " +
                       std::to_string(data.size()) + " were given",
                   ErrorContext{file, expected.name, expected.shape});
  try {
    write_all(fd_, data.data(), data.size(), file, expected.name);
  } catch (...) {
    abandon();  // the temporary is now incomplete: drop it
    throw;
  }
  ++next_;
}

void SafetensorsWriter::finish() {
  const std::string file = path_.string();
  if (finished_) throw io_error("finish() called twice", ErrorContext{file, {}, {}});
  if (fd_ < 0)
    throw io_error("writer failed earlier; nothing to finish", ErrorContext{file, {}, {}});
  if (next_ < layout_.size())
    throw io_error(std::to_string(layout_.size() - next_) +
                       " declared tensor(s) not written, the next is '" + layout_[next_].name + "'",
                   ErrorContext{file, {}, {}});
  // Flush to disk before the rename, so a crash never leaves a complete-looking partial file.
  if (::fsync(fd_) != 0) {
    const std::string why = errno_text();
    abandon();
    throw io_error("cannot fsync: " + why, ErrorContext{file, {}, {}});
  }
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) {
    const std::string why = errno_text();
    abandon();
    throw io_error("cannot close temporary file: " + why, ErrorContext{file, {}, {}});
  }
  std::error_code ec;
  std::filesystem::rename(temp_path_, path_, ec);
  if (ec) {
    abandon();
    throw io_error("cannot rename temporary file into place: " + ec.message(),
                   ErrorContext{file, {}, {}});
  }
  finished_ = true;
  temp_path_.clear();
}

void order_like_reference(std::vector<TensorToWrite>& tensors) {
  // Position of each dtype in the Rust crate's `Dtype` enum, whose derived order it sorts by.
  auto rank = [](DType d) {
    constexpr std::array<DType, 15> rust_order{
        DType::BOOL, DType::U8,  DType::I8,  DType::F8_E5M2, DType::F8_E4M3,
        DType::I16,  DType::U16, DType::F16, DType::BF16,    DType::I32,
        DType::U32,  DType::F32, DType::F64, DType::I64,     DType::U64};
    return std::find(rust_order.begin(), rust_order.end(), d) - rust_order.begin();
  };
  std::stable_sort(tensors.begin(), tensors.end(),
                   [&](const TensorToWrite& a, const TensorToWrite& b) {
                     const auto ra = rank(a.dtype), rb = rank(b.dtype);
                     return ra != rb ? ra > rb : a.name < b.name;
                   });
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<TensorLayout> layout;
  layout.reserve(tensors.size());
  for (const auto& t : tensors) layout.push_back(TensorLayout{t.name, t.dtype, t.shape});
  // Check every size before anything is created on disk.
  for (const auto& t : tensors) {
    const auto expected = byte_size(t.shape, dtype_size(t.dtype));
    if (expected && *expected != t.data.size())
      throw io_error("shape and dtype need " + std::to_string(*expected) + " bytes but " +
                         std::to_string(t.data.size()) + " were given",
                     ErrorContext{path.string(), t.name, t.shape});
  }
  SafetensorsWriter writer(path, std::move(layout), metadata);
  for (const auto& t : tensors) writer.write(t.name, t.data);
  writer.finish();
}

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints

ShardedSafetensors::ShardedSafetensors(const std::filesystem::path& index_path)
    : index_path_(index_path) {
  const std::string file = index_path.string();
  auto fail = [&](const std::string& reason, const std::string& tensor = {}) {
    throw io_error(reason, ErrorContext{file, tensor, {}});
  };
  std::ifstream in(index_path, std::ios::binary);
  if (!in) fail("cannot open index: " + errno_text());
  json index = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object()) fail("index is not a JSON object");
  auto map_it = index.find("weight_map");
  if (map_it == index.end() || !map_it->is_object()) fail("index has no \"weight_map\" object");

  std::map<std::string, std::size_t> shard_ids;  // shard file name -> shards_ index
  for (const auto& [name, shard] : map_it->items()) {
    if (!shard.is_string()) fail("weight_map value is not a string", name);
    const std::string shard_name = shard.get<std::string>();
    const std::filesystem::path rel(shard_name);
    // Shards live beside the index; refuse paths that would read elsewhere.
    if (shard_name.empty() || rel.is_absolute() ||
        std::find(rel.begin(), rel.end(), std::filesystem::path("..")) != rel.end())
      fail("shard path '" + shard_name + "' is not a plain relative path", name);
    auto [it, inserted] = shard_ids.emplace(shard_name, shards_.size());
    if (inserted) {
      try {
        shards_.emplace_back(index_path.parent_path() / rel);
      } catch (const io_error& e) {
        fail(std::string("cannot open shard: ") + e.what(), name);
      }
    }
    if (!shards_[it->second].contains(name))
      fail("shard '" + shard_name + "' does not hold this tensor", name);
    shard_index_.emplace(name, it->second);
  }
}

std::vector<std::string> ShardedSafetensors::names() const {
  std::vector<std::string> out;
  for (const auto& [name, shard] : shard_index_) out.push_back(name);
  return out;
}

bool ShardedSafetensors::contains(std::string_view name) const {
  return shard_index_.find(name) != shard_index_.end();
}

const SafetensorsFile& ShardedSafetensors::shard_of(std::string_view name) const {
  auto it = shard_index_.find(name);
  if (it == shard_index_.end())
    throw io_error("no such tensor in the sharded checkpoint",
                   ErrorContext{index_path_.string(), std::string(name), {}});
  return shards_[it->second];
}

}  // namespace lowbit::io
