// Scheme's checks, size accounting and description (scheme.hpp).
#include "lowbit/scheme.hpp"

#include <cmath>

namespace lowbit {

void Scheme::validate() const {
  auto fail = [this](const std::string& reason) {
    throw invalid_argument("scheme " + to_string() + ": " + reason);
  };
  if (has_block_layout()) {
    if (find_ggml_traits(*ggml_type) == nullptr) fail("unknown ggml block type");
    if (*this != ggml_blocks(*ggml_type))
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
    if (vector_dim == 1 ? (bits < 1 || bits > 8) : vector_dim == 2 ? (bits < 2 || bits > 8) : true)
      fail("HIGGS grids have 2 to 256 points in 1 dimension, or 4 to 256 in 2");
  } else if (bits != fixed_element_bits(element)) {
    fail(std::string(lowbit::to_string(element)) + " elements have " +
         std::to_string(fixed_element_bits(element)) + " bits");
  }
  for (const Granularity* g : {&granularity, &codebook_granularity})
    if (g->kind == Granularity::Kind::group || g->kind == Granularity::Kind::block) {
      if (g->group_size == 0) fail("group size must be at least 1");
      if (g->group_size > max_group_size)
        fail("group size must be at most 2^32 (" + std::to_string(max_group_size) + ")");
    }
  if (granularity.kind == Granularity::Kind::block) {
    // Every quantizer of another format computes its parameters one row at a time.
    if (element != ElementFormat::fp8_e4m3 && element != ElementFormat::fp8_e5m2)
      fail("2-D block scales are for FP8 elements (quant/fp8.hpp)");
    if (granularity.block_rows == 0) fail("blocks need at least 1 row");
    if (granularity.block_rows > max_group_size) fail("blocks must have at most 2^32 rows");
    if (scale_format == ScalarFormat::e8m0 || scale_format == ScalarFormat::e4m3)
      fail("2-D block scales are stored in f32, f16 or bf16");
  }
  if (codebook_granularity.kind == Granularity::Kind::block)
    fail("codebooks are per tensor, channel or group, not per 2-D block");
  if (!has_scales() && !is_codebook()) fail("only codebook elements can go without scales");
  if (vector_dim == 0) fail("vector_dim must be at least 1");
  if (vector_dim > max_vector_dim)
    fail("vector_dim must be at most " + std::to_string(max_vector_dim));
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
    if (double_quant_block > max_group_size)
      fail("double quantization blocks must hold at most 2^32 scales");
    if (scale_format != ScalarFormat::f32)
      fail("double quantization takes f32 scales (the format they are computed in)");
  }
  if (pack_order == PackOrder::awq_interleaved && bits != 4)
    fail("the AWQ interleaved packing order is defined for 4-bit codes only");
}

StorageSizes Scheme::storage(std::size_t rows, std::size_t cols) const {
  validate();
  using detail::CheckedSize;
  const ErrorContext shape{{}, {}, {rows, cols}};
  // Each size is checked as a byte count that could be allocated (at most PTRDIFF_MAX).
  const auto check = [&](CheckedSize count, std::size_t element_bytes, const char* what) {
    detail::checked_bytes(count, element_bytes)
        .value(std::string(what) + " of a matrix of scheme " + to_string(), shape);
    return *count.get();
  };
  check(CheckedSize(rows) * cols, sizeof(float), "the dequantized floats");
  StorageSizes sizes;
  if (has_block_layout()) {
    sizes.bytes_per_row =
        check(CheckedSize(detail::ceil_div(cols, block_weights())) * block_bytes(), 1,
              "a row of ggml blocks");
    sizes.block_bytes = check(CheckedSize(rows) * sizes.bytes_per_row, 1, "the ggml blocks");
    return sizes;
  }
  sizes.words_per_row = check(checked_packed_words(codes_per_row(cols), bits),
                              sizeof(std::uint32_t), "a row of packed codes");
  sizes.code_words =
      check(CheckedSize(rows) * sizes.words_per_row, sizeof(std::uint32_t), "the packed codes");
  // A grid has at most one entry per weight (or one, for a tensor), so its size fits once
  // rows * cols does.
  sizes.scale_grid = scale_grid(rows, cols);
  const std::size_t groups = sizes.scale_grid.size();
  sizes.scale_bytes = check(CheckedSize(groups) * static_cast<std::size_t>(stored_scale_bits() / 8),
                            1, "the scales");
  if (double_quant_block > 0)
    sizes.scale_absmax_count = detail::ceil_div(groups, double_quant_block);
  if (has_zero_point()) {
    if (zero_format == ZeroFormat::code) {
      sizes.zero_words_per_row = check(checked_packed_words(sizes.scale_grid.cols, bits),
                                       sizeof(std::uint32_t), "a row of packed zero points");
      sizes.zero_code_words = check(CheckedSize(sizes.scale_grid.rows) * sizes.zero_words_per_row,
                                    sizeof(std::uint32_t), "the packed zero points");
    } else {
      sizes.zero_bytes = check(CheckedSize(groups) * scalar_bytes(zero_scalar_format(zero_format)),
                               1, "the zero points");
    }
  }
  sizes.codebook_grid = codebook_grid(rows, cols);
  if (is_codebook())
    sizes.codebook_bytes = check(CheckedSize(sizes.codebook_grid.size()) * codebook_entries() *
                                     vector_dim * scalar_bytes(codebook_format),
                                 1, "the codebooks");
  return sizes;
}

double Scheme::bits_per_weight(std::size_t rows, std::size_t cols) const noexcept {
  if (rows == 0 || cols == 0) return 0.0;
  if (has_block_layout()) {  // whole blocks: 18, 34 or 144 bytes per 32, 32 or 256 weights
    const std::size_t blocks = detail::ceil_div(cols, block_weights());
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

std::string Scheme::to_string() const {
  if (has_block_layout()) return ggml_traits(*ggml_type).layout_name;
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
        text.append(std::to_string(g.block_rows)).append("x").append(std::to_string(g.group_size));
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

}  // namespace lowbit
