// GGUF files (the container of llama.cpp and ggml), read: the header, every metadata value (all
// thirteen value types, arrays of arrays included), the tensor infos, and the tensor data,
// memory-mapped. Versions 2 and 3, little-endian (version 1's 32-bit counts and big-endian files
// are refused with a message that says so).
//
// A GGUF file is untrusted input. Every count, length, offset and derived size is checked against
// the bytes that are really there before anything is allocated or read: a string or array cannot
// claim more elements than the rest of the file could hold, a tensor's bytes (ggml's row size
// times its rows) must fit in the data section, tensors may not overlap, dimensions are positive
// and at most four, and a row's length is a whole number of its type's blocks. Anything else is an
// io_error naming the file, the key or tensor, and the reason, raised while the file is opened
// (the checks of llama.cpp's own gguf reader, plus the ones its 2024 overflow CVEs showed missing).
//
// Tensors come out as float (F32, F16, BF16, F64 and the integer types, converted; block types
// dequantized) or as a QuantizedMatrix whose Scheme is the tensor's ggml block layout
// (Scheme::ggml_blocks), holding its bytes as ggml stores them. ggml orders dimensions innermost
// first: dims[0] is the length of a row, so a [rows, cols] weight has dims {cols, rows}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/quantized_matrix.hpp"

namespace lowbit::detail {
class MappedFile;
}

namespace lowbit::io {

/// The type of a metadata value (enum gguf_type).
enum class GgufValueType : std::uint32_t {
  uint8 = 0,
  int8 = 1,
  uint16 = 2,
  int16 = 3,
  uint32 = 4,
  int32 = 5,
  float32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  uint64 = 10,
  int64 = 11,
  float64 = 12,
};

/// GGUF's name of a value type ("uint32", "string", "array", ...), or "unknown".
const char* to_string(GgufValueType type) noexcept;

/// One metadata value: a scalar, a string, or an array of one element type (arrays of arrays
/// nest). Arrays of numbers keep the file's bytes (one byte of file stays one byte of memory);
/// their elements are read through the accessors.
class GgufValue {
 public:
  GgufValueType type() const noexcept { return type_; }

  /// An integer scalar (any of the eight integer types) as a signed or unsigned 64-bit value;
  /// nullopt for another type or a value the result type cannot hold (a uint64 above INT64_MAX,
  /// a negative value as unsigned).
  std::optional<std::int64_t> to_int() const noexcept;
  std::optional<std::uint64_t> to_uint() const noexcept;
  /// A number (an integer or float scalar) as double; nullopt for a string, bool or array.
  std::optional<double> to_double() const noexcept;
  std::optional<bool> to_bool() const noexcept;
  /// The string of a string value, or nullptr.
  const std::string* to_string() const noexcept;

  // --- Arrays ---
  /// The elements' type (for an array value).
  GgufValueType element_type() const noexcept { return element_type_; }
  /// Elements of an array (0 for a scalar).
  std::size_t size() const noexcept { return count_; }
  /// Element `index` of an array as a scalar value (numbers, bools and strings), or the nested
  /// array; throws lowbit::invalid_argument for an index out of range or a non-array.
  GgufValue at(std::size_t index) const;
  /// The elements of an array of strings (nullptr for another value).
  const std::vector<std::string>* strings() const noexcept;

  /// How the value reads in a message or `lowbit inspect`: a scalar's value, a string quoted (cut
  /// after `max_chars`), an array as "[uint32 x 3: 1, 2, 3]" with at most `max_elements` shown.
  std::string describe(std::size_t max_elements = 8, std::size_t max_chars = 80) const;

 private:
  friend class GgufParser;

  GgufValueType type_ = GgufValueType::uint8;
  std::uint64_t scalar_bits_ = 0;  // a number or bool: the file's little-endian bits, widened
  std::string string_;
  GgufValueType element_type_ = GgufValueType::uint8;
  std::size_t count_ = 0;
  std::vector<std::uint8_t> numbers_;  // an array of numbers or bools, as in the file
  std::vector<std::string> strings_;   // an array of strings
  std::vector<GgufValue> arrays_;      // an array of arrays
};

/// ggml's tensor types as GGUF numbers them (enum ggml_type), with their block geometry: every
/// type a GGUF file may hold, whether or not lowbit decodes it, so that any file's layout can be
/// checked.
struct GgmlTypeInfo {
  std::uint32_t value;
  const char* name;           // ggml's name: "f32", "q4_1", "q6_K", "iq4_xs", ...
  std::size_t block_weights;  // weights per block (1 for the plain types)
  std::size_t block_bytes;    // bytes per block
};
/// The type numbered `value`, or nullptr for a number ggml does not define (or no longer does:
/// the removed Q4_2, Q4_3 and the repacked Q4_0_4_4 family).
const GgmlTypeInfo* find_ggml_type_info(std::uint32_t value) noexcept;

/// One tensor of an open GGUF file. `data` points into the file's mapping.
struct GgufTensorInfo {
  std::string name;
  std::vector<std::uint64_t> dims;  // ggml order: dims[0] is a row's length
  std::uint32_t type = 0;           // ggml_type number
  std::uint64_t offset = 0;         // from the start of the data section
  std::span<const std::byte> data;  // exactly the tensor's bytes

