// lowbit's grids (quant/grid.hpp): the linear integer grid, NF4, minifloats with MX / NVFP4 /
// float scales, and scalar codebooks. Each implements quantize_group and quantize_column through
// one per-weight function, so a group and a column round alike.
#include "lowbit/quant/grid.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/format/nf4.hpp"
#include "lowbit/format/scalar_format.hpp"
#include "lowbit/quant/codebook.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quant/microscaling.hpp"

namespace lowbit {

void Grid::prepare(MatrixView<const float> weights, QuantizedMatrix& q) const {
  (void)weights;
  (void)q;
}

void Grid::quantize_column(const QuantizedMatrix& q, std::size_t column, const float* w,
                           const GroupParams* params, std::size_t rows, std::uint8_t* codes,
                           float* dequantized) const {
  for (std::size_t r = 0; r < rows; ++r)
    quantize_group(q, r, column, std::span<const float>(w + r, 1), params[r],
                   std::span<std::uint8_t>(codes + r, 1), std::span<float>(dequantized + r, 1));
}

namespace {

float absmax_of(std::span<const float> values) noexcept {
  float absmax = 0.0f;
  for (float x : values) absmax = std::max(absmax, std::abs(x));
  return absmax;
}

/// The shared body of a grid whose weights round one at a time: Derived::quantize_one(q, row,
/// column, x, p) returns {code, dequantized value}.
template <class Derived>
class ElementwiseGrid : public Grid {
 public:
  void quantize_group(const QuantizedMatrix& q, std::size_t row, std::size_t column,
                      std::span<const float> values, const GroupParams& p,
                      std::span<std::uint8_t> codes, std::span<float> dequantized) const override {
    const auto& self = static_cast<const Derived&>(*this);
    for (std::size_t i = 0; i < values.size(); ++i) {
      const auto [code, value] = self.quantize_one(q, row, column + i, values[i], p);
      if (!codes.empty()) codes[i] = code;
      if (!dequantized.empty()) dequantized[i] = value;
    }
  }
  void quantize_column(const QuantizedMatrix& q, std::size_t column, const float* w,
                       const GroupParams* params, std::size_t rows, std::uint8_t* codes,
                       float* dequantized) const override {
    const auto& self = static_cast<const Derived&>(*this);
    for (std::size_t r = 0; r < rows; ++r) {
      const auto [code, value] = self.quantize_one(q, r, column, w[r], params[r]);
      codes[r] = code;
      dequantized[r] = value;
    }
  }
};

struct Quantized {
  std::uint8_t code;
  float value;
};

/// quant/linear.hpp's LinearGrid, with its clip search in fit.
class LinearIntegerGrid final : public Grid {
 public:
  LinearIntegerGrid(const Scheme& scheme, const ClipSearch& clip) : grid_(scheme), clip_(clip) {}
  const Scheme& scheme() const noexcept override { return grid_.scheme(); }
  GroupParams fit(std::span<const float> values, const QuantizedMatrix&) const override {
    if (values.empty()) return to_group(grid_.params(ValueRange{0.0f, 0.0f}));
    return to_group(grid_.choose_params(values, clip_));
  }
  GroupParams store(QuantizedMatrix& q, std::size_t index, const GroupParams& p) const override {
    GroupParams stored{q.set_scale(index, p.scale), 0.0f};
    if (grid_.scheme().has_zero_point()) stored.zero = q.set_zero(index, p.zero);
    return stored;
  }
  void quantize_group(const QuantizedMatrix&, std::size_t, std::size_t,
                      std::span<const float> values, const GroupParams& p,
                      std::span<std::uint8_t> codes, std::span<float> dequantized) const override {
    const LinearParams linear{p.scale, p.zero};
    if (dequantized.empty()) {
      if (codes.empty()) return;  // RTN's case: the vectorized loop quantize_linear runs
      grid_.quantize_codes(values, linear, codes);
      return;
    }
    for (std::size_t i = 0; i < values.size(); ++i) {
      const int level = grid_.quantize(values[i], linear);
      if (!codes.empty()) codes[i] = grid_.code(level);
      dequantized[i] = grid_.dequantize(level, linear);
    }
  }
  void quantize_column(const QuantizedMatrix&, std::size_t, const float* w,
                       const GroupParams* params, std::size_t rows, std::uint8_t* codes,
                       float* dequantized) const override {
    for (std::size_t r = 0; r < rows; ++r) {
      const LinearParams p{params[r].scale, params[r].zero};
      const int level = grid_.quantize(w[r], p);
      codes[r] = grid_.code(level);
      dequantized[r] = grid_.dequantize(level, p);
    }
  }

 private:
  static GroupParams to_group(const LinearParams& p) noexcept { return {p.scale, p.zero}; }

