// Scheme: everything needed to interpret a QuantizedMatrix: element format and width, granularity
// of the scales, whether there is a zero point, the formats scales and zeros are stored in, and the
// packing order of the codes.
//
// A Scheme may instead name a block layout: one of llama.cpp's ggml block types (Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, Q2_K..Q6_K, IQ4_NL, IQ4_XS: ggml_type_table), whose blocks carry their own scales,
// or its 16-bit floats F16 and BF16 (blocks of one weight: unquantized checkpoints), stored
// verbatim (format/ggml_blocks.hpp).
// Such a Scheme is made by Scheme::ggml_blocks and has fixed values in every other field (validate
// refuses any other), so that equality and the JSON form stay unambiguous; is_integer(),
// has_scales() and has_zero_point() are false for it, as nothing outside the blocks is stored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lowbit/detail/checked_arithmetic.hpp"
#include "lowbit/detail/enum_table.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/ggml_blocks.hpp"
#include "lowbit/format/packing.hpp"
#include "lowbit/format/scalar_format.hpp"

namespace lowbit {

/// What one stored code means before scaling.
enum class ElementFormat : std::uint8_t {
  int_signed,    // two's complement integer of `bits` bits; symmetric, no zero point
  int_unsigned,  // unsigned integer of `bits` bits with a zero point: value = (q - zero) * scale
  fp8_e4m3,      // OCP FP8 E4M3
  fp8_e5m2,      // OCP FP8 E5M2
  fp4_e2m1,      // OCP FP4 E2M1
  nf4,           // QLoRA's NormalFloat4 table
  codebook,      // an index into a stored table of 2^bits entries, each vector_dim values long
  higgs,         // an index into HIGGS's fixed grid of 2^bits points in vector_dim dimensions
};

struct ElementFormatTraits {
  ElementFormat value;
  const char* name;          // stable: files and parsing
  const char* abbreviation;  // in Scheme descriptions ("cb4 ..."); the name for most formats
  int fixed_bits;  // the code width a format always has; 0 for the integers (1..8 unsigned, 2..8
                   // signed), codebooks (1..8) and HIGGS grids (1..8 bits of a point index)
};

inline constexpr ElementFormatTraits element_format_table[] = {
    {ElementFormat::int_signed, "int", "int", 0},
    {ElementFormat::int_unsigned, "uint", "uint", 0},
    {ElementFormat::fp8_e4m3, "e4m3", "e4m3", 8},
    {ElementFormat::fp8_e5m2, "e5m2", "e5m2", 8},
    {ElementFormat::fp4_e2m1, "e2m1", "e2m1", 4},
    {ElementFormat::nf4, "nf4", "nf4", 4},
    {ElementFormat::codebook, "codebook", "cb", 0},
    {ElementFormat::higgs, "higgs", "higgs", 0},
};

constexpr const char* to_string(ElementFormat format) noexcept {
  return detail::field_of(element_format_table, format, &ElementFormatTraits::abbreviation,
                          static_cast<const char*>("?"));
}

/// The format named `name` (ElementFormatTraits::name: "int", "codebook", ...), or nullopt.
constexpr std::optional<ElementFormat> parse_element_format(std::string_view name) noexcept {
  return detail::value_named(element_format_table, name);
}

/// The code width a non-integer element format always has; 0 for the integers (1..8 unsigned,
/// 2..8 signed), codebooks and HIGGS grids.
constexpr int fixed_element_bits(ElementFormat format) noexcept {
  return detail::field_of(element_format_table, format, &ElementFormatTraits::fixed_bits, 0);
}

/// How zero points are stored. Integer zero points (what the linear quantizer makes) are packed as
/// codes of the element's own width, as GPTQ and AWQ checkpoints store them; fractional zero points
/// (HQQ's) need a float format.
enum class ZeroFormat : std::uint8_t { code, f32, f16, bf16 };

struct ZeroFormatTraits {
  ZeroFormat value;
  const char* name;
  ScalarFormat scalar;  // the float format of a fractional zero point (unused for `code`)
};

inline constexpr ZeroFormatTraits zero_format_table[] = {
    {ZeroFormat::code, "code", ScalarFormat::f16},
    {ZeroFormat::f32, "f32", ScalarFormat::f32},
    {ZeroFormat::f16, "f16", ScalarFormat::f16},
    {ZeroFormat::bf16, "bf16", ScalarFormat::bf16},
};

constexpr const char* to_string(ZeroFormat format) noexcept {
  return detail::name_of(zero_format_table, format);
}

constexpr std::optional<ZeroFormat> parse_zero_format(std::string_view name) noexcept {
  return detail::value_named(zero_format_table, name);
}

/// The float format of a non-code zero format.
constexpr ScalarFormat zero_scalar_format(ZeroFormat format) noexcept {
  return detail::field_of(zero_format_table, format, &ZeroFormatTraits::scalar, ScalarFormat::f16);
}

/// Which elements share one scale (and zero point), or one codebook. Groups run along the input
/// dimension (a row of the [out, in] weight matrix); the last group of a row is shorter when
/// group_size does not divide the row. Blocks are 2-D: block_rows x group_size tiles of the matrix
/// (DeepSeek-V3's FP8 weights: 128 x 128), cut short at the bottom and right edges. `none` means no
/// such parameter at all (a codebook scheme without scales).
struct Granularity {
  enum class Kind : std::uint8_t { tensor, channel, group, none, block };
  Kind kind = Kind::group;
  std::size_t group_size = 128;  // Kind::group; the columns of a Kind::block
  std::size_t block_rows = 0;    // only for Kind::block

