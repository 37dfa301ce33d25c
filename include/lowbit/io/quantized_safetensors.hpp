// Storing QuantizedMatrix in safetensors files: the packed codes, scales and zero points as plain
// tensors beside each other, and the Scheme that interprets them in the file's metadata.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/io/safetensors.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit::io {

/// The metadata key under which quantized tensors are described.
inline constexpr std::string_view quantization_metadata_key = "lowbit.quantization";

/// A Scheme as compact JSON, e.g. {"element":"uint","bits":4,"granularity":"group",
/// "group_size":128,"scale_format":"f16","zero_format":"code","pack_order":"low_first"}.
/// "group_size" appears only for group granularity; "pack_order" is "low_first" or
/// "awq_interleaved". Element, scale and zero names are those of lowbit::to_string. A ggml block
/// layout adds "block_layout": its GgmlTypeTraits::layout_name, e.g. "ggml_q4_1", "ggml_q6_k",
/// "ggml_iq4_xs" (absent means "none").
std::string scheme_to_json(const Scheme& scheme);

/// Parses scheme_to_json's output ("zero_format" defaults to "code", "pack_order" to "low_first",
/// "block_layout" to "none").
/// Throws lowbit::invalid_argument naming the bad field, or the Scheme's own validation error.
Scheme scheme_from_json(std::string_view json);

/// The safetensors tensors that store a quantized weight named `name` (e.g.
/// "layers.0.attention.wq.weight"). base = name without a trailing ".weight"; then
///   base + ".qweight"  U32 [rows, words_per_row]   (QuantizedMatrix packing, verbatim)
///   base + ".scales"   [grid rows, grid cols] in F32/F16/BF16/F8_E4M3 (E8M0 as U8)
///   base + ".qzeros"   U32 [grid rows, zero words]  for code zero points, or
///   base + ".zeros"    F32/F16/BF16 [grid rows, grid cols] for float zero points.
/// A ggml block layout has one part only: base + ".qweight", U8 [rows, bytes per row], the blocks
/// verbatim (invalid_argument when cols is not a multiple of the block's weights).
std::vector<TensorLayout> quantized_layout(std::string_view name, const Scheme& scheme,
                                           std::size_t rows, std::size_t cols);

/// Adds (or replaces) `name`'s entry in the "lowbit.quantization" metadata value, a JSON object
/// {name: {"scheme": {...}, "shape": [rows, cols]}}, plus "rotation": {"size", "seed",
/// "randomized"} when the matrix carries an input rotation. Throws io_error when an existing value
/// is not such an object.
void add_quantization_metadata(std::map<std::string, std::string>& metadata, std::string_view name,
                               const Scheme& scheme, std::size_t rows, std::size_t cols,
                               const std::optional<HadamardRotation>& rotation = std::nullopt);

/// Writes q's parts, in quantized_layout order, as the writer's next tensors.
void write_quantized(SafetensorsWriter& writer, std::string_view name, const QuantizedMatrix& q);

/// Names with an entry in the file's "lowbit.quantization" metadata, sorted; empty when there is
/// no such key. Throws io_error naming the file when the value is malformed.
std::vector<std::string> quantized_names(const SafetensorsFile& file);

/// Reads back a quantized weight. Throws io_error naming the file and tensor on any mismatch
/// (no metadata entry, bad JSON or scheme, a missing part, wrong dtype or shape).
QuantizedMatrix read_quantized(const SafetensorsFile& file, std::string_view name);

}  // namespace lowbit::io
