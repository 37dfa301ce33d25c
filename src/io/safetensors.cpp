#include "lowbit/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "lowbit/detail/checked_arithmetic.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/format/minifloat.hpp"
#include "mapped_file.hpp"

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

// Element count times element size, or nullopt when it overflows (or cannot be addressed).
std::optional<std::size_t> byte_size(const std::vector<std::size_t>& shape, std::size_t elem) {
  return detail::checked_product(shape, elem).at_most(detail::max_object_bytes).get();
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
  for (std::size_t d : shape) n *= d;  // SafetensorsFile checked that the product fits
  return n;
}

std::uint64_t regular_file_size(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw io_error("cannot open: " + errno_text(), ErrorContext{path.string(), {}, {}});
  if (!S_ISREG(st.st_mode))
    throw io_error(lowbit::detail::not_regular_file(st.st_mode), {path.string(), {}, {}});
  return static_cast<std::uint64_t>(st.st_size);
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

  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below).
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("cannot open: " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    fail("cannot stat: " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(lowbit::detail::not_regular_file(st.st_mode));
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
  // A key repeated in one object is refused, not resolved: JSON parsers disagree on which copy
  // wins, so two readers could see different tensors in one file.
  std::vector<std::set<std::string>> open_objects;  // keys seen so far, innermost object last
  std::string top_level_key, duplicate_key, duplicate_owner;
  std::size_t duplicate_depth = 0;
  const json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (depth == 1) top_level_key = key;
      if (!open_objects.back().insert(key).second && duplicate_key.empty()) {
        duplicate_key = key;
        duplicate_owner = top_level_key;
        duplicate_depth = static_cast<std::size_t>(depth);
      }
    }
    return true;
  };
  json header =
      json::parse(header_begin, header_begin + header_size, on_event, /*exceptions=*/false);
  if (header.is_discarded()) fail("header is not valid JSON");
  if (!header.is_object()) fail("header is not a JSON object");
  if (!duplicate_key.empty()) {
    if (duplicate_depth == 1)
      fail(duplicate_key == "__metadata__" ? "__metadata__ appears twice in the header"
                                           : "tensor name appears twice in the header",
           duplicate_key == "__metadata__" ? std::string() : duplicate_key);
    fail("key '" + duplicate_key + "' appears twice in one object of the header",
         duplicate_owner == "__metadata__" ? std::string() : duplicate_owner);
  }

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

// --- Temporaries removed on SIGINT and SIGTERM ---
//
// A writer's temporary is registered here while it is live. Where SIGINT or SIGTERM would simply
// kill the process (their disposition is the default), a handler is installed that unlinks every
// registered temporary and re-raises the signal with the default action, so the process still
// ends as the signal says. A program that ignores these signals, or handles them itself, keeps its
// choice: it goes on (or unwinds), and the writer's destructor removes the temporary.
//
// Fixed slots of heap-allocated paths: the handler takes a path with exchange(nullptr) before
// using it, and a writer frees only the path it takes back itself, so the two never race on
// memory. Beyond the slots' count of live writers, temporaries are still removed by the
// destructors, just not on a signal.
struct TemporarySlot {
  std::atomic<char*> path{nullptr};
  std::atomic<pid_t> owner{0};  // a forked child must not remove its parent's temporaries
};
constexpr std::size_t temporary_slot_count = 64;
TemporarySlot temporary_slots[temporary_slot_count];
static_assert(std::atomic<char*>::is_always_lock_free && std::atomic<pid_t>::is_always_lock_free,
              "the signal handler may only use lock-free atomics");

void remove_temporaries_and_reraise(int signal_number) {
  const int saved_errno = errno;
  const pid_t self = ::getpid();
  for (TemporarySlot& slot : temporary_slots) {
    if (slot.owner.load() != self) continue;
    if (char* path = slot.path.exchange(nullptr)) ::unlink(path);  // leaked: the process ends
  }
  // SA_RESETHAND restored the default action; the signal is blocked until this handler returns,
  // then delivered again.
  ::raise(signal_number);
  errno = saved_errno;
}