  LinearGrid grid_;
  ClipSearch clip_;
};

/// NF4 with an absmax scale per group (bitsandbytes' rounding, see quant/nf4.hpp), the scale
/// rounded up to the Scheme's scale format.
class Nf4Grid final : public ElementwiseGrid<Nf4Grid> {
 public:
  explicit Nf4Grid(const Scheme& scheme) : scheme_(scheme) {
    if (scheme_.element != ElementFormat::nf4 || scheme_.double_quant_block > 0 ||
        scheme_.tensor_scale || !scheme_.has_scales())
      throw unsupported("NF4 grid: needs nf4 elements with plain scales, not " +
                        scheme_.to_string());
    if (scheme_.scale_format == ScalarFormat::e8m0 || scheme_.scale_format == ScalarFormat::e4m3)
      throw unsupported("NF4 grid: NF4 scales are stored as f32, f16 or bf16");
  }
  const Scheme& scheme() const noexcept override { return scheme_; }
  GroupParams fit(std::span<const float> values, const QuantizedMatrix&) const override {
    return {detail::storable_scale(scheme_.scale_format, absmax_of(values)), 0.0f};
  }
  GroupParams store(QuantizedMatrix& q, std::size_t index, const GroupParams& p) const override {
    return {q.set_scale(index, p.scale), 0.0f};
  }
  Quantized quantize_one(const QuantizedMatrix&, std::size_t, std::size_t, float w,
                         const GroupParams& p) const noexcept {
    const float s = p.scale;
    if (!(s > 0.0f)) return {7, 0.0f};  // code 7 is the exact 0
    const float inverse = 1.0f / s;
    const float x = std::isinf(inverse) ? w / s : w * inverse;
    const nf4 code = nf4::encode_nearest(x);
    return {code.code, code.to_float() * s};
  }

 private:
  Scheme scheme_;
};

/// Minifloat elements (FP4 E2M1, FP8 E4M3 / E5M2) with a scale per group; see make_grid.
class MinifloatGrid final : public ElementwiseGrid<MinifloatGrid> {
 public:
  explicit MinifloatGrid(const Scheme& scheme) : scheme_(scheme) {
    const ElementFormat e = scheme_.element;
    if ((e != ElementFormat::fp4_e2m1 && e != ElementFormat::fp8_e4m3 &&
         e != ElementFormat::fp8_e5m2) ||
        !scheme_.has_scales() || scheme_.double_quant_block > 0)
      throw unsupported("minifloat grid: needs e2m1, e4m3 or e5m2 elements with scales, not " +
                        scheme_.to_string());
    if (scheme_.tensor_scale && scheme_.scale_format != ScalarFormat::e4m3)
      throw unsupported("minifloat grid: a tensor scale goes with e4m3 block scales, not " +
                        scheme_.to_string());
    for (float v : element_values_)
      if (std::isfinite(v)) max_element_ = std::max(max_element_, v);
    emax_ = detail::floor_log2_abs(max_element_);
  }
  const Scheme& scheme() const noexcept override { return scheme_; }
  bool has_matrix_state() const noexcept override { return scheme_.tensor_scale; }
  void prepare(MatrixView<const float> weights, QuantizedMatrix& q) const override {
    if (!scheme_.tensor_scale) return;
    float amax = 0.0f;
    for (std::size_t r = 0; r < weights.rows; ++r) amax = std::max(amax, absmax_of(weights.row(r)));
    float scale = amax / (max_element_ * 448.0f);
    if (amax == 0.0f) scale = 1.0f;
    q.set_tensor_scale(scale > 0.0f ? scale : 0x1p-149f);
  }
  GroupParams fit(std::span<const float> values, const QuantizedMatrix& q) const override {
    const float amax = absmax_of(values);
    switch (scheme_.scale_format) {
      case ScalarFormat::e8m0: {
        const std::uint8_t code =
            amax == 0.0f ? std::uint8_t{0}
                         : static_cast<std::uint8_t>(std::clamp(
                               detail::floor_log2_abs(amax) - emax_ + float8_e8m0::bias, 0, 254));
        return {float8_e8m0::from_bits(code).to_float(), 0.0f};
      }
      case ScalarFormat::e4m3: {
        const float scaled = std::clamp(amax / max_element_ / q.tensor_scale(), 0x1p-6f, 448.0f);
        return {float8_e4m3::from_bits(float8_e4m3::encode(scaled).code).to_float(), 0.0f};
      }
      default:
        // quantize_fp8's rule: at least the smallest positive float (amax / max underflows for
        // subnormal weights), and 1 for an all-zero group.
        if (amax == 0.0f) return {1.0f, 0.0f};
        return {detail::storable_scale(
                    scheme_.scale_format,
                    std::max(amax / max_element_, std::numeric_limits<float>::denorm_min())),
                0.0f};
    }
  }
  GroupParams store(QuantizedMatrix& q, std::size_t index, const GroupParams& p) const override {
    return {q.set_scale(index, p.scale), 0.0f};
  }
  Quantized quantize_one(const QuantizedMatrix& q, std::size_t, std::size_t, float w,
                         const GroupParams& p) const noexcept {
    // The product QuantizedMatrix::dequantize multiplies by.
    const float total = p.scale * q.tensor_scale();
    const float x = total > 0.0f ? std::clamp(w / total, -max_element_, max_element_) : 0.0f;
    const std::uint8_t code = detail::encode_minifloat_element(scheme_.element, x);
    return {code, element_values_[code] * total};
  }

