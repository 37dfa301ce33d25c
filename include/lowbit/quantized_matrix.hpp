// QuantizedMatrix: the currency between quantizers, kernels and files. It owns the packed codes of
// a [rows, cols] weight matrix (rows = output channels, cols = input features), the scales and
// zero points in the formats its Scheme names, codebooks and second-level scales where the Scheme
// has them, and can dequantize itself to float.
//
// A Scheme with a block layout (llama.cpp's ggml Q4_0, Q8_0, Q4_K) stores each row as its raw ggml
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

#include "lowbit/format/hadamard.hpp"
#include "lowbit/format/higgs_grids.hpp"
#include "lowbit/detail/parallel.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/dynamic_map.hpp"
#include "lowbit/format/ggml_blocks.hpp"
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
inline std::vector<float> element_values(const Scheme& scheme) {
  const std::size_t count = std::size_t{1} << scheme.bits;
  std::vector<float> values(count);
  for (std::size_t code = 0; code < count; ++code) {
    const auto c = static_cast<std::uint8_t>(code);
    switch (scheme.element) {
      case ElementFormat::int_signed:
        values[code] = static_cast<float>(from_code(c, scheme.bits, true));
        break;
      case ElementFormat::int_unsigned:
        values[code] = static_cast<float>(c);
        break;
      case ElementFormat::fp8_e4m3:
        values[code] = float8_e4m3::from_bits(c).to_float();
        break;
      case ElementFormat::fp8_e5m2:
        values[code] = float8_e5m2::from_bits(c).to_float();
        break;
      case ElementFormat::fp4_e2m1:
        values[code] = float4_e2m1::from_bits(c).to_float();
        break;
      case ElementFormat::nf4:
        values[code] = nf4::from_bits(c).to_float();
        break;
      case ElementFormat::codebook:
      case ElementFormat::higgs:
        values[code] = 0.0f;
        break;
    }
  }
  return values;
}

namespace detail {

/// The block layout's message when `cols` does not hold whole blocks.
inline std::string block_layout_cols_error(const Scheme& scheme, std::size_t cols) {
  std::string message = "scheme ";
  message.append(scheme.to_string())
      .append(" stores rows of whole ")
      .append(std::to_string(scheme.block_weights()))
      .append("-weight blocks; ")
      .append(std::to_string(cols))
      .append(" columns is not a multiple of ")
      .append(std::to_string(scheme.block_weights()));
  return message;
}

}  // namespace detail

class QuantizedMatrix {
 public:
  QuantizedMatrix() = default;

