#include "lowbit/io/gguf.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "lowbit/detail/checked_arithmetic.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/half.hpp"
#include "mapped_file.hpp"

namespace lowbit::io {

static_assert(std::endian::native == std::endian::little,
              "GGUF's little-endian numbers are read in host order");

namespace {

constexpr std::uint32_t gguf_magic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr std::size_t max_dims = 4;               // GGML_MAX_DIMS

// Every ggml type a file may name (ggml.h's enum ggml_type and ggml.c's type_traits: weights and
// bytes per block). Numbers 4, 5 (Q4_2, Q4_3) and 31..33, 36..38 (the repacked Q4_0_4_4 and
// IQ4_NL_4_4 families) were removed from ggml and are refused as unknown.
constexpr GgmlTypeInfo ggml_type_infos[] = {
    {0, "f32", 1, 4},         {1, "f16", 1, 2},         {2, "q4_0", 32, 18},
    {3, "q4_1", 32, 20},      {6, "q5_0", 32, 22},      {7, "q5_1", 32, 24},
    {8, "q8_0", 32, 34},      {9, "q8_1", 32, 36},      {10, "q2_K", 256, 84},
    {11, "q3_K", 256, 110},   {12, "q4_K", 256, 144},   {13, "q5_K", 256, 176},
    {14, "q6_K", 256, 210},   {15, "q8_K", 256, 292},   {16, "iq2_xxs", 256, 66},
    {17, "iq2_xs", 256, 74},  {18, "iq3_xxs", 256, 98}, {19, "iq1_s", 256, 50},
    {20, "iq4_nl", 32, 18},   {21, "iq3_s", 256, 110},  {22, "iq2_s", 256, 82},
    {23, "iq4_xs", 256, 136}, {24, "i8", 1, 1},         {25, "i16", 1, 2},
    {26, "i32", 1, 4},        {27, "i64", 1, 8},        {28, "f64", 1, 8},
    {29, "iq1_m", 256, 56},   {30, "bf16", 1, 2},       {34, "tq1_0", 256, 54},
    {35, "tq2_0", 256, 66},   {39, "mxfp4", 32, 17},
};

// Bytes one element of `type` takes in the file, or 0 for an array or string (variable).
std::size_t scalar_bytes(GgufValueType type) noexcept {
  switch (type) {
    case GgufValueType::uint8:
    case GgufValueType::int8:
    case GgufValueType::boolean:
      return 1;
    case GgufValueType::uint16:
    case GgufValueType::int16:
      return 2;
    case GgufValueType::uint32:
    case GgufValueType::int32:
    case GgufValueType::float32:
      return 4;
    case GgufValueType::uint64:
    case GgufValueType::int64:
    case GgufValueType::float64:
      return 8;
    case GgufValueType::string:
    case GgufValueType::array:
      return 0;
  }
  return 0;
}

bool is_valid_type(std::uint32_t type) noexcept { return type <= 12; }

bool is_signed_integer(GgufValueType type) noexcept {
  return type == GgufValueType::int8 || type == GgufValueType::int16 ||
         type == GgufValueType::int32 || type == GgufValueType::int64;
}
bool is_unsigned_integer(GgufValueType type) noexcept {
  return type == GgufValueType::uint8 || type == GgufValueType::uint16 ||
         type == GgufValueType::uint32 || type == GgufValueType::uint64;
}
bool is_float(GgufValueType type) noexcept {
  return type == GgufValueType::float32 || type == GgufValueType::float64;
}

// The fewest bytes an element of `type` takes in the file: what bounds an array's count.
std::size_t min_element_bytes(GgufValueType type) noexcept {
  if (type == GgufValueType::string) return 8;  // its length
  if (type == GgufValueType::array) return 12;  // its element type and count
  return scalar_bytes(type);
}

// A scalar's little-endian bits, sign-extended for the signed types so that to_int is a cast.
std::uint64_t widen(GgufValueType type, const std::uint8_t* p) noexcept {
  std::uint64_t bits = 0;
  std::memcpy(&bits, p, scalar_bytes(type));
  switch (type) {
    case GgufValueType::int8:
      return static_cast<std::uint64_t>(static_cast<std::int64_t>(static_cast<std::int8_t>(bits)));
    case GgufValueType::int16:
      return static_cast<std::uint64_t>(static_cast<std::int64_t>(static_cast<std::int16_t>(bits)));
    case GgufValueType::int32:
      return static_cast<std::uint64_t>(static_cast<std::int64_t>(static_cast<std::int32_t>(bits)));
    default:
      return bits;
  }
}

std::optional<std::int64_t> scalar_to_int(GgufValueType type, std::uint64_t bits) noexcept {
  if (is_signed_integer(type)) return static_cast<std::int64_t>(bits);
  if (is_unsigned_integer(type)) {
    if (bits > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return std::nullopt;
    return static_cast<std::int64_t>(bits);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> scalar_to_uint(GgufValueType type, std::uint64_t bits) noexcept {
  if (is_unsigned_integer(type)) return bits;
  if (is_signed_integer(type)) {
    if (static_cast<std::int64_t>(bits) < 0) return std::nullopt;
    return bits;
  }
  return std::nullopt;
}

std::optional<double> scalar_to_double(GgufValueType type, std::uint64_t bits) noexcept {
  if (type == GgufValueType::float32) return std::bit_cast<float>(static_cast<std::uint32_t>(bits));
  if (type == GgufValueType::float64) return std::bit_cast<double>(bits);
  if (is_signed_integer(type)) return static_cast<double>(static_cast<std::int64_t>(bits));
  if (is_unsigned_integer(type)) return static_cast<double>(bits);
  return std::nullopt;
}

std::string quoted(const std::string& text, std::size_t max_chars) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < max_chars; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char digits[] = "0123456789abcdef";
      out += "\\x";
      out += digits[c >> 4];
      out += digits[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > max_chars) out += "...";
  return out + "\"";
}

std::string describe_scalar(GgufValueType type, std::uint64_t bits) {
  if (type == GgufValueType::boolean) return bits != 0 ? "true" : "false";
  if (is_float(type)) {
    std::string text = std::to_string(*scalar_to_double(type, bits));
    return text;
  }
  if (is_signed_integer(type)) return std::to_string(static_cast<std::int64_t>(bits));
  return std::to_string(bits);
}

}  // namespace

const char* to_string(GgufValueType type) noexcept {
  switch (type) {
    case GgufValueType::uint8:
      return "uint8";
    case GgufValueType::int8:
      return "int8";
    case GgufValueType::uint16:
      return "uint16";
    case GgufValueType::int16:
      return "int16";
    case GgufValueType::uint32:
      return "uint32";
    case GgufValueType::int32:
      return "int32";
    case GgufValueType::float32:
      return "float32";
    case GgufValueType::boolean:
      return "bool";
    case GgufValueType::string:
      return "string";
    case GgufValueType::array:
      return "array";
    case GgufValueType::uint64:
      return "uint64";
    case GgufValueType::int64:
      return "int64";
    case GgufValueType::float64:
      return "float64";
  }
  return "unknown";
}

const GgmlTypeInfo* find_ggml_type_info(std::uint32_t value) noexcept {
  for (const GgmlTypeInfo& info : ggml_type_infos)
    if (info.value == value) return &info;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// GgufValue

std::optional<std::int64_t> GgufValue::to_int() const noexcept {
  return scalar_to_int(type_, scalar_bits_);
}
std::optional<std::uint64_t> GgufValue::to_uint() const noexcept {
  return scalar_to_uint(type_, scalar_bits_);
}
std::optional<double> GgufValue::to_double() const noexcept {
  return scalar_to_double(type_, scalar_bits_);
}
std::optional<bool> GgufValue::to_bool() const noexcept {
  if (type_ != GgufValueType::boolean) return std::nullopt;
  return scalar_bits_ != 0;
}
const std::string* GgufValue::to_string() const noexcept {
  return type_ == GgufValueType::string ? &string_ : nullptr;
}
const std::vector<std::string>* GgufValue::strings() const noexcept {
  return type_ == GgufValueType::array && element_type_ == GgufValueType::string ? &strings_
                                                                                 : nullptr;
}

GgufValue GgufValue::at(std::size_t index) const {
  if (type_ != GgufValueType::array)
    throw invalid_argument(std::string("GgufValue::at on a ") + io::to_string(type_) +
                           ", not an array");
  if (index >= count_)
    throw invalid_argument("GgufValue::at: index " + std::to_string(index) +
                           " outside an array of " + std::to_string(count_));
  if (element_type_ == GgufValueType::array) return arrays_[index];
  GgufValue element;
  element.type_ = element_type_;
  if (element_type_ == GgufValueType::string) {
    element.string_ = strings_[index];
  } else {
    element.scalar_bits_ =
        widen(element_type_, numbers_.data() + index * scalar_bytes(element_type_));
  }
  return element;
}

std::string GgufValue::describe(std::size_t max_elements, std::size_t max_chars) const {
  if (type_ == GgufValueType::string) return quoted(string_, max_chars);
  if (type_ != GgufValueType::array) return describe_scalar(type_, scalar_bits_);
  std::string out = std::string("[") + io::to_string(element_type_) + " x " +
                    std::to_string(count_) + (count_ > 0 ? ": " : "");
  for (std::size_t i = 0; i < count_ && i < max_elements; ++i) {
    if (i > 0) out += ", ";
    out += at(i).describe(max_elements, max_chars);
  }
  if (count_ > max_elements) out += ", ...";
  return out + "]";
}

// ---------------------------------------------------------------------------------------------
// Parsing

// Reads the header of a mapped GGUF file into a GgufFile, checking every count and size against
// the bytes left. Errors name the file and what was being read.
class GgufParser {
 public:
  GgufParser(GgufFile& file, std::span<const std::byte> bytes)
      : file_(file), bytes_(bytes), name_(file.path_.string()) {}

  void parse() {
    if (bytes_.size() < 4 || u32_at(0) != gguf_magic)
      fail("not a GGUF file (it does not start with the magic \"GGUF\")");
    if (bytes_.size() < 24)
      fail("file is " + std::to_string(bytes_.size()) +
           " bytes, too short for GGUF's 24-byte header");
    pos_ = 4;
    const std::uint32_t version = read_u32("the version");
    if (version == 1)
      fail(
          "GGUF version 1 (32-bit counts) is not supported: convert the model again with a "
          "current llama.cpp");
    if (version != 2 && version != 3) {
      if (version == 0x02000000 || version == 0x03000000)  // 2 or 3, byte-swapped
        fail("a big-endian GGUF file: lowbit reads little-endian GGUF only");
      fail("GGUF version " + std::to_string(version) + " is not supported (2 and 3 are)");
    }
    file_.version_ = version;
    const std::uint64_t tensor_count = read_u64("the tensor count");
    const std::uint64_t key_count = read_u64("the metadata count");
    // A key-value pair takes at least 8 (key length) + 1 (key) + 4 (type) + 1 bytes, a tensor
    // info 8 + 1 + 4 + 8 + 4 + 8: counts the rest of the file cannot hold are refused before any
    // allocation follows them.
    check_count(key_count, 14, "metadata count");
    check_count(tensor_count, 33, "tensor count");

    for (std::uint64_t i = 0; i < key_count; ++i) read_key_value(i);
    read_alignment();
    file_.tensors_.reserve(static_cast<std::size_t>(tensor_count));
    for (std::uint64_t i = 0; i < tensor_count; ++i) read_tensor_info(i);
    place_tensors();
  }

 private:
  [[noreturn]] void fail(const std::string& reason, const std::string& tensor = {}) const {
    throw io_error(reason, ErrorContext{name_, tensor, {}});
  }

  std::size_t remaining() const noexcept { return bytes_.size() - pos_; }

  std::uint32_t u32_at(std::size_t at) const noexcept {
    std::uint32_t value = 0;
    std::memcpy(&value, bytes_.data() + at, 4);
    return value;
  }

  void need(std::size_t count, const std::string& what) const {
    if (count > remaining())
      fail(what + " (" + std::to_string(count) + " bytes at offset " + std::to_string(pos_) +
           ") runs past the end of the " + std::to_string(bytes_.size()) + "-byte file");
  }
  const std::uint8_t* take(std::size_t count, const std::string& what) {
    need(count, what);
    const auto* at = reinterpret_cast<const std::uint8_t*>(bytes_.data() + pos_);
    pos_ += count;
    return at;
  }
  std::uint32_t read_u32(const std::string& what) {
    std::uint32_t value = 0;
    std::memcpy(&value, take(4, what), 4);
    return value;
  }
  std::uint64_t read_u64(const std::string& what) {
    std::uint64_t value = 0;
    std::memcpy(&value, take(8, what), 8);
    return value;
  }
  std::string read_string(const std::string& what) {
    const std::uint64_t length = read_u64("the length of " + what);
    if (length > remaining())
      fail(what + " claims " + std::to_string(length) + " bytes at offset " + std::to_string(pos_) +
           ", past the end of the " + std::to_string(bytes_.size()) + "-byte file");
    const auto* at = take(static_cast<std::size_t>(length), what);
    return std::string(reinterpret_cast<const char*>(at), static_cast<std::size_t>(length));
  }

  // A count of elements of at least `min_bytes` each must fit in the rest of the file.
  void check_count(std::uint64_t count, std::size_t min_bytes, const std::string& what) const {
    if (min_bytes > 0 && count > remaining() / min_bytes)
      fail(what + " " + std::to_string(count) + " is more than the " + std::to_string(remaining()) +
           " bytes left in the file can hold");
  }

  GgufValueType read_type(const std::string& what) {
    const std::uint32_t raw = read_u32("the type of " + what);
    if (!is_valid_type(raw))
      fail(what + " has value type " + std::to_string(raw) + ", which GGUF does not define");
    return static_cast<GgufValueType>(raw);
  }

  GgufValue read_value(GgufValueType type, const std::string& what, std::size_t depth) {
    GgufValue value;
    value.type_ = type;
    if (type == GgufValueType::string) {
      value.string_ = read_string(what);
    } else if (type == GgufValueType::array) {
      if (depth >= GgufFile::max_array_depth)
        fail(what + " nests arrays more than " + std::to_string(GgufFile::max_array_depth) +
             " deep");
      value.element_type_ = read_type("the elements of " + what);
      const std::uint64_t count = read_u64("the length of " + what);
      check_count(count, min_element_bytes(value.element_type_), "the length of " + what + ",");
      value.count_ = static_cast<std::size_t>(count);
      if (value.element_type_ == GgufValueType::string) {
        value.strings_.reserve(value.count_);
        for (std::size_t i = 0; i < value.count_; ++i)
          value.strings_.push_back(read_string("string " + std::to_string(i) + " of " + what));
      } else if (value.element_type_ == GgufValueType::array) {
        value.arrays_.reserve(value.count_);
        // Each element is an array without a type tag of its own: element type, count, data.
        for (std::size_t i = 0; i < value.count_; ++i)
          value.arrays_.push_back(read_value(
              GgufValueType::array, "element " + std::to_string(i) + " of " + what, depth + 1));
      } else {
        const std::size_t bytes = value.count_ * scalar_bytes(value.element_type_);
        const std::uint8_t* at = take(bytes, what);
        value.numbers_.assign(at, at + bytes);
      }
    } else {
      value.scalar_bits_ = widen(type, take(scalar_bytes(type), what));
      if (type == GgufValueType::boolean) {
        if (value.scalar_bits_ > 1)
          fail(what + " is a bool with byte value " + std::to_string(value.scalar_bits_) +
               " (GGUF bools are 0 or 1)");
      }
    }
    return value;
  }

  void read_key_value(std::uint64_t index) {
    const std::string key = read_string("the name of metadata key " + std::to_string(index));
    const std::string what = "metadata '" + key + "'";
    const GgufValueType type = read_type(what);
    GgufValue value = read_value(type, what, 0);
    if (file_.metadata_.count(key) != 0) fail("metadata key '" + key + "' appears twice");
    file_.keys_.push_back(key);
    file_.metadata_.emplace(key, std::move(value));
  }

  void read_alignment() {
    const GgufValue* alignment = file_.find("general.alignment");
    if (alignment == nullptr) return;
    if (alignment->type() != GgufValueType::uint32)
      fail(std::string("metadata 'general.alignment' is a ") + io::to_string(alignment->type()) +
           ", not a uint32");
    const std::uint64_t value = *alignment->to_uint();
    if (value == 0 || !std::has_single_bit(value))
      fail("metadata 'general.alignment' is " + std::to_string(value) + ", not a power of two");
    file_.alignment_ = static_cast<std::uint32_t>(value);
  }

  void read_tensor_info(std::uint64_t index) {
    GgufTensorInfo info;
    info.name = read_string("the name of tensor " + std::to_string(index));
    const std::string what = "tensor '" + info.name + "'";
    if (info.name.empty()) fail("tensor " + std::to_string(index) + " has an empty name");
    const std::uint32_t n_dims = read_u32("the dimension count of " + what);
    if (n_dims == 0 || n_dims > max_dims)
      fail(std::to_string(n_dims) + " dimensions (GGUF allows 1 to 4)", info.name);
    lowbit::detail::CheckedSize elements = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const std::uint64_t dim = read_u64("a dimension of " + what);
      if (dim == 0) fail("dimension " + std::to_string(d) + " is 0", info.name);
      info.dims.push_back(dim);
      elements = elements * static_cast<std::size_t>(dim);
    }
    info.type = read_u32("the type of " + what);
    const GgmlTypeInfo* type = find_ggml_type_info(info.type);
    if (type == nullptr)
      fail("ggml type " + std::to_string(info.type) + " is not a type ggml defines", info.name);
    info.offset = read_u64("the data offset of " + what);
    // ggml's own checks: a row is whole blocks, and the element count fits an int64.
    if (info.dims[0] % type->block_weights != 0)
      fail("a row of " + std::to_string(info.dims[0]) + " weights is not a whole number of " +
               type->name + " blocks of " + std::to_string(type->block_weights),
           info.name);
    if (!elements.at_most(static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max()))
             .valid())
      fail("the element count overflows", info.name);
    if (file_.tensor_index_.count(info.name) != 0) fail("tensor name appears twice", info.name);
    file_.tensor_index_.emplace(info.name, file_.tensors_.size());
    file_.tensors_.push_back(std::move(info));
  }

  // The data section starts at the first aligned offset after the tensor infos; each tensor's
  // bytes must be aligned, inside the file, and apart from every other tensor's.
  void place_tensors() {
    const std::uint64_t alignment = file_.alignment_;
    const std::uint64_t data_offset = (pos_ + alignment - 1) / alignment * alignment;
    if (!file_.tensors_.empty() && data_offset > bytes_.size())
      fail("the data section (offset " + std::to_string(data_offset) +
           ") starts past the end of the " + std::to_string(bytes_.size()) + "-byte file");
    file_.data_offset_ = data_offset;
    const std::uint64_t data_size = bytes_.size() > data_offset ? bytes_.size() - data_offset : 0;

    std::vector<std::pair<std::uint64_t, std::size_t>> extents;  // (offset, tensor)
    for (std::size_t t = 0; t < file_.tensors_.size(); ++t) {
      GgufTensorInfo& info = file_.tensors_[t];
      const GgmlTypeInfo& type = info.type_info();
      lowbit::detail::CheckedSize bytes =
          lowbit::detail::CheckedSize(info.dims[0] / type.block_weights) * type.block_bytes;
      for (std::size_t d = 1; d < info.dims.size(); ++d)
        bytes = bytes * static_cast<std::size_t>(info.dims[d]);
      const auto size = bytes.at_most(lowbit::detail::max_object_bytes).get();
      if (!size) fail("its size in bytes overflows", info.name);
      if (info.offset % alignment != 0)
        fail("data offset " + std::to_string(info.offset) + " is not a multiple of the alignment " +
                 std::to_string(alignment),
             info.name);
      if (info.offset > data_size || *size > data_size - info.offset)
        fail(std::to_string(*size) + " bytes of data at offset " + std::to_string(info.offset) +
                 " run past the end of the data section (" + std::to_string(data_size) + " bytes)",
             info.name);
      info.data = bytes_.subspan(static_cast<std::size_t>(data_offset + info.offset), *size);
      extents.emplace_back(info.offset, t);
    }
    std::sort(extents.begin(), extents.end());
    for (std::size_t i = 1; i < extents.size(); ++i) {
      const GgufTensorInfo& before = file_.tensors_[extents[i - 1].second];
      const GgufTensorInfo& after = file_.tensors_[extents[i].second];
      if (before.offset + before.data.size() > after.offset)
        fail("its data overlaps tensor '" + before.name + "'", after.name);
    }
  }

  GgufFile& file_;
  std::span<const std::byte> bytes_;
  std::string name_;
  std::size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// GgufTensorInfo

const GgmlTypeInfo& GgufTensorInfo::type_info() const noexcept {
  const GgmlTypeInfo* info = find_ggml_type_info(type);
  return info != nullptr ? *info : ggml_type_infos[0];
}

std::vector<std::size_t> GgufTensorInfo::shape() const {
  return std::vector<std::size_t>(dims.rbegin(), dims.rend());
}

std::size_t GgufTensorInfo::rows() const noexcept {
  std::size_t rows = 1;
  for (std::size_t d = 1; d < dims.size(); ++d) rows *= static_cast<std::size_t>(dims[d]);
  return rows;  // the file was opened: the product fits
}

// ---------------------------------------------------------------------------------------------
// GgufFile

GgufFile::GgufFile(const std::filesystem::path& path)
    : path_(path), mapping_(std::make_unique<lowbit::detail::MappedFile>(path)) {
  GgufParser(*this, mapping_->bytes()).parse();
}

GgufFile::~GgufFile() = default;
GgufFile::GgufFile(GgufFile&& other) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&& other) noexcept = default;

const GgufValue* GgufFile::find(std::string_view key) const noexcept {
  const auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const GgufValue& GgufFile::value(std::string_view key) const {
  const GgufValue* found = find(key);
  if (found == nullptr)
    throw io_error("metadata '" + std::string(key) + "' is missing", {path_.string(), {}, {}});
  return *found;
}

namespace {

[[noreturn]] void wrong_type(const std::filesystem::path& path, std::string_view key,
                             const GgufValue& value, const char* expected) {
  std::string actual = io::to_string(value.type());
  if (value.type() == GgufValueType::array)
    actual = std::string("array of ") + io::to_string(value.element_type());
  throw io_error("metadata '" + std::string(key) + "' is " + value.describe(4, 40) + " (" + actual +
                     "), not " + expected,
                 {path.string(), {}, {}});
}

}  // namespace

std::int64_t GgufFile::get_int(std::string_view key) const {
  const GgufValue& found = value(key);
  if (const auto v = found.to_int()) return *v;
  wrong_type(path_, key, found, "an integer");
}
std::uint64_t GgufFile::get_uint(std::string_view key) const {
  const GgufValue& found = value(key);
  if (const auto v = found.to_uint()) return *v;
  wrong_type(path_, key, found, "a non-negative integer");
}
double GgufFile::get_double(std::string_view key) const {
  const GgufValue& found = value(key);
  if (const auto v = found.to_double()) return *v;
  wrong_type(path_, key, found, "a number");
}
bool GgufFile::get_bool(std::string_view key) const {
  const GgufValue& found = value(key);
  if (const auto v = found.to_bool()) return *v;
  wrong_type(path_, key, found, "a bool");
}
const std::string& GgufFile::get_string(std::string_view key) const {
  const GgufValue& found = value(key);
  if (const std::string* v = found.to_string()) return *v;
  wrong_type(path_, key, found, "a string");
}
const std::vector<std::string>& GgufFile::get_strings(std::string_view key) const {
  const GgufValue& found = value(key);
  if (const auto* v = found.strings()) return *v;
  wrong_type(path_, key, found, "an array of strings");
}
std::vector<double> GgufFile::get_doubles(std::string_view key) const {
  const GgufValue& found = value(key);
  const GgufValueType element = found.element_type();
  if (found.type() != GgufValueType::array ||
      !(is_float(element) || is_signed_integer(element) || is_unsigned_integer(element)))
    wrong_type(path_, key, found, "an array of numbers");
  std::vector<double> out(found.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = *found.at(i).to_double();
  return out;
}
std::vector<std::int64_t> GgufFile::get_ints(std::string_view key) const {
  const GgufValue& found = value(key);
  const GgufValueType element = found.element_type();
  if (found.type() != GgufValueType::array ||
      !(is_signed_integer(element) || is_unsigned_integer(element)))
    wrong_type(path_, key, found, "an array of integers");
  std::vector<std::int64_t> out(found.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto v = found.at(i).to_int();
    if (!v)
      throw io_error("metadata '" + std::string(key) + "': element " + std::to_string(i) +
                         " does not fit an int64",
                     {path_.string(), {}, {}});
    out[i] = *v;
  }
  return out;
}
std::int64_t GgufFile::get_int(std::string_view key, std::int64_t fallback) const {
  return find(key) != nullptr ? get_int(key) : fallback;
}
double GgufFile::get_double(std::string_view key, double fallback) const {
  return find(key) != nullptr ? get_double(key) : fallback;
}
bool GgufFile::get_bool(std::string_view key, bool fallback) const {
  return find(key) != nullptr ? get_bool(key) : fallback;
}
std::string GgufFile::get_string(std::string_view key, std::string_view fallback) const {
  return find(key) != nullptr ? get_string(key) : std::string(fallback);
}

bool GgufFile::contains(std::string_view name) const noexcept {
  return tensor_index_.find(name) != tensor_index_.end();
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  if (it == tensor_index_.end())
    throw io_error("no such tensor", {path_.string(), std::string(name), {}});
  return tensors_[it->second];
}

bool GgufFile::is_block_layout(const GgufTensorInfo& info) const noexcept {
  return find_ggml_traits(static_cast<GgmlType>(info.type)) != nullptr;
}

QuantizedMatrix GgufFile::to_quantized(std::string_view name) const {
  const GgufTensorInfo& info = tensor(name);
  if (!is_block_layout(info))
    throw io_error(
        std::string("ggml type ") + info.type_info().name + " is not a block layout lowbit stores",
        {path_.string(), info.name, info.shape()});
  QuantizedMatrix matrix(Scheme::ggml_blocks(static_cast<GgmlType>(info.type)), info.rows(),
                         info.cols());
  std::span<std::uint8_t> out = matrix.block_bytes();
  if (out.size() != info.data.size())  // the two size computations must agree
    throw io_error("its " + std::to_string(info.data.size()) + " bytes are not the " +
                       std::to_string(out.size()) + " its layout needs",
                   {path_.string(), info.name, info.shape()});
  std::memcpy(out.data(), info.data.data(), out.size());
  return matrix;
}

namespace {

template <typename T>
T load(const std::byte* p) noexcept {
  T value;
  std::memcpy(&value, p, sizeof value);  // tensor data need only be aligned to general.alignment
  return value;
}

}  // namespace

std::vector<float> GgufFile::to_float(std::string_view name) const {
  const GgufTensorInfo& info = tensor(name);
  const std::size_t count = info.element_count();
  const std::byte* data = info.data.data();
  std::vector<float> out;
  auto convert = [&](auto decode, std::size_t element_bytes) {
    out.resize(count);
    for (std::size_t i = 0; i < count; ++i) out[i] = decode(data + i * element_bytes);
  };
  switch (info.type) {
    case 0:  // f32
      out.resize(count);
      std::memcpy(out.data(), data, count * sizeof(float));
      return out;
    case 28:  // f64
      convert([](const std::byte* p) { return static_cast<float>(load<double>(p)); }, 8);
      return out;
    case 24:  // i8
      convert([](const std::byte* p) { return static_cast<float>(load<std::int8_t>(p)); }, 1);
      return out;
    case 25:  // i16
      convert([](const std::byte* p) { return static_cast<float>(load<std::int16_t>(p)); }, 2);
      return out;
    case 26:  // i32
      convert([](const std::byte* p) { return static_cast<float>(load<std::int32_t>(p)); }, 4);
      return out;
    case 27:  // i64
      convert([](const std::byte* p) { return static_cast<float>(load<std::int64_t>(p)); }, 8);
      return out;
    default:
      break;
  }
  if (!is_block_layout(info))
    throw io_error(std::string("lowbit cannot decode ggml type ") + info.type_info().name,
                   {path_.string(), info.name, info.shape()});
  return to_quantized(name).dequantize();
}

bool has_gguf_magic(const std::filesystem::path& path) noexcept {
  // O_NONBLOCK: a FIFO must not block the caller (and is not a GGUF file).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st {};
  char magic[4] = {};
  const bool is_gguf = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                       ::pread(fd, magic, 4, 0) == 4 && std::memcmp(magic, "GGUF", 4) == 0;
  ::close(fd);
  return is_gguf;
}

}  // namespace lowbit::io
