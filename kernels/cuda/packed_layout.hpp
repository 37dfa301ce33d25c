// The CUDA backend's weight layout: made once on the host at prepare time
// (src/kernels/cuda_packing.cpp, plain C++ so that it is tested without a GPU), copied to the
// device and read by the kernels in kernels/cuda/. Internal to lowbit::cuda: no public header
// includes it.
//
// Codes. The matrix is cut into tiles of 16 rows x 16 columns (a k-tile), the A operand of one
// mma.sync.m16n8k16 with the weights as A (rows = output channels) and the activations as B. Each
// of a warp's 32 lanes holds the 8 weights of a tile that the mma fragment gives it, lane
// l = 4 g + t (g = l / 4, t = l % 4): rows g and g + 8, columns 2t, 2t + 1, 2t + 8, 2t + 9. A lane
// reads its weights of a chunk, 4 k-tiles (4-bit codes) or 2 k-tiles (8-bit codes), with one
// 16-byte load, and a warp's 32 loads are 512 consecutive bytes:
//   word (((row_tile * chunks + chunk) * 32 + lane) * 4 + j)   (word_index below)
//   4-bit: word j is k-tile 4 chunk + j; nibble i of it is the weight at row g + 8 (i & 1),
//          column 2t + 8 ((i >> 1) & 1) + (i >> 2): nibbles i and i + 4 are the two halves of
//          A-fragment register i, so one shift and mask per register isolates them.
//   8-bit: words j = 2h and 2h + 1 are k-tile 2 chunk + h; byte b of the 8 is the weight at row
//          g + 8 ((b >> 1) & 1), column 2t + 8 (b >> 2) + (b & 1): bytes 2i, 2i + 1 hold A-fragment
//          register i.
// Rows are padded with zero codes to whole tiles, columns to multiples of 64; the activations are
// padded with zeros alike (kernels/cuda/stage.cu), so that padding adds nothing.
//
// What a code means (Decode), as a level v:
//   int4, int8  the integer level u (a signed code v stored as u = v + 2^(bits-1), as the CPU
//               kernels do; integers of 1..4 bits use the 4-bit slots, 5..8 bits the 8-bit ones);
//   lut4        table[code], one 16-entry table per matrix (NF4, FP4 E2M1, a scalar codebook);
//   e4m3        the FP8 E4M3 code read as 2^-8 times its value (its bits moved into an FP16; the
//               scale carries the 2^8). NaN codes (0x7F, 0xFF) have no such reading: the matrix
//               then runs on the reference kernels.
// Per (group, row), in fp32, [groups][padded_rows] so that the 8 lanes of a fragment column read
// consecutive rows: the scale s (the Scheme's scale times the tensor scale, times 2^8 for e4m3)
// and, when the Scheme has a zero point, the zero z in levels (zero + 2^(bits-1) for signed codes
// is the constant `level_offset` instead). A weight is (v - z) s, which in fp32 is bit for bit what
// QuantizedMatrix::dequantize computes: unpack() below checks the layout against it.
//
// Act-order: lowbit's GPTQ stores act-order results in the original column order with groups of
// original positions (static groups; a QuantizedMatrix has no g_idx), so nothing is reordered here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/config.hpp"

namespace lowbit {
class QuantizedMatrix;
struct Scheme;
}  // namespace lowbit