  /// Storage for a [rows, cols] matrix with every code, scale and zero-point byte 0.
  QuantizedMatrix(const Scheme& scheme, std::size_t rows, std::size_t cols)
      : scheme_(scheme), rows_(rows), cols_(cols) {
    scheme_.validate();
    if (scheme_.has_block_layout()) {
      if (cols % scheme_.block_weights() != 0)
        throw invalid_argument(detail::block_layout_cols_error(scheme_, cols),
                               {{}, {}, {rows, cols}});
      bytes_per_row_ = cols / scheme_.block_weights() * scheme_.block_bytes();
      blocks_.assign(rows * bytes_per_row_, 0u);
      return;
    }
    words_per_row_ = packed_words(scheme_.codes_per_row(cols), scheme_.bits);
    codes_.assign(rows * words_per_row_, 0u);
    grid_ = scheme_.scale_grid(rows, cols);
    scales_.assign(grid_.size() * static_cast<std::size_t>(scheme_.stored_scale_bits() / 8), 0u);
    if (scheme_.double_quant_block > 0)
      scale_block_absmax_.assign(
          (grid_.size() + scheme_.double_quant_block - 1) / scheme_.double_quant_block, 0.0f);
    codebook_grid_ = scheme_.codebook_grid(rows, cols);
    codebooks_.assign(
        codebook_grid_.size() * codebook_values() * scalar_bytes(scheme_.codebook_format), 0u);
    if (scheme_.has_zero_point()) {
      if (scheme_.zero_format == ZeroFormat::code)
        zero_codes_.assign(grid_.rows * packed_words(grid_.cols, scheme_.bits), 0u);
      else
        zeros_.assign(grid_.size() * scalar_bytes(zero_scalar_format(scheme_.zero_format)), 0u);
    }
  }

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
  // multiple of the block size (18, 34 or 144 bytes) from storage aligned for any scalar, so a
  // row may be read in place as its block structs (format/ggml_blocks.hpp). ---
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
  std::vector<float> set_codebook(std::size_t index, std::span<const float> values) {
    if (values.size() != codebook_values())
      throw invalid_argument("set_codebook: " + std::to_string(values.size()) +
                             " values for a codebook of " + std::to_string(codebook_values()));
    const std::size_t bytes = scalar_bytes(scheme_.codebook_format);
    std::vector<float> stored(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      std::uint8_t* at = codebooks_.data() + (index * codebook_values() + i) * bytes;
      store_scalar(scheme_.codebook_format, values[i], at);
      stored[i] = load_scalar(scheme_.codebook_format, at);
    }
    return stored;
  }
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
  float set_zero(std::size_t index, float value) {
    if (!scheme_.has_zero_point())
      throw invalid_argument("scheme " + scheme_.to_string() + " has no zero point");
    if (scheme_.zero_format == ZeroFormat::code) {
      const float top = static_cast<float>(int_max(scheme_.bits, false));
      if (!(value >= 0.0f && value <= top && value == static_cast<float>(static_cast<int>(value))))
        throw invalid_value("zero point " + std::to_string(value) + " is not a " +
                            std::to_string(scheme_.bits) + "-bit code (scheme " +
                            scheme_.to_string() + ")");
      const std::size_t words = packed_words(grid_.cols, scheme_.bits);
      lowbit::set_code(zero_codes_.data() + (index / grid_.cols) * words, index % grid_.cols,
                       scheme_.bits, PackOrder::low_first, static_cast<std::uint8_t>(value));
      return value;
    }
    const ScalarFormat format = zero_scalar_format(scheme_.zero_format);
    std::uint8_t* at = zeros_.data() + index * scalar_bytes(format);
    store_scalar(format, value, at);
    return load_scalar(format, at);
  }
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
  void set_input_rotation(const HadamardRotation& rotation) {
    if (rotation.size == 0 || cols_ % rotation.size != 0 || !hadamard_size_supported(rotation.size))
      throw invalid_argument("input rotation of size " + std::to_string(rotation.size) +
                             " for a matrix of " + std::to_string(cols_) + " columns");
    rotation_ = rotation;
  }
  /// x <- R x for an activation vector of cols() values (unchanged without a rotation): what the
  /// stored matrix must be multiplied by.
  void rotate_input(std::span<float> x) const {
    if (!rotation_) return;
    if (x.size() != cols_)
      throw invalid_argument("rotate_input: " + std::to_string(x.size()) + " values for " +
                             std::to_string(cols_) + " columns");
    for (std::size_t start = 0; start < cols_; start += rotation_->size)
      rotation_->apply(x.subspan(start, rotation_->size));
  }
  /// The matrix in the original basis of the inputs: dequantize() with the rotation undone, each
  /// row w <- w R (the same as dequantize() without a rotation).
  std::vector<float> dequantize_unrotated() const {
    std::vector<float> out = dequantize();
    if (!rotation_) return out;
#pragma omp parallel for schedule(static) if (detail::worth_threads(rows_ * cols_))
    for (std::ptrdiff_t r = 0; r < static_cast<std::ptrdiff_t>(rows_); ++r)
      for (std::size_t start = 0; start < cols_; start += rotation_->size)
        rotation_->apply_transpose(std::span<float>(
            out.data() + static_cast<std::size_t>(r) * cols_ + start, rotation_->size));
    return out;
  }

  /// Bits of storage per weight: codes, scales and zero points (see Scheme::bits_per_weight).
  double bits_per_weight() const noexcept { return scheme_.bits_per_weight(rows_, cols_); }
  /// Bytes actually held, row padding included.
  std::size_t storage_bytes() const noexcept {
    return (codes_.size() + zero_codes_.size()) * sizeof(std::uint32_t) + scales_.size() +
           zeros_.size() + codebooks_.size() + scale_block_absmax_.size() * sizeof(float) +
           blocks_.size();
  }