  static constexpr Granularity none() noexcept { return {Kind::none, 0}; }
  static constexpr Granularity per_tensor() noexcept { return {Kind::tensor, 0}; }
  static constexpr Granularity per_channel() noexcept { return {Kind::channel, 0}; }
  static constexpr Granularity per_group(std::size_t size) noexcept { return {Kind::group, size}; }
  static constexpr Granularity per_block(std::size_t rows, std::size_t cols) noexcept {
    return {Kind::block, cols, rows};
  }

  /// Consecutive columns of one row that share a parameter: the group (or block) width, else the
  /// whole row (at least 1, so that a loop stepping by it ends).
  constexpr std::size_t row_span(std::size_t cols) const noexcept {
    if (kind == Kind::group || kind == Kind::block) return group_size;
    return cols > 0 ? cols : 1;
  }

  friend constexpr bool operator==(const Granularity&, const Granularity&) = default;
};

/// The shape of a grid of per-group parameters (scales, or codebooks) for a [rows, cols] matrix:
/// entry (i, j) serves row i (or all rows when there is one row) and group j of that row. Its
/// size cannot overflow for a shape that Scheme::storage accepted. (`of` needs a validated
/// Granularity: non-zero group size and block rows.)
struct ScaleGrid {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::size_t size() const noexcept { return rows * cols; }

