// QuantizedMatrix: the currency between quantizers, kernels and files. It owns the packed codes of
// a [rows, cols] weight matrix (rows = output channels, cols = input features), the scales and
// zero points in the formats its Scheme names, codebooks and second-level scales where the Scheme
// has them, and can dequantize itself to float.
//
// A Scheme with a block layout (llama.cpp's ggml types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, the K-quants
// Q2_K..Q6_K, IQ4_NL, IQ4_XS, and F16/BF16 as blocks of one weight) stores each row as its raw ggml
// blocks instead, scales inside, and nothing else: row_bytes(r) / row_blocks<Block>(r) give them,
// the rows lie back to back (block_bytes() is the whole tensor as ggml and GGUF store it), and
// cols must be a multiple of the block's 32 or 256 weights. code(), row_words(), scale() and
// zero() do not apply to such a matrix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/format/dynamic_map.hpp"
#include "lowbit/format/ggml_blocks.hpp"
#include "lowbit/format/hadamard.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/format/intn.hpp"
#include "lowbit/format/minifloat.hpp"
#include "lowbit/format/nf4.hpp"
#include "lowbit/format/packing.hpp"
#include "lowbit/format/scalar_format.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

/// The value of every code of a Scheme's element format before scaling: a table of 2^bits floats.
/// (Table lookups, codebooks and HIGGS grids, are decoded through their tables instead.)
std::vector<float> element_values(const Scheme& scheme);

namespace detail {
/// The block layout's message when `cols` does not hold whole blocks.
std::string block_layout_cols_error(const Scheme& scheme, std::size_t cols);
}  // namespace detail

class QuantizedMatrix {
 public:
  QuantizedMatrix() = default;

  /// Storage for a [rows, cols] matrix with every code, scale and zero-point byte 0.
  QuantizedMatrix(const Scheme& scheme, std::size_t rows, std::size_t cols);

  const Scheme& scheme() const noexcept { return scheme_; }
  std::size_t rows() const noexcept { return rows_; }
  std::size_t cols() const noexcept { return cols_; }

  // --- Codes: each row is packed on its own, in 32-bit words, in the Scheme's pack order. A row
  // holds scheme().codes_per_row(cols()) codes: one per weight, or one per vector of vector_dim
  // weights for vector codebooks. ---
  std::size_t words_per_row() const noexcept { return words_per_row_; }
  std::span<std::uint32_t> row_words(std::size_t row) noexcept {
    return {codes_.data() + row * words_per_row_, words_per_row_};
  }
  std::span<const std::uint32_t> row_words(std::size_t row) const noexcept {
    return {codes_.data() + row * words_per_row_, words_per_row_};
  }
  std::span<const std::uint32_t> packed_codes() const noexcept { return codes_; }
  std::span<std::uint32_t> packed_codes() noexcept { return codes_; }

  /// Code `index` of a row (the code of weight `index`, or of vector `index`).
  std::uint8_t code(std::size_t row, std::size_t index) const noexcept {
    return get_code(codes_.data() + row * words_per_row_, index, scheme_.bits, scheme_.pack_order);
  }
  void set_code(std::size_t row, std::size_t index, std::uint8_t value) noexcept {
    lowbit::set_code(codes_.data() + row * words_per_row_, index, scheme_.bits, scheme_.pack_order,
                     value);
  }

  // --- Block layouts (ggml): each row is cols() / block weights blocks, stored back to back with
  // no padding, the rows too; a block layout's matrix has nothing else. Each row starts at a
  // multiple of the block size (an even number of bytes, 2 to 210) from storage aligned for any
  // scalar, so a row may be read in place as its block structs (format/ggml_blocks.hpp). ---
  /// Bytes of one row (0 without a block layout).
  std::size_t bytes_per_row() const noexcept { return bytes_per_row_; }
  std::span<const std::uint8_t> row_bytes(std::size_t row) const noexcept {
    return {blocks_.data() + row * bytes_per_row_, bytes_per_row_};
  }
  std::span<std::uint8_t> row_bytes(std::size_t row) noexcept {
    return {blocks_.data() + row * bytes_per_row_, bytes_per_row_};
  }
  /// All rows: the tensor's data as ggml and GGUF store it.
  std::span<const std::uint8_t> block_bytes() const noexcept { return blocks_; }
  std::span<std::uint8_t> block_bytes() noexcept { return blocks_; }
  /// Row `row` as ggml block structs; throws invalid_argument when Block is not the Scheme's.
  template <class Block>
  std::span<const Block> row_blocks(std::size_t row) const {
    check_block_type<Block>();
    return blocks_of<Block>(row);
  }
  template <class Block>
  std::span<Block> row_blocks(std::size_t row) {
    check_block_type<Block>();
    return {reinterpret_cast<Block*>(blocks_.data() + row * bytes_per_row_),
            bytes_per_row_ / sizeof(Block)};
  }