  /// Writes the float matrix this one stands for: (value(code) - zero) * scale, element by element.
  void dequantize(MatrixView<float> out) const {
    if (out.rows != rows_ || out.cols != cols_)
      throw invalid_argument("dequantize: output is [" + std::to_string(out.rows) + ", " +
                             std::to_string(out.cols) + "], matrix is [" + std::to_string(rows_) +
                             ", " + std::to_string(cols_) + "]");
    if (scheme_.is_table_lookup()) {
      dequantize_table_lookup(out);
      return;
    }
    if (scheme_.has_block_layout()) {
      dequantize_blocks(out);
      return;
    }
    const std::vector<float> values = element_values(scheme_);
    const std::size_t group = scheme_.granularity.row_span(cols_);
#pragma omp parallel if (detail::worth_threads(rows_ * cols_))
    {
      std::vector<std::uint8_t> codes(cols_);
#pragma omp for schedule(static)
      for (std::ptrdiff_t r = 0; r < static_cast<std::ptrdiff_t>(rows_); ++r) {
        const auto row = static_cast<std::size_t>(r);
        unpack_words(row_words(row), scheme_.bits, codes, scheme_.pack_order);
        float* out_row = out.row(row).data();
        for (std::size_t start = 0; start < cols_; start += group) {
          const std::size_t index = scale_index(row, start);
          const float s = effective_scale(index);
          const float z = zero(index);
          const std::size_t end = start + group < cols_ ? start + group : cols_;
          for (std::size_t col = start; col < end; ++col)
            out_row[col] = (values[codes[col]] - z) * s;
        }
      }
    }
  }
  std::vector<float> dequantize() const {
    std::vector<float> out(rows_ * cols_);
    dequantize(MatrixView<float>(out.data(), rows_, cols_));
    return out;
  }

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
    if (scheme_.block_layout != block_layout(ggml::type_of<Block>::value))
      throw invalid_argument(std::string("row_blocks: ggml ")
                                 .append(lowbit::to_string(ggml::type_of<Block>::value))
                                 .append(" blocks asked of a matrix with scheme ")
                                 .append(scheme_.to_string()));
  }

  /// Block layouts: each block dequantizes as ggml's dequantize_row_* does.
  void dequantize_blocks(MatrixView<float> out) const {
    switch (scheme_.block_layout) {
      case BlockLayout::ggml_q4_0:
        dequantize_rows_of<ggml::block_q4_0>(out);
        return;
      case BlockLayout::ggml_q8_0:
        dequantize_rows_of<ggml::block_q8_0>(out);
        return;
      case BlockLayout::ggml_q4_k:
        dequantize_rows_of<ggml::block_q4_k>(out);
        return;
      case BlockLayout::ggml_f16:
        dequantize_rows_of<ggml::block_f16>(out);
        return;
      case BlockLayout::ggml_bf16:
        dequantize_rows_of<ggml::block_bf16>(out);
        return;
      case BlockLayout::none:
        return;
    }
  }
  template <class Block>
  void dequantize_rows_of(MatrixView<float> out) const {
    const std::size_t weights = ggml::block_weights(ggml::type_of<Block>::value);
#pragma omp parallel for schedule(static) if (detail::worth_threads(rows_ * cols_))
    for (std::ptrdiff_t r = 0; r < static_cast<std::ptrdiff_t>(rows_); ++r) {
      const auto row = static_cast<std::size_t>(r);
      const std::span<const Block> blocks = blocks_of<Block>(row);
      float* out_row = out.row(row).data();
      for (std::size_t b = 0; b < blocks.size(); ++b)
        ggml::dequantize_block(blocks[b], out_row + b * weights);
    }
  }

  /// Codebook and HIGGS elements: each code looks up vector_dim values in the table that serves
  /// them (the stored codebook of its group, or the one fixed HIGGS grid).
  void dequantize_table_lookup(MatrixView<float> out) const {
    const bool higgs = scheme_.element == ElementFormat::higgs;
    std::vector<float> books;
    if (higgs) {
      const HiggsGrid grid = higgs_grid(static_cast<int>(scheme_.vector_dim), 1 << scheme_.bits);
      books.assign(grid.points.begin(), grid.points.end());
    } else {
      const std::size_t bytes = scalar_bytes(scheme_.codebook_format);
      books.resize(codebooks_.size() / bytes);
      for (std::size_t i = 0; i < books.size(); ++i)
        books[i] = load_scalar(scheme_.codebook_format, codebooks_.data() + i * bytes);
    }
    const std::size_t table_values = scheme_.codebook_entries() * scheme_.vector_dim;
    const std::size_t dim = scheme_.vector_dim;
#pragma omp parallel if (detail::worth_threads(rows_ * cols_))
    {
      std::vector<std::uint8_t> codes(scheme_.codes_per_row(cols_));
#pragma omp for schedule(static)
      for (std::ptrdiff_t r = 0; r < static_cast<std::ptrdiff_t>(rows_); ++r) {
        const auto row = static_cast<std::size_t>(r);
        unpack_words(row_words(row), scheme_.bits, codes, scheme_.pack_order);
        float* out_row = out.row(row).data();
        for (std::size_t col = 0; col < cols_; ++col) {
          const std::size_t entry = codes[col / dim];
          const std::size_t table = higgs ? 0 : codebook_index(row, col);
          const float value = books[table * table_values + entry * dim + col % dim];
          out_row[col] = value * effective_scale(scale_index(row, col));
        }
      }
    }
  }

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