  const GgmlTypeInfo& type_info() const noexcept;  // the file was only opened if it exists
  /// Row-major shape, outermost first (the reverse of dims): {rows, cols} for a matrix.
  std::vector<std::size_t> shape() const;
  std::size_t cols() const noexcept { return static_cast<std::size_t>(dims.empty() ? 1 : dims[0]); }
  /// Rows: the product of every dimension but the first.
  std::size_t rows() const noexcept;
  std::size_t element_count() const noexcept { return rows() * cols(); }
};

/// A GGUF file, memory-mapped read-only and validated when opened (see the top of this file);
/// throws lowbit::io_error naming the file, and the key or tensor, for anything malformed.
class GgufFile {
 public:
  static constexpr std::uint32_t default_alignment = 32;
  /// Nesting of arrays in arrays beyond which a file is refused (real files nest one level:
  /// tokenizer merges as arrays of strings; the limit keeps the parser's recursion bounded).
  static constexpr std::size_t max_array_depth = 8;

  explicit GgufFile(const std::filesystem::path& path);
  ~GgufFile();
  GgufFile(GgufFile&& other) noexcept;
  GgufFile& operator=(GgufFile&& other) noexcept;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  std::uint32_t version() const noexcept { return version_; }
  /// The alignment of tensor data (general.alignment, or 32).
  std::uint32_t alignment() const noexcept { return alignment_; }
  /// Where the data section starts in the file.
  std::uint64_t data_offset() const noexcept { return data_offset_; }

  // --- Metadata ---
  /// Keys in file order.
  const std::vector<std::string>& keys() const noexcept { return keys_; }
  /// The value of `key`, or nullptr.
  const GgufValue* find(std::string_view key) const noexcept;
  /// The value of `key`; io_error naming the file and key when it is absent.
  const GgufValue& value(std::string_view key) const;
  /// Typed reads: io_error naming the file and key when the key is absent or holds another type
  /// ("metadata 'llama.block_count' is a string, not an integer"). Integers accept any integer
  /// type whose value fits; numbers accept integers and floats.
  std::int64_t get_int(std::string_view key) const;
  std::uint64_t get_uint(std::string_view key) const;
  double get_double(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  const std::vector<std::string>& get_strings(std::string_view key) const;
  /// An array of numbers as doubles / of integers as int64.
  std::vector<double> get_doubles(std::string_view key) const;
  std::vector<std::int64_t> get_ints(std::string_view key) const;
  /// The same, or `fallback` when the key is absent (a present key of the wrong type still throws).
  std::int64_t get_int(std::string_view key, std::int64_t fallback) const;
  double get_double(std::string_view key, double fallback) const;
  bool get_bool(std::string_view key, bool fallback) const;
  std::string get_string(std::string_view key, std::string_view fallback) const;

  // --- Tensors ---
  /// Tensor infos in file order.
  const std::vector<GgufTensorInfo>& tensors() const noexcept { return tensors_; }
  bool contains(std::string_view name) const noexcept;
  /// io_error naming the file and tensor when there is no such tensor.
  const GgufTensorInfo& tensor(std::string_view name) const;
  /// The tensor as float, row-major: F32 copied, F16/BF16/F64/I8/I16/I32/I64 converted, ggml block
  /// types lowbit stores (ggml_type_table) dequantized as ggml does. Throws io_error for a type
  /// lowbit cannot decode, naming it.
  std::vector<float> to_float(std::string_view name) const;
  /// Whether `to_quantized` can take the tensor: its type is a block layout in ggml_type_table.
  bool is_block_layout(const GgufTensorInfo& info) const noexcept;
  /// The tensor's bytes as a [rows, cols] QuantizedMatrix with Scheme::ggml_blocks(type) (F16 and
  /// BF16 too, as one-weight blocks). Throws io_error naming the tensor for another type.
  QuantizedMatrix to_quantized(std::string_view name) const;

 private:
  friend class GgufParser;

  std::filesystem::path path_;
  std::unique_ptr<lowbit::detail::MappedFile> mapping_;
  std::uint32_t version_ = 0;
  std::uint32_t alignment_ = default_alignment;
  std::uint64_t data_offset_ = 0;
  std::vector<std::string> keys_;
  std::map<std::string, GgufValue, std::less<>> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

/// Whether the file at `path` starts with GGUF's magic "GGUF" (reads four bytes; false for a
/// shorter or unreadable file).
bool has_gguf_magic(const std::filesystem::path& path) noexcept;

}  // namespace lowbit::io
