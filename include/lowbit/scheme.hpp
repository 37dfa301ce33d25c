// Scheme: everything needed to interpret a QuantizedMatrix: element format and width, granularity
// of the scales, whether there is a zero point, the formats scales and zeros are stored in, and the
// packing order of the codes.
//
// A Scheme may instead name a block layout: one of llama.cpp's ggml block types (Q4_0, Q8_0,
// Q4_K), whose blocks carry their own scales, or its 16-bit floats F16 and BF16 (blocks of one
// weight: unquantized checkpoints), stored verbatim (format/ggml_blocks.hpp).
// Such a Scheme is made by Scheme::ggml_blocks and has fixed values in every other field (validate
// refuses any other), so that equality and the JSON form stay unambiguous; is_integer(),
// has_scales() and has_zero_point() are false for it, as nothing outside the blocks is stored.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

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

constexpr const char* to_string(ElementFormat format) noexcept {
  switch (format) {
    case ElementFormat::int_signed:
      return "int";
    case ElementFormat::int_unsigned:
      return "uint";
    case ElementFormat::fp8_e4m3:
      return "e4m3";
    case ElementFormat::fp8_e5m2:
      return "e5m2";
    case ElementFormat::fp4_e2m1:
      return "e2m1";
    case ElementFormat::nf4:
      return "nf4";
    case ElementFormat::codebook:
      return "cb";
    case ElementFormat::higgs:
      return "higgs";
  }
  return "?";
}

/// The code width a non-integer element format always has; 0 for the integers (1..8 unsigned,
/// 2..8 signed) and
/// codebooks (any of 1..8).
constexpr int fixed_element_bits(ElementFormat format) noexcept {
  switch (format) {
    case ElementFormat::fp8_e4m3:
    case ElementFormat::fp8_e5m2:
      return 8;
    case ElementFormat::fp4_e2m1:
    case ElementFormat::nf4:
      return 4;
    default:
      return 0;
  }
}

/// How zero points are stored. Integer zero points (what the linear quantizer makes) are packed as
/// codes of the element's own width, as GPTQ and AWQ checkpoints store them; fractional zero points
/// (HQQ's) need a float format.
enum class ZeroFormat : std::uint8_t { code, f32, f16, bf16 };

constexpr const char* to_string(ZeroFormat format) noexcept {
  switch (format) {
    case ZeroFormat::code:
      return "code";
    case ZeroFormat::f32:
      return "f32";
    case ZeroFormat::f16:
      return "f16";
    case ZeroFormat::bf16:
      return "bf16";
  }
  return "?";
}

/// The float format of a non-code zero format.
constexpr ScalarFormat zero_scalar_format(ZeroFormat format) noexcept {
  switch (format) {
    case ZeroFormat::f32:
      return ScalarFormat::f32;
    case ZeroFormat::bf16:
      return ScalarFormat::bf16;
    default:
      return ScalarFormat::f16;
  }
}

/// How a QuantizedMatrix stores its rows: lowbit's own layout (`none`: packed codes, with scales
/// and zero points in grids of their own), or the blocks of a ggml type, scales inside, verbatim.
enum class BlockLayout : std::uint8_t {
  none,
  ggml_q4_0,
  ggml_q8_0,
  ggml_q4_k,
  ggml_f16,
  ggml_bf16
};

constexpr const char* to_string(BlockLayout layout) noexcept {
  switch (layout) {
    case BlockLayout::none:
      return "none";
    case BlockLayout::ggml_q4_0:
      return "ggml_q4_0";
    case BlockLayout::ggml_q8_0:
      return "ggml_q8_0";
    case BlockLayout::ggml_q4_k:
      return "ggml_q4_k";
    case BlockLayout::ggml_f16:
      return "ggml_f16";
    case BlockLayout::ggml_bf16:
      return "ggml_bf16";
  }
  return "?";
}

constexpr BlockLayout block_layout(GgmlType type) noexcept {
  switch (type) {
    case GgmlType::q4_0:
      return BlockLayout::ggml_q4_0;
    case GgmlType::q8_0:
      return BlockLayout::ggml_q8_0;
    case GgmlType::q4_k:
      return BlockLayout::ggml_q4_k;
    case GgmlType::f16:
      return BlockLayout::ggml_f16;
    case GgmlType::bf16:
      return BlockLayout::ggml_bf16;
  }
  return BlockLayout::none;
}

