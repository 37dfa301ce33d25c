// QuantizedMatrix: the currency between quantizers, kernels and files. It owns the packed codes of
// a [rows, cols] weight matrix (rows = output channels, cols = input features), the scales and
// zero points in the formats its Scheme names, and can dequantize itself to float.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lowbit/detail/parallel.hpp"
#include "lowbit/error.hpp"
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
    }
  }
  return values;
}

class QuantizedMatrix {
 public:
  QuantizedMatrix() = default;

  /// Storage for a [rows, cols] matrix with every code, scale and zero-point byte 0.
  QuantizedMatrix(const Scheme& scheme, std::size_t rows, std::size_t cols)
      : scheme_(scheme), rows_(rows), cols_(cols) {
    scheme_.validate();
    words_per_row_ = packed_words(cols, scheme_.bits);
    codes_.assign(rows * words_per_row_, 0u);
    grid_ = scheme_.scale_grid(rows, cols);
    scales_.assign(grid_.size() * scalar_bytes(scheme_.scale_format), 0u);
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

  // --- Codes: each row is packed on its own, in 32-bit words, in the Scheme's pack order. ---
  std::size_t words_per_row() const noexcept { return words_per_row_; }
  std::span<std::uint32_t> row_words(std::size_t row) noexcept {
    return {codes_.data() + row * words_per_row_, words_per_row_};
  }
  std::span<const std::uint32_t> row_words(std::size_t row) const noexcept {
    return {codes_.data() + row * words_per_row_, words_per_row_};
  }
  std::span<const std::uint32_t> packed_codes() const noexcept { return codes_; }
  std::span<std::uint32_t> packed_codes() noexcept { return codes_; }

  std::uint8_t code(std::size_t row, std::size_t col) const noexcept {
    return get_code(codes_.data() + row * words_per_row_, col, scheme_.bits, scheme_.pack_order);
  }
  void set_code(std::size_t row, std::size_t col, std::uint8_t value) noexcept {
    lowbit::set_code(codes_.data() + row * words_per_row_, col, scheme_.bits, scheme_.pack_order,
                     value);
  }

  // --- Scales and zero points: a grid of scale_grid().rows x scale_grid().cols values. ---
  const ScaleGrid& scale_grid() const noexcept { return grid_; }
  /// Index into the scale grid of the scale that serves element (row, col).
  std::size_t scale_index(std::size_t row, std::size_t col) const noexcept {
    const std::size_t scale_row = grid_.rows == 1 ? 0 : row;
    const std::size_t scale_col = scheme_.granularity.kind == Granularity::Kind::group
                                      ? col / scheme_.granularity.group_size
                                      : 0;
    return scale_row * grid_.cols + scale_col;
  }
  float scale(std::size_t index) const noexcept {
    return load_scalar(scheme_.scale_format,
                       scales_.data() + index * scalar_bytes(scheme_.scale_format));
  }
  /// Stores `value` rounded to the scale format; returns the value actually stored.
  float set_scale(std::size_t index, float value) {
    std::uint8_t* at = scales_.data() + index * scalar_bytes(scheme_.scale_format);
    store_scalar(scheme_.scale_format, value, at);
    return load_scalar(scheme_.scale_format, at);
  }
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

  /// Bits of storage per weight: codes, scales and zero points (see Scheme::bits_per_weight).
  double bits_per_weight() const noexcept { return scheme_.bits_per_weight(rows_, cols_); }
  /// Bytes actually held, row padding included.
  std::size_t storage_bytes() const noexcept {
    return (codes_.size() + zero_codes_.size()) * sizeof(std::uint32_t) + scales_.size() +
           zeros_.size();
  }

  /// Writes the float matrix this one stands for: (value(code) - zero) * scale, element by element.
  void dequantize(MatrixView<float> out) const {
    if (out.rows != rows_ || out.cols != cols_)
      throw invalid_argument("dequantize: output is [" + std::to_string(out.rows) + ", " +
                             std::to_string(out.cols) + "], matrix is [" + std::to_string(rows_) +
                             ", " + std::to_string(cols_) + "]");
    const std::vector<float> values = element_values(scheme_);
    const std::size_t group = scheme_.granularity.kind == Granularity::Kind::group
                                  ? scheme_.granularity.group_size
                                  : (cols_ == 0 ? 1 : cols_);
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
          const float s = scale(index);
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
  Scheme scheme_{};
  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
  std::size_t words_per_row_ = 0;
  ScaleGrid grid_{};
  std::vector<std::uint32_t> codes_;
  std::vector<std::uint8_t> scales_;
  std::vector<std::uint8_t> zeros_;
  std::vector<std::uint32_t> zero_codes_;
};

}  // namespace lowbit
