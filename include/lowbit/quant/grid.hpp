// The grid a quantizer rounds to, as one interface: what RTN, GPTQ, AWQ and HQQ need from a
// format, whichever format it is. A grid
//   - prepares what a whole matrix shares (NVFP4's tensor scale, k-means codebooks), once;
//   - fits one group's parameters to the group's values;
//   - stores them into a QuantizedMatrix (rounded to the Scheme's storage formats);
//   - quantizes a group (a run of one row) or a column (one weight of each row, each row with
//     its own group's parameters: GPTQ's order) to codes and the values they dequantize to;
//   - fake-quantizes: the dequantized values alone (AWQ's searches).
// make_grid gives lowbit's grids (linear integers, NF4, FP4/FP8 with MX, NVFP4 or float scales,
// scalar codebooks); implement Grid for another format and every algorithm taking one runs on it.
//
// The arithmetic of each grid is its quantizer's (quant/linear.hpp, nf4.hpp, microscaling.hpp,
// fp8.hpp, codebook.hpp): RTN over make_grid(scheme) (algo/rtn.hpp) gives those quantizers' codes,
// scales and zeros, which the tests check bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/clipping.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

/// One group's parameters, in the grid's storage formats: a value dequantizes to
/// (element value - zero) * scale (times the matrix's tensor scale, where the Scheme has one).
struct GroupParams {
  float scale = 0.0f;
  float zero = 0.0f;
};

class Grid {
 public:
  virtual ~Grid() = default;

  virtual const Scheme& scheme() const noexcept = 0;

  /// Whether prepare() fixes something for the whole matrix (a tensor scale, codebooks): then
  /// fit and quantize read it from the q that prepare() filled, so every group must be quantized
  /// against a q prepared on its own matrix. Grids without such state read only q's Scheme.
  virtual bool has_matrix_state() const noexcept { return false; }

  /// Called first, with the weights about to be quantized: whatever the grid fixes for the whole
  /// matrix goes into q here. The default fixes nothing.
  virtual void prepare(MatrixView<const float> weights, QuantizedMatrix& q) const;

  /// The parameters of one group from its values, already rounded to the storage formats. An empty
  /// group gets the parameters of an all-zero one.
  virtual GroupParams fit(std::span<const float> values, const QuantizedMatrix& q) const = 0;

  /// Writes p into scale-grid entry `index` of q and returns the parameters as q now holds them
  /// (equal to p for parameters from fit; a fractional zero point, as HQQ's, is rounded to the
  /// zero format). Quantize against what this returns.
  virtual GroupParams store(QuantizedMatrix& q, std::size_t index, const GroupParams& p) const = 0;

  /// Quantizes `values`, the weights of row `row` from column `column` on (original positions,
  /// all in one group), with that group's parameters p: their codes into `codes` and the values
  /// those dequantize to (what QuantizedMatrix::dequantize gives) into `dequantized`. Either span
  /// may be empty, to skip it; a non-empty one has values.size() elements.
  virtual void quantize_group(const QuantizedMatrix& q, std::size_t row, std::size_t column,
                              std::span<const float> values, const GroupParams& p,
                              std::span<std::uint8_t> codes,
                              std::span<float> dequantized) const = 0;

  /// Quantizes w[r], the weight of row r in column `column`, with params[r], for r < rows: GPTQ's
  /// order. The default runs quantize_group on each weight.
  virtual void quantize_column(const QuantizedMatrix& q, std::size_t column, const float* w,
                               const GroupParams* params, std::size_t rows, std::uint8_t* codes,
                               float* dequantized) const;

  /// The values `values` dequantize to once quantized with p, into `out` (values.size()).
  void fake_quantize(const QuantizedMatrix& q, std::size_t row, std::size_t column,
                     std::span<const float> values, const GroupParams& p,
                     std::span<float> out) const {
    quantize_group(q, row, column, values, p, {}, out);
  }

 protected:
  Grid() = default;
  Grid(const Grid&) = default;
  Grid& operator=(const Grid&) = default;
};

struct GridOptions {
  /// Linear integer grids: search each group's clipping range (quant/clipping.hpp) in fit, as
  /// quantize_linear does. Other grids fit absmax scales and refuse it.
  ClipSearch clip = ClipSearch::none();
};

/// The grid of a Scheme:
///   - integer elements: lowbit's linear integer grid (quant/linear.hpp: symmetric, or with an
///     integer zero point; scales rounded up to their format), with the clip search of `options`;
///   - nf4: NF4 with an absmax scale per group (bitsandbytes' rounding, see quant/nf4.hpp), the
///     scale rounded up to the Scheme's scale format (f32, f16 or bf16; no double quantization);
///   - fp4_e2m1, fp8_e4m3, fp8_e5m2: minifloat elements with a scale per group, the scales of the
///     microscaling quantizers (quant/microscaling.hpp): e8m0 scales as MX,
///     2^(floor(log2 amax) - emax_elem); e4m3 scales by NVFP4's rule,
///     e4m3(clamp(amax / max_elem / tensor_scale, 2^-6, 448)), with the tensor scale
///     amax(|W|) / (max_elem * 448) fixed by prepare when the Scheme has one (1 otherwise);
///     f32 / f16 / bf16 scales amax / max_elem rounded up to the format, 1 for an all-zero group
///     (quant/fp8.hpp). Elements are x / scale rounded to nearest even, saturating at +-max_elem;
///   - scalar codebooks (vector_dim 1): codebooks learned by k-means on the weights in prepare
///     (quantize_codebook with default options), one per tensor, channel or group as the Scheme
///     says, with an absmax scale per group when the Scheme has scales; each weight gets the
///     nearest entry of its codebook. Such a grid keeps the decoded codebooks of the last
///     prepare(): it serves one matrix at a time.
/// Throws unsupported otherwise (HIGGS, vector codebooks, double quantization, ggml blocks, tensor
/// scales other than NVFP4's, a clip search on a grid other than the linear one) and for
/// element/scale-format pairs those grids cannot store; invalid_argument for an invalid Scheme.
std::unique_ptr<Grid> make_grid(const Scheme& scheme, const GridOptions& options = {});

}  // namespace lowbit