 private:
  Scheme scheme_;
  std::vector<float> element_values_ = element_values(scheme_);
  float max_element_ = 0.0f;
  int emax_ = 0;
};

/// Scalar codebooks learned by k-means in prepare; see make_grid.
class CodebookGrid final : public ElementwiseGrid<CodebookGrid> {
 public:
  explicit CodebookGrid(const Scheme& scheme) : scheme_(scheme) {
    if (!scheme_.is_codebook() || scheme_.vector_dim != 1 || scheme_.tensor_scale ||
        scheme_.double_quant_block > 0)
      throw unsupported("codebook grid: needs scalar codebooks without tensor scales, not " +
                        scheme_.to_string());
  }
  const Scheme& scheme() const noexcept override { return scheme_; }
  bool has_matrix_state() const noexcept override { return true; }
  void prepare(MatrixView<const float> weights, QuantizedMatrix& q) const override {
    const QuantizedMatrix learned = quantize_codebook(weights, scheme_);
    std::copy(learned.codebook_bytes().begin(), learned.codebook_bytes().end(),
              q.codebook_bytes().begin());
    const std::size_t entries = scheme_.codebook_entries();
    decoded_.resize(q.codebook_grid().size() * entries);
    for (std::size_t book = 0; book < q.codebook_grid().size(); ++book)
      for (std::size_t e = 0; e < entries; ++e)
        decoded_[book * entries + e] = q.codebook_value(book, e, 0);
  }
  GroupParams fit(std::span<const float> values, const QuantizedMatrix&) const override {
    if (!scheme_.has_scales()) return {1.0f, 0.0f};
    return {detail::storable_scale(scheme_.scale_format, absmax_of(values)), 0.0f};
  }
  GroupParams store(QuantizedMatrix& q, std::size_t index, const GroupParams& p) const override {
    if (!scheme_.has_scales()) return p;
    return {q.set_scale(index, p.scale), 0.0f};
  }
  Quantized quantize_one(const QuantizedMatrix& q, std::size_t row, std::size_t column, float w,
                         const GroupParams& p) const noexcept {
    const std::size_t entries = scheme_.codebook_entries();
    const float* book = decoded_.data() + q.codebook_index(row, column) * entries;
    const float s = p.scale;
    std::uint8_t best = 0;
    float best_value = book[0] * s;
    for (std::size_t e = 1; e < entries; ++e) {
      const float value = book[e] * s;
      if (std::abs(w - value) < std::abs(w - best_value)) {
        best = static_cast<std::uint8_t>(e);
        best_value = value;
      }
    }
    return {best, best_value};
  }

 private:
  Scheme scheme_;
  mutable std::vector<float> decoded_;  // the codebooks as stored, decoded by prepare
};

}  // namespace

std::unique_ptr<Grid> make_grid(const Scheme& scheme, const GridOptions& options) {
  scheme.validate();
  if (scheme.ggml_type)
    throw unsupported("no grid for llama.cpp's block layout " + scheme.to_string() +
                      " (quant/ggml.hpp quantizes it)");
  if (scheme.double_quant_block > 0)  // a scale's stored value depends on the others in its block
    throw unsupported("no grid for double-quantized scales (" + scheme.to_string() + ")");
  if (scheme.is_integer()) return std::make_unique<LinearIntegerGrid>(scheme, options.clip);
  if (options.clip.enabled)
    throw unsupported("the clip search runs on linear integer grids, not " + scheme.to_string());
  switch (scheme.element) {
    case ElementFormat::nf4:
      return std::make_unique<Nf4Grid>(scheme);
    case ElementFormat::fp4_e2m1:
    case ElementFormat::fp8_e4m3:
    case ElementFormat::fp8_e5m2:
      return std::make_unique<MinifloatGrid>(scheme);
    case ElementFormat::codebook:
      return std::make_unique<CodebookGrid>(scheme);
    default:
      throw unsupported("no grid for " + scheme.to_string());
  }
}

}  // namespace lowbit