  // --- Scales and zero points: a grid of scale_grid().rows x scale_grid().cols values (empty
  // for a scheme without scales, whose scale is 1). ---
  const ScaleGrid& scale_grid() const noexcept { return grid_; }
  /// Index into the scale grid of the scale that serves element (row, col).
  std::size_t scale_index(std::size_t row, std::size_t col) const noexcept {
    return grid_index(scheme_.granularity, grid_, row, col);
  }
  float scale(std::size_t index) const noexcept {
    if (!scheme_.has_scales()) return 1.0f;
    if (scheme_.double_quant_block > 0)
      return dynamic_map_signed()[scales_[index]] *
                 scale_block_absmax_[index / scheme_.double_quant_block] +
             scale_offset_;
    return load_scalar(scheme_.scale_format,
                       scales_.data() + index * scalar_bytes(scheme_.scale_format));
  }
  /// Stores `value` rounded to the scale format; returns the value actually stored. (Double-
  /// quantized scales are stored as codes instead: set_double_quantized_scale.)
  float set_scale(std::size_t index, float value) {
    if (!scheme_.has_scales() || scheme_.double_quant_block > 0)
      throw invalid_argument("scheme " + scheme_.to_string() + " does not store plain scales");
    std::uint8_t* at = scales_.data() + index * scalar_bytes(scheme_.scale_format);
    store_scalar(scheme_.scale_format, value, at);
    return load_scalar(scheme_.scale_format, at);
  }
  /// Double quantization: the code of scale `index` in the dynamic map, the fp32 absmax of each
  /// block of scales, and the mean subtracted from all of them.
  void set_double_quantized_scale(std::size_t index, std::uint8_t code) noexcept {
    scales_[index] = code;
  }
  std::span<float> scale_block_absmax() noexcept { return scale_block_absmax_; }
  std::span<const float> scale_block_absmax() const noexcept { return scale_block_absmax_; }
  float scale_offset() const noexcept { return scale_offset_; }
  void set_scale_offset(float offset) noexcept { scale_offset_ = offset; }

  /// The fp32 multiplier of the whole matrix (1 unless the Scheme has a tensor scale).
  float tensor_scale() const noexcept { return tensor_scale_; }
  void set_tensor_scale(float value) {
    if (!scheme_.tensor_scale)
      throw invalid_argument("scheme " + scheme_.to_string() + " has no tensor scale");
    tensor_scale_ = value;
  }

  // --- Codebooks: a grid of codebook_grid().rows x codebook_grid().cols tables, each of
  // 2^bits entries of vector_dim values, stored in the Scheme's codebook format. ---
  const ScaleGrid& codebook_grid() const noexcept { return codebook_grid_; }
  /// Values in one codebook: entries x vector_dim.
  std::size_t codebook_values() const noexcept {
    return scheme_.is_codebook() ? scheme_.codebook_entries() * scheme_.vector_dim : 0;
  }
  std::size_t codebook_index(std::size_t row, std::size_t col) const noexcept {
    return grid_index(scheme_.codebook_granularity, codebook_grid_, row, col);
  }
  /// Component `component` of entry `entry` of codebook `index`.
  float codebook_value(std::size_t index, std::size_t entry, std::size_t component) const noexcept {
    const std::size_t at = (index * codebook_values() + entry * scheme_.vector_dim + component) *
                           scalar_bytes(scheme_.codebook_format);
    return load_scalar(scheme_.codebook_format, codebooks_.data() + at);
  }
  /// Stores codebook `index` (entries x vector_dim values, entry-major) rounded to the codebook
  /// format; returns the values actually stored.
  std::vector<float> set_codebook(std::size_t index, std::span<const float> values);
  std::span<const std::uint8_t> codebook_bytes() const noexcept { return codebooks_; }
  std::span<std::uint8_t> codebook_bytes() noexcept { return codebooks_; }
  std::uint8_t zero_code(std::size_t index) const noexcept {
    const std::size_t words = packed_words(grid_.cols, scheme_.bits);
    return get_code(zero_codes_.data() + (index / grid_.cols) * words, index % grid_.cols,
                    scheme_.bits, PackOrder::low_first);
  }

