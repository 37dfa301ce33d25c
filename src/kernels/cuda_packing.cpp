// Repacking a QuantizedMatrix into the CUDA kernels' layout (kernels/cuda/packed_layout.hpp), and
// reading it back. Plain C++, compiled whether or not lowbit is built with CUDA, so that the layout
// is tested on machines without a GPU.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../../kernels/cuda/packed_layout.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/intn.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit::kernels::cuda {

namespace {

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

/// Whether every row's scale index stays the same over each run of `span` columns (the last run
/// cut short): true of any granularity whose parameters change only at multiples of `span`.
bool scales_constant_over(const QuantizedMatrix& q, std::size_t span) {
  for (std::size_t r = 0; r < q.rows(); ++r)
    for (std::size_t start = 0; start < q.cols(); start += span) {
      const std::size_t index = q.scale_index(r, start);
      for (std::size_t c = start + 1; c < std::min(q.cols(), start + span); ++c)
        if (q.scale_index(r, c) != index) return false;
    }
  return true;
}

/// Columns sharing one scale (a multiple of 16), 0 for a whole row, nullopt when the scales change
/// inside a 16-column tile. Granularities not named here (2-D blocks, ...) are measured through
/// scale_index, so that any of them whose scales change only at multiples of 16 columns runs.
std::optional<std::size_t> scale_group(const QuantizedMatrix& q) {
  const Granularity& g = q.scheme().granularity;
  switch (g.kind) {
    case Granularity::Kind::tensor:
    case Granularity::Kind::channel:
    case Granularity::Kind::none:
      return 0;
    case Granularity::Kind::group:
      if (g.group_size % tile_cols != 0) return std::nullopt;
      return g.group_size;
    default:
      break;
  }
  for (const std::size_t span : {std::size_t{128}, std::size_t{64}, std::size_t{32}, tile_cols})
    if (scales_constant_over(q, span)) return span;
  return std::nullopt;
}

bool has_nan_e4m3(const QuantizedMatrix& q) {
  for (std::size_t r = 0; r < q.rows(); ++r)
    for (std::size_t c = 0; c < q.cols(); ++c)
      if ((q.code(r, c) & 0x7F) == 0x7F) return true;
  return false;
}

}  // namespace

std::optional<Decode> decode_of(const QuantizedMatrix& q) {
  const Scheme& scheme = q.scheme();
  if (scheme.has_block_layout() || scheme.vector_dim != 1) return std::nullopt;
  switch (scheme.element) {
    case ElementFormat::int_signed:
    case ElementFormat::int_unsigned:
      return scheme.bits <= 4 ? Decode::int4 : Decode::int8;
    case ElementFormat::nf4:
    case ElementFormat::fp4_e2m1:
      return Decode::lut4;
    case ElementFormat::codebook:  // one table for the whole matrix
      if (scheme.bits > 4 || q.codebook_grid().size() != 1) return std::nullopt;
      return Decode::lut4;
    case ElementFormat::fp8_e4m3:
      return Decode::e4m3;
    default:
      return std::nullopt;
  }
}

std::string unpackable_reason(const QuantizedMatrix& q) {
  const Scheme& scheme = q.scheme();
  if (!decode_of(q))
    return "the CUDA kernels run integer (1..8 bits), NF4, FP4 E2M1, FP8 E4M3 and 4-bit scalar "
           "per-tensor codebook weights, not " +
           scheme.to_string();
  if (!scale_group(q))
    return "the CUDA kernels need scales that change only at multiples of 16 columns, not " +
           scheme.to_string();
  if (scheme.element == ElementFormat::fp8_e4m3 && has_nan_e4m3(q))
    return "the matrix holds E4M3 NaN codes, which the CUDA kernels do not decode";
  return {};
}

bool scheme_packable(const Scheme& scheme) {
  // Two rows tell a per-channel codebook from a per-tensor one; 512 columns hold whole blocks of
  // every block layout and several groups of the usual sizes.
  try {
    return unpackable_reason(QuantizedMatrix(scheme, 2, 512)).empty();
  } catch (const invalid_argument&) {
    return false;
  }
}

