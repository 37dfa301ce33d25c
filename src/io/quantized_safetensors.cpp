#include "lowbit/io/quantized_safetensors.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "lowbit/error.hpp"

namespace lowbit::io {
namespace {

using json = nlohmann::ordered_json;  // keeps the documented field order

// Packed words and scale bytes are written as they lie in memory.
static_assert(std::endian::native == std::endian::little,
              "lowbit's file I/O assumes a little-endian host");

// Names of the enumerations that have no traits table of their own (ElementFormat, ScalarFormat
// and ZeroFormat have: scheme.hpp, scalar_format.hpp), in the same {value, name} row form.
template <class Enum>
struct NamedValue {
  Enum value;
  const char* name;
};
constexpr NamedValue<Granularity::Kind> granularity_names[] = {
    {Granularity::Kind::none, "none"},     {Granularity::Kind::block, "block"},
    {Granularity::Kind::tensor, "tensor"}, {Granularity::Kind::channel, "channel"},
    {Granularity::Kind::group, "group"},
};
constexpr NamedValue<PackOrder> pack_names[] = {
    {PackOrder::low_first, "low_first"},
    {PackOrder::awq_interleaved, "awq_interleaved"},
};

json scheme_object(const Scheme& s) {
  json j = json::object();
  j["element"] = detail::name_of(element_format_table, s.element);
  j["bits"] = s.bits;
  j["granularity"] = detail::name_of(granularity_names, s.granularity.kind);
  if (s.granularity.kind == Granularity::Kind::group) j["group_size"] = s.granularity.group_size;
  if (s.granularity.kind == Granularity::Kind::block) {
    j["block_rows"] = s.granularity.block_rows;
    j["block_cols"] = s.granularity.group_size;
  }
  j["scale_format"] = detail::name_of(scalar_format_table, s.scale_format);
  j["zero_format"] = detail::name_of(zero_format_table, s.zero_format);
  j["pack_order"] = detail::name_of(pack_names, s.pack_order);
  // Fields of codebooks and second-level scales appear only where the scheme uses them.
  if (s.is_table_lookup()) j["vector_dim"] = s.vector_dim;
  if (s.is_codebook()) {
    j["codebook_granularity"] = detail::name_of(granularity_names, s.codebook_granularity.kind);
    if (s.codebook_granularity.kind == Granularity::Kind::group)
      j["codebook_group_size"] = s.codebook_granularity.group_size;
    j["codebook_format"] = detail::name_of(scalar_format_table, s.codebook_format);
  }
  if (s.tensor_scale) j["tensor_scale"] = true;
  if (s.double_quant_block > 0) j["double_quant_block"] = s.double_quant_block;
  if (s.has_block_layout()) j["block_layout"] = ggml_traits(*s.ggml_type).layout_name;
  return j;
}

[[noreturn]] void bad_field(const std::string& field, const std::string& why) {
  std::string message = "scheme JSON: field \"";
  message.append(field);
  message.append("\": ");
  message.append(why);
  throw invalid_argument(message);
}

template <class Row, std::size_t N>
auto enum_field(const json& j, const char* field, const Row (&table)[N],
                std::optional<decltype(Row::value)> fallback) {
  auto it = j.find(field);
  if (it == j.end()) {
    if (fallback) return *fallback;
    bad_field(field, "missing");
  }
  if (!it->is_string()) bad_field(field, "not a string");
  const auto& text = it->get_ref<const std::string&>();
  if (const auto value = detail::value_named(table, text)) return *value;
  bad_field(field, "unknown value '" + text + "' (one of " + detail::names_of(table) + ")");
}

/// "block_layout": the layout name of a ggml type (GgmlTypeTraits::layout_name), or "none".
std::optional<GgmlType> block_layout_field(const json& j) {
  auto it = j.find("block_layout");
  if (it == j.end()) return std::nullopt;
  if (!it->is_string()) bad_field("block_layout", "not a string");
  const auto& text = it->get_ref<const std::string&>();
  if (text == "none") return std::nullopt;
  std::string allowed = "none";
  for (const GgmlTypeTraits& row : ggml_type_table) {
    if (text == row.layout_name) return row.value;
    allowed.append(", ").append(row.layout_name);
  }
  bad_field("block_layout", "unknown value '" + text + "' (one of " + allowed + ")");
}

std::size_t positive_field(const json& j, const char* field, std::size_t fallback) {
  auto it = j.find(field);
  if (it == j.end()) return fallback;
  if (!it->is_number_unsigned() || it->get<std::uint64_t>() == 0)
    bad_field(field, "not a positive integer");
  return static_cast<std::size_t>(it->get<std::uint64_t>());
}

Granularity granularity_field(const json& j, const char* kind_field, const char* size_field,
                              std::optional<Granularity::Kind> fallback) {
  Granularity g;
  g.kind = enum_field(j, kind_field, granularity_names, fallback);
  if (g.kind == Granularity::Kind::block) {
    // Only scale granularities have 2-D blocks (Scheme::validate refuses block codebooks).
    if (!j.contains("block_rows") || !j.contains("block_cols"))
      bad_field("block_rows", "block_rows and block_cols are needed for block granularity");
    g.block_rows = positive_field(j, "block_rows", 0);
    g.group_size = positive_field(j, "block_cols", 0);
  } else if (g.kind == Granularity::Kind::group) {
    if (!j.contains(size_field)) bad_field(size_field, "missing for group granularity");
    g.group_size = positive_field(j, size_field, 0);
  } else {
    g.group_size = 0;
  }
  return g;
}

Scheme scheme_from_object(const json& j) {
  if (!j.is_object()) throw invalid_argument("scheme JSON: not a JSON object");
  Scheme s;
  s.element = enum_field(j, "element", element_format_table, std::nullopt);
  auto bits = j.find("bits");
  if (bits == j.end()) bad_field("bits", "missing");
  if (!bits->is_number_integer()) bad_field("bits", "not an integer");
  const auto b = bits->get<std::int64_t>();
  if (b < 1 || b > 32) bad_field("bits", std::to_string(b) + " is out of range");
  s.bits = static_cast<int>(b);
  s.granularity = granularity_field(j, "granularity", "group_size", std::nullopt);
  s.scale_format = enum_field(j, "scale_format", scalar_format_table, std::nullopt);
  s.zero_format = enum_field(j, "zero_format", zero_format_table, ZeroFormat::code);
  s.pack_order = enum_field(j, "pack_order", pack_names, PackOrder::low_first);
  s.vector_dim = positive_field(j, "vector_dim", 1);
  s.codebook_granularity = granularity_field(j, "codebook_granularity", "codebook_group_size",
                                             Granularity::Kind::tensor);
  s.codebook_format = enum_field(j, "codebook_format", scalar_format_table, ScalarFormat::f16);
  if (auto t = j.find("tensor_scale"); t != j.end()) {
    if (!t->is_boolean()) bad_field("tensor_scale", "not a boolean");
    s.tensor_scale = t->get<bool>();
  }
  s.double_quant_block =
      j.contains("double_quant_block") ? positive_field(j, "double_quant_block", 0) : 0;
  s.ggml_type = block_layout_field(j);
  for (const auto& [key, value] : j.items()) {
    static constexpr std::array<std::string_view, 16> known{
        "element",         "bits",         "granularity",          "group_size",
        "block_rows",      "block_cols",   "scale_format",         "zero_format",
        "pack_order",      "vector_dim",   "codebook_granularity", "codebook_group_size",
        "codebook_format", "tensor_scale", "double_quant_block",   "block_layout"};
    if (std::find(known.begin(), known.end(), key) == known.end()) bad_field(key, "unknown field");
  }
  s.validate();
  return s;
}

DType scale_dtype(ScalarFormat f) {
  switch (f) {
    case ScalarFormat::f32:
      return DType::F32;
    case ScalarFormat::f16:
      return DType::F16;
    case ScalarFormat::bf16:
      return DType::BF16;
    case ScalarFormat::e4m3:
      return DType::F8_E4M3;
    case ScalarFormat::e8m0:
      return DType::U8;
  }
  return DType::U8;
}

DType zero_dtype(ZeroFormat f) {
  switch (f) {
    case ZeroFormat::f32:
      return DType::F32;
    case ZeroFormat::bf16:
      return DType::BF16;
    default:
      return DType::F16;
  }
}

std::string base_name(std::string_view name) {
  constexpr std::string_view suffix = ".weight";
  if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix)
    name.remove_suffix(suffix.size());
  return std::string(name);
}

// The "lowbit.quantization" object of a metadata map: empty when absent, nullopt when malformed.
std::optional<json> quantization_object(const std::map<std::string, std::string>& metadata) {
  auto it = metadata.find(std::string(quantization_metadata_key));
  if (it == metadata.end()) return json::object();
  json j = json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

template <typename T>
std::span<const std::byte> bytes_of(std::span<const T> s) {
  return std::as_bytes(s);
}

}  // namespace

std::string scheme_to_json(const Scheme& scheme) { return scheme_object(scheme).dump(); }

Scheme scheme_from_json(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw invalid_argument("scheme JSON: not valid JSON: " + std::string(text));
  return scheme_from_object(j);
}

std::vector<TensorLayout> quantized_layout(std::string_view name, const Scheme& scheme,
                                           std::size_t rows, std::size_t cols) {
  scheme.validate();
  const std::string base = base_name(name);
  std::vector<TensorLayout> layout;
  if (scheme.has_block_layout() && cols % scheme.block_weights() != 0)
    throw invalid_argument(detail::block_layout_cols_error(scheme, cols));
  // The shapes are QuantizedMatrix's own storage sizes, each checked against overflow.
  const StorageSizes sizes = scheme.storage(rows, cols);
  if (scheme.has_block_layout()) {  // the ggml blocks of each row, verbatim; nothing else
    layout.push_back({base + ".qweight", DType::U8, {rows, sizes.bytes_per_row}});
    return layout;
  }
  const ScaleGrid grid = sizes.scale_grid;
  layout.push_back({base + ".qweight", DType::U32, {rows, sizes.words_per_row}});
  if (scheme.has_scales()) {
    const DType dtype =
        scheme.double_quant_block > 0 ? DType::U8 : scale_dtype(scheme.scale_format);
    layout.push_back({base + ".scales", dtype, {grid.rows, grid.cols}});
  }
  if (scheme.has_zero_point()) {
    if (scheme.zero_format == ZeroFormat::code)
      layout.push_back({base + ".qzeros", DType::U32, {grid.rows, sizes.zero_words_per_row}});
    else
      layout.push_back({base + ".zeros", zero_dtype(scheme.zero_format), {grid.rows, grid.cols}});
  }
  if (scheme.double_quant_block > 0) {
    layout.push_back({base + ".scale_absmax", DType::F32, {sizes.scale_absmax_count}});
    layout.push_back({base + ".scale_offset", DType::F32, {1}});
  }
  if (scheme.is_codebook()) {
    const ScaleGrid books = sizes.codebook_grid;
    layout.push_back({base + ".codebooks",
                      scale_dtype(scheme.codebook_format),
                      {books.rows, books.cols, scheme.codebook_entries(), scheme.vector_dim}});
  }
  if (scheme.tensor_scale) layout.push_back({base + ".tensor_scale", DType::F32, {1}});
  return layout;
}

void add_quantization_metadata(std::map<std::string, std::string>& metadata, std::string_view name,
                               const Scheme& scheme, std::size_t rows, std::size_t cols,
                               const std::optional<HadamardRotation>& rotation) {
  auto object = quantization_object(metadata);
  if (!object)
    throw io_error("metadata \"lowbit.quantization\" is not a JSON object",
                   ErrorContext{{}, std::string(name), {}});
  json entry = json{{"scheme", scheme_object(scheme)}, {"shape", {rows, cols}}};
  if (rotation)
    entry["rotation"] = json{
        {"size", rotation->size}, {"seed", rotation->seed}, {"randomized", rotation->randomized}};
  (*object)[std::string(name)] = std::move(entry);
  metadata[std::string(quantization_metadata_key)] = object->dump();
}

void write_quantized(SafetensorsWriter& writer, std::string_view name, const QuantizedMatrix& q) {
  const Scheme& s = q.scheme();
  const auto layout = quantized_layout(name, s, q.rows(), q.cols());
  std::size_t part = 0;  // the parts come in quantized_layout's order
  const auto next = [&](std::span<const std::byte> bytes) {
    writer.write(layout[part++].name, bytes);
  };
  // A block layout's blocks are its only part (it has no scales, zeros or codebooks beside them).
  next(s.has_block_layout() ? bytes_of(q.block_bytes()) : bytes_of(q.packed_codes()));
  if (s.has_scales()) next(bytes_of(q.scale_bytes()));
  if (s.has_zero_point())
    next(s.zero_format == ZeroFormat::code ? bytes_of(q.zero_codes()) : bytes_of(q.zero_bytes()));
  const float offset = q.scale_offset(), tensor_scale = q.tensor_scale();
  if (s.double_quant_block > 0) {
    next(bytes_of(q.scale_block_absmax()));
    next(bytes_of(std::span<const float>(&offset, 1)));
  }
  if (s.is_codebook()) next(bytes_of(q.codebook_bytes()));
  if (s.tensor_scale) next(bytes_of(std::span<const float>(&tensor_scale, 1)));
}

std::vector<std::string> quantized_names(const SafetensorsFile& file) {
  auto object = quantization_object(file.metadata());
  if (!object)
    throw io_error("metadata \"lowbit.quantization\" is not a JSON object",
                   ErrorContext{file.path().string(), {}, {}});
  std::vector<std::string> names;
  for (const auto& [key, value] : object->items()) names.push_back(key);
  std::sort(names.begin(), names.end());
  return names;
}

QuantizedMatrix read_quantized(const SafetensorsFile& file, std::string_view name) {
  const std::string path = file.path().string();
  const std::string tensor(name);
  auto fail = [&](const std::string& why, const std::string& which = {}) -> void {
    throw io_error(why, ErrorContext{path, which.empty() ? tensor : which, {}});
  };
  auto object = quantization_object(file.metadata());
  if (!object) fail("metadata \"lowbit.quantization\" is not a JSON object");
  auto entry = object->find(tensor);
  if (entry == object->end()) fail("no \"lowbit.quantization\" metadata entry for this tensor");
  if (!entry->is_object()) fail("quantization metadata entry is not an object");
  auto scheme_it = entry->find("scheme");
  auto shape_it = entry->find("shape");
  if (scheme_it == entry->end()) fail("quantization metadata entry has no \"scheme\"");
  if (shape_it == entry->end() || !shape_it->is_array() || shape_it->size() != 2 ||
      !(*shape_it)[0].is_number_unsigned() || !(*shape_it)[1].is_number_unsigned())
    fail("quantization metadata \"shape\" is not [rows, cols]");
  Scheme scheme;
  try {
    scheme = scheme_from_object(*scheme_it);
  } catch (const invalid_argument& e) {
    fail(e.what());
  }
  const auto rows = static_cast<std::size_t>((*shape_it)[0].get<std::uint64_t>());
  const auto cols = static_cast<std::size_t>((*shape_it)[1].get<std::uint64_t>());
  // Refuse absurd shapes before allocating: the packed codes must be in the file.
  std::vector<TensorLayout> layout;
  try {
    layout = quantized_layout(name, scheme, rows, cols);  // a block layout needs whole blocks
  } catch (const invalid_argument& e) {
    fail(e.what());
  }
  for (const auto& part : layout) {
    if (!file.contains(part.name)) fail("missing part '" + part.name + "' of the quantized weight");
    const TensorInfo& info = file.info(part.name);
    if (info.dtype != part.dtype)
      fail("part has dtype " + std::string(dtype_name(info.dtype)) + ", expected " +
               std::string(dtype_name(part.dtype)) + " for scheme " + scheme.to_string(),
           part.name);
    if (info.shape != part.shape) {
      std::string want = "[", got = "[";
      for (std::size_t i = 0; i < part.shape.size(); ++i) {
        if (i) want.append(", ");
        want.append(std::to_string(part.shape[i]));
      }
      for (std::size_t i = 0; i < info.shape.size(); ++i) {
        if (i) got.append(", ");
        got.append(std::to_string(info.shape[i]));
      }
      want.append("]");
      got.append("]");
      fail("part has shape " + got + ", expected " + want + " for a [" + std::to_string(rows) +
               ", " + std::to_string(cols) + "] matrix with scheme " + scheme.to_string(),
           part.name);
    }
  }
  QuantizedMatrix q(scheme, rows, cols);
  auto copy = [&](const TensorLayout& part, auto dest) {
    const auto src = file.info(part.name).data;
    const auto dst = std::as_writable_bytes(dest);
    if (src.size() != dst.size())
      fail("part holds " + std::to_string(src.size()) + " bytes, expected " +
               std::to_string(dst.size()),
           part.name);
    if (!src.empty()) std::memcpy(dst.data(), src.data(), src.size());
  };
  std::size_t part = 0;           // the parts come in quantized_layout's order
  if (scheme.has_block_layout())  // the only part a block layout has
    copy(layout[part++], q.block_bytes());
  else
    copy(layout[part++], q.packed_codes());
  if (scheme.has_scales()) copy(layout[part++], q.scale_bytes());
  if (scheme.has_zero_point()) {
    if (scheme.zero_format == ZeroFormat::code)
      copy(layout[part++], q.zero_codes());
    else
      copy(layout[part++], q.zero_bytes());
  }
  float offset = 0.0f, tensor_scale = 1.0f;
  if (scheme.double_quant_block > 0) {
    copy(layout[part++], q.scale_block_absmax());
    copy(layout[part++], std::span<float>(&offset, 1));
    q.set_scale_offset(offset);
  }
  if (scheme.is_codebook()) copy(layout[part++], q.codebook_bytes());
  if (scheme.tensor_scale) {
    copy(layout[part++], std::span<float>(&tensor_scale, 1));
    q.set_tensor_scale(tensor_scale);
  }
  if (auto rotation = entry->find("rotation"); rotation != entry->end()) {
    const auto size = rotation->find("size"), seed = rotation->find("seed"),
               randomized = rotation->find("randomized");
    if (!rotation->is_object() || size == rotation->end() || !size->is_number_unsigned() ||
        seed == rotation->end() || !seed->is_number_unsigned() || randomized == rotation->end() ||
        !randomized->is_boolean())
      fail("quantization metadata \"rotation\" is not {size, seed, randomized}");
    try {
      q.set_input_rotation(HadamardRotation{static_cast<std::size_t>(size->get<std::uint64_t>()),
                                            seed->get<std::uint64_t>(), randomized->get<bool>()});
    } catch (const invalid_argument& e) {
      fail(e.what());
    }
  }
  return q;
}

}  // namespace lowbit::io