void install_temporary_cleanup() {
  for (const int signal_number : {SIGINT, SIGTERM}) {
    struct sigaction current {};
    if (::sigaction(signal_number, nullptr, &current) != 0) continue;
    if ((current.sa_flags & SA_SIGINFO) != 0 || current.sa_handler != SIG_DFL) continue;
    struct sigaction action {};
    action.sa_handler = remove_temporaries_and_reraise;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND;
    ::sigaction(signal_number, &action, nullptr);
  }
}

/// Registers `path` for removal on a signal; returns its slot, or -1 when every slot is taken.
int register_temporary(const std::string& path) {
  install_temporary_cleanup();
  char* copy = new char[path.size() + 1];
  std::memcpy(copy, path.c_str(), path.size() + 1);
  for (std::size_t i = 0; i < temporary_slot_count; ++i) {
    char* expected = nullptr;
    if (temporary_slots[i].path.load() != nullptr) continue;
    temporary_slots[i].owner.store(::getpid());
    if (temporary_slots[i].path.compare_exchange_strong(expected, copy)) return static_cast<int>(i);
  }
  delete[] copy;
  return -1;
}

void unregister_temporary(int slot) noexcept {
  if (slot < 0) return;
  // nullptr when a handler took the path (it is unlinking it, or has)
  delete[] temporary_slots[static_cast<std::size_t>(slot)].path.exchange(nullptr);
}

// The permissions a plain create would give the output: an existing destination keeps its mode;
// a new one gets 0666 minus the umask (and any default ACL), as open(O_CREAT, 0666) applies them.
int create_temporary(std::string& temp_path, const std::string& destination) {
  static std::atomic<std::uint64_t> counter{0};
  constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  for (int attempt = 0; attempt < 100; ++attempt) {
    // splitmix64 of the pid, a counter and the time: unique enough, and O_EXCL settles collisions
    std::uint64_t x =
        (static_cast<std::uint64_t>(::getpid()) << 32) ^ counter.fetch_add(1) ^
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    temp_path = destination + ".tmp.";
    for (int i = 0; i < 6; ++i, x /= 62) temp_path += alphabet[x % 62];
    const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) {
      if (fd < 0) temp_path.clear();
      return fd;
    }
  }
  temp_path.clear();
  return -1;
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

  // The temporary lies in the target's directory, so the final rename stays on one filesystem
  // (atomic); the destination itself is not touched before that rename.
  fd_ = create_temporary(temp_path_, file);
  if (fd_ < 0)
    throw io_error("cannot create temporary file: " + errno_text(), ErrorContext{file, {}, {}});
  signal_slot_ = register_temporary(temp_path_);
  try {
    struct stat existing {};
    if (::stat(file.c_str(), &existing) == 0 && S_ISREG(existing.st_mode) &&
        ::fchmod(fd_, existing.st_mode & 0777) != 0)
      throw io_error("cannot give the temporary file the destination's mode: " + errno_text(),
                     ErrorContext{file, {}, {}});
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
      signal_slot_(std::exchange(other.signal_slot_, -1)),
      finished_(std::exchange(other.finished_, true)) {}

SafetensorsWriter::~SafetensorsWriter() { abandon(); }

void SafetensorsWriter::abandon() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!finished_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
  unregister_temporary(std::exchange(signal_slot_, -1));
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
  unregister_temporary(std::exchange(signal_slot_, -1));
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
  // Read whole (a directory or FIFO is refused first; a stream would throw or block on one).
  const std::uint64_t size = regular_file_size(index_path);
  if (size > max_header_size)
    fail("index of " + std::to_string(size) + " bytes exceeds the 100 MB limit");
  std::string text(static_cast<std::size_t>(size), '\0');
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("cannot open index: " + errno_text());
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::read(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? errno_text() : "the file shrank while being read";
      ::close(fd);
      fail("cannot read index: " + why);
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  json index = json::parse(text, nullptr, /*allow_exceptions=*/false);
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
