// The bodies of quantized_matrix.hpp that are more than accessors: construction, dequantization
// (OpenMP over rows) and the input rotation.
#include "lowbit/quantized_matrix.hpp"

#include <string>
#include <type_traits>

#include "lowbit/detail/parallel.hpp"
#include "lowbit/format/higgs_grids.hpp"

namespace lowbit {

std::vector<float> element_values(const Scheme& scheme) {
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

std::string detail::block_layout_cols_error(const Scheme& scheme, std::size_t cols) {
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

namespace {

/// Rows of ggml blocks, each dequantized as ggml's dequantize_row_* does.
template <class Block>
void dequantize_block_rows(const QuantizedMatrix& q, MatrixView<float> out) {
  const std::size_t weights = ggml::block_weights(ggml::type_of<Block>::value);
  const std::size_t rows = q.rows();
#pragma omp parallel for schedule(static) if (detail::worth_threads(rows * q.cols()))
  for (std::ptrdiff_t r = 0; r < static_cast<std::ptrdiff_t>(rows); ++r) {
    const auto row = static_cast<std::size_t>(r);
    const std::span<const Block> blocks = q.row_blocks<Block>(row);
    float* out_row = out.row(row).data();
    for (std::size_t b = 0; b < blocks.size(); ++b)
      ggml::dequantize_block(blocks[b], out_row + b * weights);
  }
}

}  // namespace

QuantizedMatrix::QuantizedMatrix(const Scheme& scheme, std::size_t rows, std::size_t cols)
    : scheme_(scheme), rows_(rows), cols_(cols) {
  scheme_.validate();
  if (scheme_.has_block_layout() && cols % scheme_.block_weights() != 0)
    throw invalid_argument(detail::block_layout_cols_error(scheme_, cols), {{}, {}, {rows, cols}});
  // Every size below was checked against overflow (and the address space) here.
  const StorageSizes sizes = scheme_.storage(rows, cols);
  if (scheme_.has_block_layout()) {
    bytes_per_row_ = sizes.bytes_per_row;
    blocks_.assign(sizes.block_bytes, 0u);
    return;
  }
  words_per_row_ = sizes.words_per_row;
  codes_.assign(sizes.code_words, 0u);
  grid_ = sizes.scale_grid;
  scales_.assign(sizes.scale_bytes, 0u);
  scale_block_absmax_.assign(sizes.scale_absmax_count, 0.0f);
  codebook_grid_ = sizes.codebook_grid;
  codebooks_.assign(sizes.codebook_bytes, 0u);
  zero_codes_.assign(sizes.zero_code_words, 0u);
  zeros_.assign(sizes.zero_bytes, 0u);
}

std::vector<float> QuantizedMatrix::set_codebook(std::size_t index, std::span<const float> values) {
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

float QuantizedMatrix::set_zero(std::size_t index, float value) {
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

void QuantizedMatrix::set_input_rotation(const HadamardRotation& rotation) {
  if (rotation.size == 0 || cols_ % rotation.size != 0 || !hadamard_size_supported(rotation.size))
    throw invalid_argument("input rotation of size " + std::to_string(rotation.size) +
                           " for a matrix of " + std::to_string(cols_) + " columns");
  rotation_ = rotation;
}

void QuantizedMatrix::rotate_input(std::span<float> x) const {
  if (!rotation_) return;
  if (x.size() != cols_)
    throw invalid_argument("rotate_input: " + std::to_string(x.size()) + " values for " +
                           std::to_string(cols_) + " columns");
  for (std::size_t start = 0; start < cols_; start += rotation_->size)
    rotation_->apply(x.subspan(start, rotation_->size));
}

std::vector<float> QuantizedMatrix::dequantize_unrotated() const {
  std::vector<float> out = dequantize();
  if (!rotation_) return out;
#pragma omp parallel for schedule(static) if (detail::worth_threads(rows_ * cols_))
  for (std::ptrdiff_t r = 0; r < static_cast<std::ptrdiff_t>(rows_); ++r)
    for (std::size_t start = 0; start < cols_; start += rotation_->size)
      rotation_->apply_transpose(std::span<float>(
          out.data() + static_cast<std::size_t>(r) * cols_ + start, rotation_->size));
  return out;
}

void QuantizedMatrix::dequantize(MatrixView<float> out) const {
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
        for (std::size_t col = start; col < end; ++col) out_row[col] = (values[codes[col]] - z) * s;
      }
    }
  }
}

std::vector<float> QuantizedMatrix::dequantize() const {
  std::vector<float> out(rows_ * cols_);
  dequantize(MatrixView<float>(out.data(), rows_, cols_));
  return out;
}

void QuantizedMatrix::dequantize_blocks(MatrixView<float> out) const {
  ggml::visit_block_type(*scheme_.ggml_type, [&]<class Block>(std::type_identity<Block>) {
    dequantize_block_rows<Block>(*this, out);
  });
}

// Codebook and HIGGS elements: each code looks up vector_dim values in the table that serves them
// (the stored codebook of its group, or the one fixed HIGGS grid).
void QuantizedMatrix::dequantize_table_lookup(MatrixView<float> out) const {
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

}  // namespace lowbit
