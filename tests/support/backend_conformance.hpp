// How far each backend's GEMM may be from the reference (kernels/reference.hpp), per output: the
// bounds of the backend conformance suite (test_backend_conformance.cpp), also used by the CUDA
// device-pointer test. Every bound takes the activations in the stored basis (x' = R x for a
// matrix with an input rotation: kernels::detail::rotated_inputs).
#pragma once

#include "../../kernels/cuda/packed_layout.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <type_traits>
#include <vector>

#include "lowbit/format/ggml_blocks.hpp"
#include "lowbit/kernels/backend.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit::test {

/// Per weight [rows, cols], the bias b of a llama.cpp block weight s u + b in its level form
/// (ggml::to_levels); 0 for any other matrix, F16, BF16 and the IQ4 types.
inline std::vector<double> ggml_biases(const QuantizedMatrix& q) {
  std::vector<double> biases(q.rows() * q.cols(), 0.0);
  if (!q.scheme().ggml_type) return biases;
  ggml::visit_block_type(*q.scheme().ggml_type, [&]<class Block>(std::type_identity<Block>) {
    if constexpr (requires(const Block& b, std::uint8_t* u, ggml::LevelGroup* g) {
                    ggml::to_levels(b, u, g);
                  }) {
      constexpr GgmlTypeTraits traits = ggml_traits(ggml::type_of<Block>::value);
      std::uint8_t levels[traits.block_weights];
      ggml::LevelGroup groups[traits.block_weights / traits.group_weights];
      for (std::size_t o = 0; o < q.rows(); ++o) {
        double* out = biases.data() + o * q.cols();
        for (const Block& block : q.row_blocks<Block>(o)) {
          ggml::to_levels(block, levels, groups);
          for (std::size_t i = 0; i < traits.block_weights; ++i)
            *out++ = groups[i / traits.group_weights].bias;
        }
      }
    }
  });
  return biases;
}

/// Per weight [rows, cols], the magnitude of the terms a kernel sums for it. An integer weight
/// s (u - z) is summed as s u x and -s z x apart (kernels/cpu/packed_weights.hpp), with unsigned
/// levels u: both count. A llama.cpp block weight is s u + b (format/ggml_blocks.hpp; F16 and BF16:
/// b = 0) summed as s u x and b x, and |s u| <= |w| + |b|: |w| + 2 |b|. Any other weight counts
/// |w|, its dequantized value (in the stored basis). level_shift: a kernel that sums 8-bit levels
/// as (u - shift) x and shift x apart (AVX2's int8 kernel, kernels/cpu/int8_gemm_impl.hpp) sums
/// |u - shift| + shift per weight instead of u.
inline std::vector<double> summed_magnitudes(const QuantizedMatrix& q, double level_shift = 0.0) {
  const Scheme& scheme = q.scheme();
  const std::size_t rows = q.rows(), cols = q.cols();
  std::vector<double> magnitudes(rows * cols);
  if (scheme.is_integer()) {
    const int offset = scheme.element == ElementFormat::int_signed ? 1 << (scheme.bits - 1) : 0;
    const std::vector<float> values = element_values(scheme);
    for (std::size_t o = 0; o < rows; ++o)
      for (std::size_t k = 0; k < cols; ++k) {
        const std::size_t index = q.scale_index(o, k);
        const double s = std::abs(static_cast<double>(q.scale(index)) * q.tensor_scale());
        const double value = values[q.code(o, k)];
        double level = std::abs(value) + offset;
        if (scheme.bits == 8 && level_shift != 0.0)
          level = std::max(level, std::abs(value + offset - level_shift) + level_shift);
        const double zero = std::abs(static_cast<double>(q.zero(index))) + offset;
        magnitudes[o * cols + k] = s * (level + zero);
      }
    return magnitudes;
  }
  const std::vector<float> back = q.dequantize();  // in the stored (rotated) basis
  const std::vector<double> biases = ggml_biases(q);
  for (std::size_t i = 0; i < rows * cols; ++i)
    magnitudes[i] = std::abs(static_cast<double>(back[i])) + 2.0 * std::abs(biases[i]);
  return magnitudes;
}