  static ScaleGrid of(const Granularity& g, std::size_t rows, std::size_t cols) noexcept {
    switch (g.kind) {
      case Granularity::Kind::none:
        return {0, 0};
      case Granularity::Kind::tensor:
        return {1, 1};
      case Granularity::Kind::channel:
        return {rows, 1};
      case Granularity::Kind::group:
        return {rows, detail::ceil_div(cols, g.group_size)};
      case Granularity::Kind::block:
        return {detail::ceil_div(rows, g.block_rows), detail::ceil_div(cols, g.group_size)};
    }
    return {};
  }
};

/// Where the last of these lives. One name for the rule that every grid follows: the entry that
/// serves element (row, col) of the matrix.
inline std::size_t grid_index(const Granularity& g, const ScaleGrid& grid, std::size_t row,
                              std::size_t col) noexcept {
  const bool blocks = g.kind == Granularity::Kind::block;
  const std::size_t grid_row = blocks ? row / g.block_rows : (grid.rows == 1 ? 0 : row);
  const std::size_t grid_col =
      blocks || g.kind == Granularity::Kind::group ? col / g.group_size : 0;
  return grid_row * grid.cols + grid_col;
}

/// Everything a QuantizedMatrix stores for a [rows, cols] matrix of a Scheme, counted in the units
/// named (Scheme::storage computes it with every product checked).
struct StorageSizes {
  std::size_t words_per_row = 0;       // packed 32-bit code words of one row
  std::size_t code_words = 0;          // rows * words_per_row
  std::size_t bytes_per_row = 0;       // block layouts: bytes of one row of blocks
  std::size_t block_bytes = 0;         // block layouts: rows * bytes_per_row
  ScaleGrid scale_grid;                // one scale (and zero point) per entry
  std::size_t scale_bytes = 0;         // the stored scales
  std::size_t zero_words_per_row = 0;  // code zero points: packed words of one scale-grid row
  std::size_t zero_code_words = 0;     // scale_grid.rows * zero_words_per_row
  std::size_t zero_bytes = 0;          // float zero points
  std::size_t scale_absmax_count = 0;  // double quantization: fp32 absmax values (one per block)
  ScaleGrid codebook_grid;             // one codebook per entry
  std::size_t codebook_bytes = 0;      // all codebooks
};

struct Scheme {
  // The largest group (or block) width, block height, double-quantization block and vector
  // dimension validate accepts: far above any published scheme, small enough that no size derived
  // from them overflows (a file cannot declare a group of 2^64 - 1 columns).
  static constexpr std::size_t max_group_size = std::size_t{1} << 32;
  static constexpr std::size_t max_vector_dim = 32;

  ElementFormat element = ElementFormat::int_signed;
  int bits = 4;
  Granularity granularity = Granularity::per_group(128);
  ScalarFormat scale_format = ScalarFormat::f16;
  ZeroFormat zero_format = ZeroFormat::code;  // only read when has_zero_point()
  PackOrder pack_order = PackOrder::low_first;
  // Codebook elements only: each code stands for vector_dim consecutive weights of a row (the last
  // vector of a row is cut short when vector_dim does not divide it), looked up in the codebook
  // that serves them.
  std::size_t vector_dim = 1;
  Granularity codebook_granularity = Granularity::per_tensor();
  ScalarFormat codebook_format = ScalarFormat::f16;
  // Second-level scaling: one fp32 multiplier for the whole matrix (NVFP4's tensor scale) ...
  bool tensor_scale = false;
  // ... and QLoRA's double quantization: the scales stored as 8-bit codes of the signed dynamic
  // map, after subtracting their mean, in blocks of this many sharing an fp32 absmax (0 = off).
  std::size_t double_quant_block = 0;
  // Rows stored as blocks of this ggml type instead of all of the above (see the top of this file).
  std::optional<GgmlType> ggml_type = std::nullopt;

  /// Signed integers, scale = absmax / (2^(bits-1) - 1), no zero point.
  static Scheme symmetric_int(int bits, Granularity granularity,
                              ScalarFormat scale_format = ScalarFormat::f16) {
    Scheme scheme{ElementFormat::int_signed, bits, granularity, scale_format, ZeroFormat::code,
                  PackOrder::low_first};
    scheme.validate();
    return scheme;
  }
  /// Unsigned integers with an integer zero point, over a range that always includes 0.
  static Scheme asymmetric_int(int bits, Granularity granularity,
                               ScalarFormat scale_format = ScalarFormat::f16,
                               ZeroFormat zero_format = ZeroFormat::code) {
    Scheme scheme{ElementFormat::int_unsigned, bits, granularity, scale_format, zero_format,
                  PackOrder::low_first};
    scheme.validate();
    return scheme;
  }

  /// llama.cpp's blocks of `type` (Q4_0, Q4_K, IQ4_XS, F16, ...), stored verbatim. The other
  /// fields are fixed: the element and width of the block's codes (ggml_type_table: e.g. uint4
  /// for Q4_0, whose zero point is the constant 8, for Q4_1 and Q4_K, and for the IQ4 types'
  /// indices; uint5 for Q5_x; int8 for Q8_0; uint16 for the raw bits of F16 and BF16), f16
  /// scales, Granularity::none() (any scales are in the blocks), the defaults elsewhere.
  static Scheme ggml_blocks(GgmlType type) noexcept {
    const GgmlTypeTraits& traits = ggml_traits(type);
    Scheme scheme;
    scheme.element = traits.signed_codes ? ElementFormat::int_signed : ElementFormat::int_unsigned;
    scheme.bits = traits.code_bits;
    scheme.granularity = Granularity::none();
    scheme.ggml_type = traits.value;
    return scheme;
  }