  /// The zero point of scale-grid entry `index` (0 when the Scheme has none).
  float zero(std::size_t index) const noexcept {
    if (!scheme_.has_zero_point()) return 0.0f;
    if (scheme_.zero_format == ZeroFormat::code) return static_cast<float>(zero_code(index));
    const ScalarFormat format = zero_scalar_format(scheme_.zero_format);
    return load_scalar(format, zeros_.data() + index * scalar_bytes(format));
  }
  /// Stores a zero point; returns the value actually stored. A `code` zero point must be an
  /// integer code of the element width.
  float set_zero(std::size_t index, float value);
  /// The raw little-endian bytes of the scales and float zero points, for writers and kernels.
  std::span<const std::uint8_t> scale_bytes() const noexcept { return scales_; }
  std::span<const std::uint8_t> zero_bytes() const noexcept { return zeros_; }
  /// Zero points stored as codes: each scale row packed low-first into 32-bit words.
  std::span<const std::uint32_t> zero_codes() const noexcept { return zero_codes_; }
  /// Writable storage, for readers that fill a matrix from a file.
  std::span<std::uint8_t> scale_bytes() noexcept { return scales_; }
  std::span<std::uint8_t> zero_bytes() noexcept { return zeros_; }
  std::span<std::uint32_t> zero_codes() noexcept { return zero_codes_; }

  // --- Input rotation (Hadamard incoherence processing): the stored matrix is W R^T for a
  // block-diagonal orthonormal R whose blocks are input_rotation(), so W x = (W R^T)(R x). ---
  const std::optional<HadamardRotation>& input_rotation() const noexcept { return rotation_; }
  void set_input_rotation(const HadamardRotation& rotation);
  /// x <- R x for an activation vector of cols() values (unchanged without a rotation): what the
  /// stored matrix must be multiplied by.
  void rotate_input(std::span<float> x) const;
  /// The matrix in the original basis of the inputs: dequantize() with the rotation undone, each
  /// row w <- w R (the same as dequantize() without a rotation).
  std::vector<float> dequantize_unrotated() const;

  /// Bits of storage per weight: codes, scales and zero points (see Scheme::bits_per_weight).
  double bits_per_weight() const noexcept { return scheme_.bits_per_weight(rows_, cols_); }
  /// Bytes actually held, row padding included.
  std::size_t storage_bytes() const noexcept {
    return (codes_.size() + zero_codes_.size()) * sizeof(std::uint32_t) + scales_.size() +
           zeros_.size() + codebooks_.size() + scale_block_absmax_.size() * sizeof(float) +
           blocks_.size();
  }

  /// Writes the float matrix this one stands for: (value(code) - zero) * scale, element by element.
  void dequantize(MatrixView<float> out) const;
  std::vector<float> dequantize() const;

 private:
  /// The scale an element is multiplied by: its group's scale times the tensor scale.
  float effective_scale(std::size_t index) const noexcept {
    return scheme_.tensor_scale ? scale(index) * tensor_scale_ : scale(index);
  }

  template <class Block>
  std::span<const Block> blocks_of(std::size_t row) const noexcept {
    return {reinterpret_cast<const Block*>(blocks_.data() + row * bytes_per_row_),
            bytes_per_row_ / sizeof(Block)};
  }
  template <class Block>
  void check_block_type() const {
    if (scheme_.ggml_type != ggml::type_of<Block>::value)
      throw invalid_argument(std::string("row_blocks: ggml ")
                                 .append(lowbit::to_string(ggml::type_of<Block>::value))
                                 .append(" blocks asked of a matrix with scheme ")
                                 .append(scheme_.to_string()));
  }

  void dequantize_blocks(MatrixView<float> out) const;
  void dequantize_table_lookup(MatrixView<float> out) const;

  Scheme scheme_{};
  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
  std::size_t words_per_row_ = 0;
  ScaleGrid grid_{};
  std::vector<std::uint32_t> codes_;
  std::vector<std::uint8_t> scales_;
  std::vector<std::uint8_t> zeros_;
  std::vector<std::uint32_t> zero_codes_;
  std::vector<float> scale_block_absmax_;
  float scale_offset_ = 0.0f;
  float tensor_scale_ = 1.0f;
  ScaleGrid codebook_grid_{};
  std::vector<std::uint8_t> codebooks_;
  std::size_t bytes_per_row_ = 0;
  std::vector<std::uint8_t> blocks_;  // block layouts only
  std::optional<HadamardRotation> rotation_;
};

}  // namespace lowbit