/// The bound on |kernel - reference| per output for kernels that compute in fp32 (the cpu
/// backend's), for one matrix and activation mode, for any activations.
///   Float activations: any order of float summation is within (terms + 4) 2^-24 of the exact sum
///   of the magnitudes of what it sums.
///   The int8 modes (W8A8, W4A8, LLM.int8()): the integer sums are exact, so only float arithmetic
///   counts, (2 terms + 8) 2^-24 times the magnitudes with each |x| widened by the row's int8 step
///   x_scale = absmax / 127. That covers the int8 part (|xq| x_scale <= |x| + x_scale / 2) and
///   LLM.int8()'s float part, which multiplies |x| itself, alike. 8-bit levels count as AVX2's
///   kernel sums them, shifted by 128 (vpmaddubsw's int16 pairs would saturate on u up to 255).
class Fp32KernelBound {
 public:
  Fp32KernelBound(const QuantizedMatrix& q, kernels::ActivationQuantization activations)
      : rows_(q.rows()),
        cols_(q.cols()),
        int8_(activations != kernels::ActivationQuantization::none),
        magnitudes_(summed_magnitudes(q, int8_ ? 128.0 : 0.0)) {}

  /// The bounds [batch, rows] for activations [batch, cols] in the stored basis.
  std::vector<double> operator()(MatrixView<const float> rotated_x) const {
    const double terms = static_cast<double>(cols_);
    const double gamma = (int8_ ? 2.0 * terms + 8.0 : terms + 4.0) * std::ldexp(1.0, -24);
    std::vector<double> bounds(rotated_x.rows * rows_);
    for (std::size_t b = 0; b < rotated_x.rows; ++b) {
      double x_scale = 0.0;
      if (int8_) {
        float absmax = 0.0f;
        for (std::size_t k = 0; k < cols_; ++k)
          absmax = std::max(absmax, std::abs(rotated_x(b, k)));
        x_scale = absmax / 127.0;
      }
      for (std::size_t o = 0; o < rows_; ++o) {
        double magnitude = 0.0;
        for (std::size_t k = 0; k < cols_; ++k)
          magnitude += magnitudes_[o * cols_ + k] *
                       (std::abs(static_cast<double>(rotated_x(b, k))) + x_scale);
        bounds[b * rows_ + o] = gamma * magnitude + 1e-30;
      }
    }
    return bounds;
  }

 private:
  std::size_t rows_, cols_;
  bool int8_;
  std::vector<double> magnitudes_;
};

/// The CUDA kernels. They round the activations to fp16 (bf16), relative error u = 2^-11 (2^-8),
/// decode the levels v exactly (NF4 and codebook table values rounded to the activation type too),
/// sum in fp32 and round y to the activation type. Per output, with the kernels' form of a weight,
/// s (v - z):
///   |y - y_ref| <= (u (1 + table) + (K + 16) 2^-22) sum_k |s| (|v| + |z|) |x_k|
///                  + u |y_ref| + 2^-24 (1 + sum_k |s| (|v| + |z|))
/// (table = 1 for table formats; 2^-22 leaves the mma's fp32 accumulation 4 units of slack; the
/// last term covers subnormal activations and outputs). q must be one the CUDA kernels run.
inline std::vector<double> cuda_kernel_bounds(const QuantizedMatrix& q,
                                              MatrixView<const float> rotated_x,
                                              const std::vector<float>& expected, double u) {
  namespace cuda = kernels::cuda;
  const cuda::PackedMatrix p = cuda::pack(q);
  const double table = p.decode == cuda::Decode::lut4 ? 1.0 : 0.0;
  const double gamma = (static_cast<double>(q.cols()) + 16.0) * std::ldexp(1.0, -22);
  std::vector<double> bounds(rotated_x.rows * q.rows());
  std::vector<double> weight(q.cols());
  for (std::size_t o = 0; o < q.rows(); ++o) {
    double weight_sum = 0.0;
    for (std::size_t k = 0; k < q.cols(); ++k) {
      const std::size_t g = k / p.group;
      const double s = p.scales[g * p.padded_rows + o];
      const double z = p.has_zero ? p.zeros[g * p.padded_rows + o] : p.level_offset;
      weight[k] = std::abs(s) * (std::abs(static_cast<double>(cuda::level(p, o, k))) + std::abs(z));
      weight_sum += weight[k];
    }
    for (std::size_t b = 0; b < rotated_x.rows; ++b) {
      double magnitude = 0.0;
      for (std::size_t k = 0; k < q.cols(); ++k)
        magnitude += weight[k] * std::abs(static_cast<double>(rotated_x(b, k)));
      const double y = std::abs(static_cast<double>(expected[b * q.rows() + o]));
      bounds[b * q.rows() + o] = (u * (1.0 + table) + gamma) * magnitude + u * y +
                                 std::ldexp(1.0, -24) * (1.0 + weight_sum);
    }
  }
  return bounds;
}

}  // namespace lowbit::test