/// The ggml type of a block layout other than `none` (q4_0 for `none`, which has none).
constexpr GgmlType ggml_type(BlockLayout layout) noexcept {
  switch (layout) {
    case BlockLayout::ggml_q8_0:
      return GgmlType::q8_0;
    case BlockLayout::ggml_q4_k:
      return GgmlType::q4_k;
    case BlockLayout::ggml_f16:
      return GgmlType::f16;
    case BlockLayout::ggml_bf16:
      return GgmlType::bf16;
    default:
      return GgmlType::q4_0;
  }
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
/// entry (i, j) serves row i (or all rows when there is one row) and group j of that row.
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
        return {rows, (cols + g.group_size - 1) / g.group_size};
      case Granularity::Kind::block:
        return {(rows + g.block_rows - 1) / g.block_rows, (cols + g.group_size - 1) / g.group_size};
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

struct Scheme {
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
  // Rows stored as ggml blocks instead of all of the above (see the top of this file).
  BlockLayout block_layout = BlockLayout::none;

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

  /// llama.cpp's Q4_0, Q8_0, Q4_K, F16 or BF16 blocks, stored verbatim. The other fields are
  /// fixed: the element and width of the block's codes (uint4 for Q4_0, whose zero point is the
  /// constant 8, and for Q4_K; int8 for Q8_0; uint16 for the raw bits of F16 and BF16), f16
  /// scales, Granularity::none() (any scales are in the blocks), the defaults elsewhere.
  static Scheme ggml_blocks(GgmlType type) noexcept {
    Scheme scheme;
    scheme.element =
        type == GgmlType::q8_0 ? ElementFormat::int_signed : ElementFormat::int_unsigned;
    scheme.bits = type == GgmlType::q8_0                            ? 8
                  : type == GgmlType::f16 || type == GgmlType::bf16 ? 16
                                                                    : 4;
    scheme.granularity = Granularity::none();
    scheme.block_layout = lowbit::block_layout(type);
    return scheme;
  }

  bool has_block_layout() const noexcept { return block_layout != BlockLayout::none; }
  /// Weights and bytes of one block of the block layout (0 without one).
  std::size_t block_weights() const noexcept {
    return has_block_layout() ? lowbit::ggml::block_weights(ggml_type(block_layout)) : 0;
  }
  std::size_t block_bytes() const noexcept {
    return has_block_layout() ? lowbit::ggml::block_bytes(ggml_type(block_layout)) : 0;
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
  /// Codes in a row of `cols` weights (one per vector_dim weights).
  std::size_t codes_per_row(std::size_t cols) const noexcept {
    return (cols + vector_dim - 1) / vector_dim;
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
  void validate() const {
    auto fail = [this](const std::string& reason) {
      throw invalid_argument("scheme " + to_string() + ": " + reason);
    };
    if (has_block_layout()) {
      const bool known = lowbit::block_layout(ggml_type(block_layout)) == block_layout;
      if (!known) fail("unknown block layout");
      if (*this != ggml_blocks(ggml_type(block_layout)))
        fail(
            "a ggml block layout fixes every other field of the scheme (make it with "
            "Scheme::ggml_blocks)");
      return;
    }
    if (is_integer()) {
      // A 1-bit code needs a zero point to mean anything (HQQ's 1-bit setting): 1..8 bits unsigned.
      const int fewest = element == ElementFormat::int_unsigned ? 1 : 2;
      if (bits < fewest || bits > 8)
        fail(element == ElementFormat::int_unsigned
                 ? "unsigned integer elements must have 1 to 8 bits"
                 : "signed integer elements must have 2 to 8 bits");
    } else if (is_codebook()) {
      if (bits < 1 || bits > 8) fail("codebook indices must have 1 to 8 bits");
    } else if (element == ElementFormat::higgs) {
      // The grids lowbit computes: p = 1 with 2..256 points, p = 2 with 4..256 points.
      if (vector_dim == 1   ? (bits < 1 || bits > 8)
          : vector_dim == 2 ? (bits < 2 || bits > 8)
                            : true)
        fail("HIGGS grids have 2 to 256 points in 1 dimension, or 4 to 256 in 2");
    } else if (bits != fixed_element_bits(element)) {
      fail(std::string(lowbit::to_string(element)) + " elements have " +
           std::to_string(fixed_element_bits(element)) + " bits");
    }
    for (const Granularity* g : {&granularity, &codebook_granularity})
      if ((g->kind == Granularity::Kind::group || g->kind == Granularity::Kind::block) &&
          g->group_size == 0)
        fail("group size must be at least 1");
    if (granularity.kind == Granularity::Kind::block) {
      // Every quantizer of another format computes its parameters one row at a time.
      if (element != ElementFormat::fp8_e4m3 && element != ElementFormat::fp8_e5m2)
        fail("2-D block scales are for FP8 elements (quant/fp8.hpp)");
      if (granularity.block_rows == 0) fail("blocks need at least 1 row");
      if (scale_format == ScalarFormat::e8m0 || scale_format == ScalarFormat::e4m3)
        fail("2-D block scales are stored in f32, f16 or bf16");
    }
    if (codebook_granularity.kind == Granularity::Kind::block)
      fail("codebooks are per tensor, channel or group, not per 2-D block");
    if (!has_scales() && !is_codebook()) fail("only codebook elements can go without scales");
    if (vector_dim == 0) fail("vector_dim must be at least 1");
    if (vector_dim > 1) {
      if (!is_table_lookup()) fail("only codebook and HIGGS elements can stand for vectors");
      for (const Granularity* g : {&granularity, &codebook_granularity})
        if (g->kind == Granularity::Kind::group && g->group_size % vector_dim != 0)
          fail("group size must be a multiple of vector_dim, so that groups hold whole vectors");
    }
    if (is_codebook()) {
      if (codebook_granularity.kind == Granularity::Kind::none)
        fail("a codebook scheme needs a codebook granularity");
      if (scalar_bits(codebook_format) < 16) fail("codebooks are stored in f32, f16 or bf16");
    }
    if (double_quant_block > 0) {
      if (!has_scales()) fail("double quantization needs scales");
      if (scale_format != ScalarFormat::f32)
        fail("double quantization takes f32 scales (the format they are computed in)");
    }
    if (pack_order == PackOrder::awq_interleaved && bits != 4)
      fail("the AWQ interleaved packing order is defined for 4-bit codes only");
  }

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
  double bits_per_weight(std::size_t rows, std::size_t cols) const noexcept {
    if (rows == 0 || cols == 0) return 0.0;
    if (has_block_layout()) {  // whole blocks: 18, 34 or 144 bytes per 32, 32 or 256 weights
      const std::size_t blocks = (cols + block_weights() - 1) / block_weights();
      return static_cast<double>(blocks * block_bytes() * 8) / static_cast<double>(cols);
    }
    const double weights = static_cast<double>(rows) * static_cast<double>(cols);
    const double groups = static_cast<double>(scale_grid(rows, cols).size());
    double total = static_cast<double>(rows) * static_cast<double>(codes_per_row(cols)) * bits +
                   groups * stored_scale_bits();
    if (has_zero_point()) total += groups * zero_bits();
    if (double_quant_block > 0) {
      const double blocks = std::ceil(groups / static_cast<double>(double_quant_block));
      total += blocks * 32 + 32;  // an fp32 absmax per block and the fp32 mean
    }
    if (is_codebook())
      total +=
          static_cast<double>(codebook_grid(rows, cols).size() * codebook_entries() * vector_dim) *
          scalar_bits(codebook_format);
    if (tensor_scale) total += 32;
    return total / weights;
  }

  /// A short, stable description, e.g. "int4 sym g128 scale=f16" or "uint4 asym channel
  /// scale=f16 zero=code"; a block layout is its name, e.g. "ggml_q4_k".
  std::string to_string() const {
    if (block_layout != BlockLayout::none) return lowbit::to_string(block_layout);
    const auto granularity_text = [](const Granularity& g) {
      switch (g.kind) {
        case Granularity::Kind::none:
          return std::string("unscaled");
        case Granularity::Kind::tensor:
          return std::string("tensor");
        case Granularity::Kind::channel:
          return std::string("channel");
        case Granularity::Kind::block: {
          std::string text = "b";
          text.append(std::to_string(g.block_rows))
              .append("x")
              .append(std::to_string(g.group_size));
          return text;
        }
        case Granularity::Kind::group:
          break;
      }
      std::string text = "g";
      text += std::to_string(g.group_size);
      return text;
    };
    std::string text = lowbit::to_string(element);
    if (is_integer() || is_table_lookup()) text += std::to_string(bits);
    if (vector_dim > 1) {
      text += 'x';
      text += std::to_string(vector_dim);
    }
    text += has_zero_point() ? " asym " : (is_integer() ? " sym " : " ");
    text += granularity_text(granularity);
    if (has_scales()) {
      text += " scale=";
      text += double_quant_block > 0 ? "dq" + std::to_string(double_quant_block)
                                     : std::string(lowbit::to_string(scale_format));
    }
    if (has_zero_point()) {
      text += " zero=";
      text += lowbit::to_string(zero_format);
    }
    if (is_codebook()) {
      text += " codebook=";
      text += granularity_text(codebook_granularity);
      text += '/';
      text += lowbit::to_string(codebook_format);
    }
    if (tensor_scale) text += " tensor-scale";
    if (pack_order == PackOrder::awq_interleaved) text += " pack=awq";
    return text;
  }

  friend bool operator==(const Scheme&, const Scheme&) = default;
};

}  // namespace lowbit