PackedMatrix pack(const QuantizedMatrix& q) {
  if (const std::string reason = unpackable_reason(q); !reason.empty())
    throw unsupported("cuda prepare: " + reason, {{}, {}, {q.rows(), q.cols()}});
  const Scheme& scheme = q.scheme();
  PackedMatrix p;
  p.decode = *decode_of(q);
  p.rows = q.rows();
  p.cols = q.cols();
  p.padded_rows = round_up(p.rows, tile_rows);
  p.padded_cols = round_up(p.cols, col_align);
  const std::size_t group = *scale_group(q);
  p.group = group == 0 ? p.padded_cols : group;
  p.groups = p.padded_cols == 0 ? 0 : (p.padded_cols + p.group - 1) / p.group;
  p.has_zero = scheme.has_zero_point();

  // Integer codes become unsigned levels, a signed v stored as v + 2^(bits-1): the same offset on
  // every zero point, a constant when the Scheme has none.
  const bool is_signed = scheme.element == ElementFormat::int_signed;
  const int offset = is_signed ? 1 << (scheme.bits - 1) : 0;
  p.level_offset = static_cast<float>(offset);
  auto stored_code = [&](std::uint8_t code) -> std::uint32_t {
    if (!is_signed) return code;
    return static_cast<std::uint32_t>(from_code(code, scheme.bits, true) + offset);
  };

  if (p.decode == Decode::lut4) {
    p.table.assign(16, 0.0f);
    if (scheme.is_codebook()) {
      for (std::size_t e = 0; e < scheme.codebook_entries(); ++e)
        p.table[e] = q.codebook_value(0, e, 0);
    } else {
      const std::vector<float> values = element_values(scheme);
      std::copy(values.begin(), values.end(), p.table.begin());
    }
  }

  const int bits = code_bits(p.decode);
  p.codes.assign(p.row_tiles() * p.chunks() * warp_lanes * chunk_words, 0u);
  for (std::size_t r = 0; r < p.rows; ++r)
    for (std::size_t c = 0; c < p.cols; ++c) {
      const FragmentSlot at = fragment_slot(static_cast<unsigned>(r % tile_rows),
                                            static_cast<unsigned>(c % tile_cols), bits);
      const std::uint32_t code = stored_code(q.code(r, c));
      const unsigned per_word = 32u / static_cast<unsigned>(bits);
      const std::size_t word =
          p.word_index(r / tile_rows, c / tile_cols, at.lane, at.slot / per_word);
      p.codes[word] |= code << ((at.slot % per_word) * static_cast<unsigned>(bits));
    }

  // E4M3 levels are 2^-8 of the code's value: the scales carry the 2^8.
  const float decode_scale = p.decode == Decode::e4m3 ? 256.0f : 1.0f;
  p.scales.assign(p.groups * p.padded_rows, 0.0f);
  if (p.has_zero) p.zeros.assign(p.groups * p.padded_rows, 0.0f);
  for (std::size_t g = 0; g < p.groups; ++g)
    for (std::size_t r = 0; r < p.rows; ++r) {
      // A group past the last column (padding) takes the last column's parameters.
      const std::size_t first = std::min(g * p.group, p.cols == 0 ? 0 : p.cols - 1);
      const std::size_t index = q.scale_index(r, first);
      // As QuantizedMatrix::dequantize: the scale times the tensor scale, in fp32.
      const float scale = scheme.tensor_scale ? q.scale(index) * q.tensor_scale() : q.scale(index);
      p.scales[g * p.padded_rows + r] = scale * decode_scale;
      if (p.has_zero) p.zeros[g * p.padded_rows + r] = q.zero(index) + static_cast<float>(offset);
    }
  return p;
}

float level(const PackedMatrix& p, std::size_t row, std::size_t col) {
  const int bits = code_bits(p.decode);
  const FragmentSlot at = fragment_slot(static_cast<unsigned>(row % tile_rows),
                                        static_cast<unsigned>(col % tile_cols), bits);
  const unsigned per_word = 32u / static_cast<unsigned>(bits);
  const std::uint32_t word =
      p.codes[p.word_index(row / tile_rows, col / tile_cols, at.lane, at.slot / per_word)];
  const auto code =
      static_cast<std::uint8_t>((word >> ((at.slot % per_word) * bits)) & ((1u << bits) - 1u));
  switch (p.decode) {
    case Decode::int4:
    case Decode::int8:
      return static_cast<float>(code);
    case Decode::lut4:
      return p.table[code];
    case Decode::e4m3:
      return float8_e4m3::from_bits(code).to_float() * (1.0f / 256.0f);
  }
  return 0.0f;
}

std::vector<float> unpack(const PackedMatrix& p) {
  std::vector<float> out(p.rows * p.cols);
  for (std::size_t r = 0; r < p.rows; ++r)
    for (std::size_t c = 0; c < p.cols; ++c) {
      const std::size_t g = c / p.group;
      const float s = p.scales[g * p.padded_rows + r];
      const float z = p.has_zero ? p.zeros[g * p.padded_rows + r] : p.level_offset;
      out[r * p.cols + c] = (level(p, r, c) - z) * s;
    }
  return out;
}

}  // namespace lowbit::kernels::cuda