  bool has_block_layout() const noexcept { return ggml_type.has_value(); }
  /// Weights and bytes of one block of the block layout (0 without one).
  std::size_t block_weights() const noexcept {
    return has_block_layout() ? ggml::block_weights(*ggml_type) : 0;
  }
  std::size_t block_bytes() const noexcept {
    return has_block_layout() ? ggml::block_bytes(*ggml_type) : 0;
  }

  /// A zero point stored beside the codes (block layouts keep theirs inside the blocks).
  bool has_zero_point() const noexcept {
    return !has_block_layout() && element == ElementFormat::int_unsigned;
  }
  /// Scales stored beside the codes (block layouts keep theirs inside the blocks).
  bool has_scales() const noexcept { return granularity.kind != Granularity::Kind::none; }
  bool is_codebook() const noexcept { return element == ElementFormat::codebook; }
  /// Codes that look up vectors (of vector_dim values) in a table: stored codebooks or HIGGS grids.
  bool is_table_lookup() const noexcept { return is_codebook() || element == ElementFormat::higgs; }
  /// Codes in a row of `cols` weights (one per vector_dim weights; needs a validated Scheme).
  std::size_t codes_per_row(std::size_t cols) const noexcept {
    return detail::ceil_div(cols, vector_dim);
  }
  /// Entries of one codebook (each vector_dim values).
  std::size_t codebook_entries() const noexcept { return std::size_t{1} << bits; }
  /// Integer codes in lowbit's own layout (what the linear quantizer and the integer kernels take).
  bool is_integer() const noexcept {
    return !has_block_layout() &&
           (element == ElementFormat::int_signed || element == ElementFormat::int_unsigned);
  }

  /// Bits one zero point takes.
  int zero_bits() const noexcept {
    return zero_format == ZeroFormat::code ? bits : scalar_bits(zero_scalar_format(zero_format));
  }

  /// Throws invalid_argument, saying what is wrong, for a Scheme that cannot be stored.
  void validate() const;

  /// The sizes of a [rows, cols] matrix's storage. Validates the Scheme, then throws
  /// invalid_argument naming the shape when any size (or rows * cols floats, what dequantize
  /// writes) does not fit in the address space: the check every size read from a file goes
  /// through before anything is allocated. A block layout's cols must be a multiple of its block
  /// (the callers check; here the last block is counted whole).
  StorageSizes storage(std::size_t rows, std::size_t cols) const;

  ScaleGrid scale_grid(std::size_t rows, std::size_t cols) const noexcept {
    return ScaleGrid::of(granularity, rows, cols);
  }
  /// The grid of codebooks ({0, 0} unless the elements are codebook indices).
  ScaleGrid codebook_grid(std::size_t rows, std::size_t cols) const noexcept {
    return is_codebook() ? ScaleGrid::of(codebook_granularity, rows, cols) : ScaleGrid{};
  }
  /// Bits one stored scale takes (8 with double quantization, whose block absmax values are
  /// counted separately).
  int stored_scale_bits() const noexcept {
    return double_quant_block > 0 ? 8 : scalar_bits(scale_format);
  }

  /// Storage per weight of a [rows, cols] matrix, in bits: codes, scales, zero points, codebooks
  /// and second-level scales (row padding of the packed codes is not counted; it is at most 31
  /// bits a row).
  double bits_per_weight(std::size_t rows, std::size_t cols) const noexcept;

  /// A short, stable description, e.g. "int4 sym g128 scale=f16" or "uint4 asym channel
  /// scale=f16 zero=code"; a block layout is its name, e.g. "ggml_q4_k".
  std::string to_string() const;

  friend bool operator==(const Scheme&, const Scheme&) = default;
};

}  // namespace lowbit
