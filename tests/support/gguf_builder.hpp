// Builds GGUF files byte by byte for tests and fuzz seeds: valid ones, and ones damaged in exactly
// one field. Nothing is checked here (a test may write any count, type or offset it likes).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::test {

/// Little-endian bytes appended one field at a time.
class ByteWriter {
 public:
  ByteWriter& u8(std::uint8_t v) { return raw(&v, 1); }
  ByteWriter& u32(std::uint32_t v) { return raw(&v, 4); }
  ByteWriter& u64(std::uint64_t v) { return raw(&v, 8); }
  ByteWriter& f32(float v) { return raw(&v, 4); }
  /// A GGUF string: uint64 length, then the bytes.
  ByteWriter& str(std::string_view s) {
    u64(s.size());
    bytes_.append(s);
    return *this;
  }
  ByteWriter& raw(const void* data, std::size_t size) {
    bytes_.append(static_cast<const char*>(data), size);
    return *this;
  }
  ByteWriter& append(const std::string& more) {
    bytes_ += more;
    return *this;
  }
  const std::string& bytes() const noexcept { return bytes_; }
  std::size_t size() const noexcept { return bytes_.size(); }

 private:
  std::string bytes_;
};

/// A GGUF file: metadata entries and tensor infos as raw bytes, then the data section.
class GgufBuilder {
 public:
  // Value type numbers (enum gguf_type).
  static constexpr std::uint32_t uint8 = 0, int8 = 1, uint32 = 4, int32 = 5, float32 = 6,
                                 boolean = 7, string = 8, array = 9, uint64 = 10, int64 = 11,
                                 float64 = 12;

  std::uint32_t version = 3;
  std::uint64_t alignment = 32;  // where the data section starts (general.alignment is a key)
  /// Counts written in the header; by default the number of entries and tensors added.
  std::int64_t key_count_override = -1, tensor_count_override = -1;

  /// One metadata entry: key, type, then `payload` (the value's bytes as GGUF lays them out).
  GgufBuilder& key(std::string_view name, std::uint32_t type, const ByteWriter& payload) {
    metadata_.str(name).u32(type).append(payload.bytes());
    ++keys_;
    return *this;
  }
  GgufBuilder& key_u32(std::string_view name, std::uint32_t v) {
    return key(name, uint32, ByteWriter().u32(v));
  }
  GgufBuilder& key_f32(std::string_view name, float v) {
    return key(name, float32, ByteWriter().f32(v));
  }
  GgufBuilder& key_string(std::string_view name, std::string_view v) {
    return key(name, string, ByteWriter().str(v));
  }
  GgufBuilder& key_strings(std::string_view name, const std::vector<std::string>& items) {
    ByteWriter payload;
    payload.u32(string).u64(items.size());
    for (const std::string& item : items) payload.str(item);
    return key(name, array, payload);
  }

  /// One tensor info: ggml dims (innermost first), ggml type, offset into the data section.
  GgufBuilder& tensor(std::string_view name, const std::vector<std::uint64_t>& dims,
                      std::uint32_t type, std::uint64_t offset) {
    infos_.str(name).u32(static_cast<std::uint32_t>(dims.size()));
    for (const std::uint64_t d : dims) infos_.u64(d);
    infos_.u32(type).u64(offset);
    ++tensors_;
    return *this;
  }
  /// Bytes of the data section (tensor offsets count from its start).
  GgufBuilder& data(const std::string& bytes) {
    data_ += bytes;
    return *this;
  }

  std::string build() const {
    ByteWriter out;
    out.raw("GGUF", 4).u32(version);
    out.u64(tensor_count_override >= 0 ? static_cast<std::uint64_t>(tensor_count_override)
                                       : tensors_);
    out.u64(key_count_override >= 0 ? static_cast<std::uint64_t>(key_count_override) : keys_);
    out.append(metadata_.bytes()).append(infos_.bytes());
    std::string bytes = out.bytes();
    if (!data_.empty() && alignment > 0)
      bytes.resize((bytes.size() + alignment - 1) / alignment * alignment, '\0');
    return bytes + data_;
  }

 private:
  ByteWriter metadata_, infos_;
  std::string data_;
  std::uint64_t keys_ = 0, tensors_ = 0;
};

}  // namespace lowbit::test