namespace lowbit::kernels::cuda {

inline constexpr std::size_t tile_rows = 16;  // rows of an mma A fragment
inline constexpr std::size_t tile_cols = 16;  // columns of a k-tile
inline constexpr std::size_t col_align = 64;  // padded_cols is a multiple of this
inline constexpr std::size_t warp_lanes = 32;
inline constexpr std::size_t chunk_words = 4;  // 32-bit words per lane per chunk (16 bytes)

enum class Decode : std::uint8_t { int4, int8, lut4, e4m3 };

LOWBIT_HOST_DEVICE constexpr int code_bits(Decode decode) noexcept {
  return decode == Decode::int8 || decode == Decode::e4m3 ? 8 : 4;
}
/// 32-bit words of one lane per k-tile (1 or 2), and k-tiles per chunk (4 or 2).
LOWBIT_HOST_DEVICE constexpr unsigned tile_words(Decode decode) noexcept {
  return code_bits(decode) == 8 ? 2u : 1u;
}
LOWBIT_HOST_DEVICE constexpr unsigned chunk_tiles(Decode decode) noexcept {
  return 4u / tile_words(decode);
}

/// Where weight (row dr, column dc) of a 16 x 16 k-tile lives: its lane, and its nibble (4-bit) or
/// byte (8-bit, 0..7 over the lane's two words) within the lane's words of that k-tile.
struct FragmentSlot {
  unsigned lane;
  unsigned slot;
};
LOWBIT_HOST_DEVICE constexpr FragmentSlot fragment_slot(unsigned dr, unsigned dc, int bits) {
  const unsigned lane = (dr % 8) * 4 + (dc % 8) / 2;
  const unsigned high_row = dr / 8, high_col = (dc / 8) % 2, odd = dc % 2;
  const unsigned slot =
      bits == 4 ? high_row | high_col << 1 | odd << 2 : high_col << 2 | high_row << 1 | odd;
  return {lane, slot};
}

/// The activations are staged in the same fragment order: within each 16-column tile, lane t's
/// columns 2t, 2t + 1, 2t + 8, 2t + 9 are consecutive (one 8-byte load, and exactly the two B
/// registers of the mma). Position of column dc of a tile.
LOWBIT_HOST_DEVICE constexpr unsigned staged_position(unsigned dc) {
  return ((dc % 8) / 2) * 4 + (dc / 8) * 2 + dc % 2;
}

/// A QuantizedMatrix in this layout, on the host.
struct PackedMatrix {
  Decode decode = Decode::int4;
  std::size_t rows = 0, cols = 0;
  std::size_t padded_rows = 0;  // whole tiles of 16
  std::size_t padded_cols = 0;  // a multiple of 64: whole chunks
  std::size_t group = 0;        // columns sharing a scale: a multiple of 16 (or padded_cols)
  std::size_t groups = 0;       // per row, over padded_cols
  bool has_zero = false;        // zeros[] holds a zero per (group, row); else level_offset
  float level_offset = 0.0f;    // the zero of every group when !has_zero
  std::vector<std::uint32_t> codes;
  std::vector<float> scales;  // [groups][padded_rows]
  std::vector<float> zeros;   // [groups][padded_rows] when has_zero
  std::vector<float> table;   // lut4: 16 values

  std::size_t row_tiles() const noexcept { return padded_rows / tile_rows; }
  std::size_t k_tiles() const noexcept { return padded_cols / tile_cols; }
  std::size_t chunks() const noexcept { return k_tiles() / chunk_tiles(decode); }
  /// The word holding word w (0..tile_words - 1) of lane `lane`'s weights of k-tile kt.
  std::size_t word_index(std::size_t row_tile, std::size_t kt, std::size_t lane,
                         std::size_t w) const noexcept {
    const std::size_t per_chunk = chunk_tiles(decode);
    const std::size_t j = (kt % per_chunk) * tile_words(decode) + w;
    return ((row_tile * chunks() + kt / per_chunk) * warp_lanes + lane) * chunk_words + j;
  }
  /// Bytes a gemm call reads: codes, scales, zeros, table.
  std::size_t bytes() const noexcept {
    return codes.size() * sizeof(std::uint32_t) +
           (scales.size() + zeros.size() + table.size()) * sizeof(float);
  }
};

/// Why the CUDA kernels cannot run q (empty when they can): block layouts, vector or per-row
/// codebooks, formats without a decode, scales that change inside a 16-column tile, E4M3 NaN codes.
std::string unpackable_reason(const QuantizedMatrix& q);

/// The decode of q's Scheme, when there is one (the Scheme alone; see unpackable_reason for the
/// rest).
std::optional<Decode> decode_of(const QuantizedMatrix& q);

/// Whether matrices of this Scheme can be packed (NaN codes aside), judged on a small probe
/// matrix: what the backend's supports() says.
bool scheme_packable(const Scheme& scheme);

/// Repacks q; throws unsupported with unpackable_reason when it cannot.
PackedMatrix pack(const QuantizedMatrix& q);

/// Level v of weight (row, col) (col < padded_cols, row < padded_rows), read back from the codes.
float level(const PackedMatrix& p, std::size_t row, std::size_t col);

/// The [rows, cols] weights the layout stands for, (v - z) s in fp32: the host's reading of what
/// the kernels compute (they do it in fp32 too, but with the levels in the activations' type).
std::vector<float> unpack(const PackedMatrix& p);

}  // namespace lowbit::kernels::cuda
