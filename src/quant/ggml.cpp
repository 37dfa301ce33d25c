// Matrices of ggml blocks (quant/ggml.hpp): the block quantizers over rows, threaded with OpenMP.
#include "lowbit/quant/ggml.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "lowbit/detail/parallel.hpp"

namespace lowbit {

namespace {

template <class Block>
void quantize_ggml_rows(MatrixView<const float> weights, QuantizedMatrix& q) {
  constexpr GgmlType type = ggml::type_of<Block>::value;
  constexpr std::size_t block = ggml::block_weights(type);
  const auto rows = static_cast<std::ptrdiff_t>(weights.rows);
  // The first block (in row order) whose scale overflowed, per row; -1 for none. Exceptions
  // cannot leave an OpenMP region, so the error is raised afterwards.
  std::vector<std::ptrdiff_t> overflow(weights.rows, -1);
#pragma omp parallel for schedule(static) if (detail::worth_threads(weights.size()))
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    const auto row = static_cast<std::size_t>(r);
    const std::span<const float> values = weights.row(row);
    // The rows were made for Block (row_blocks would check it, but must not throw in here).
    Block* blocks = reinterpret_cast<Block*>(q.row_bytes(row).data());
    for (std::size_t b = 0; b < weights.cols / block; ++b)
      if (!ggml::quantize_block(values.data() + b * block, blocks[b]) && overflow[row] < 0)
        overflow[row] = static_cast<std::ptrdiff_t>(b);
  }
  for (std::size_t row = 0; row < weights.rows; ++row) {
    if (overflow[row] < 0) continue;
    const auto start = static_cast<std::size_t>(overflow[row]) * block;
    float amax = 0.0f;
    for (std::size_t c = start; c < start + block; ++c)
      amax = std::max(amax, std::abs(weights(row, c)));
    std::string message = "ggml ";
    message.append(to_string(type))
        .append(block == 1 ? ": the value at row " : ": the fp16 scale of the block at row ")
        .append(std::to_string(row))
        .append(", columns ")
        .append(std::to_string(start))
        .append("..")
        .append(std::to_string(start + block - 1))
        .append(" overflows (largest |weight| ")
        .append(std::to_string(amax))
        .append(")");
    throw invalid_value(message, ErrorContext{"", "", {weights.rows, weights.cols}});
  }
}

}  // namespace

QuantizedMatrix quantize_ggml(MatrixView<const float> weights, GgmlType type) {
  if (!has_ggml_quantizer(type))
    throw unsupported(std::string("quantize_ggml: lowbit has no quantizer for ggml ") +
                      to_string(type) + " (it reads and dequantizes these blocks only)");
  QuantizedMatrix q(Scheme::ggml_blocks(type), weights.rows, weights.cols);
  detail::require_finite(weights, "");
  ggml::visit_block_type(type, [&]<class Block>(std::type_identity<Block>) {
    if constexpr (requires(const float* x, Block& b) { ggml::quantize_block(x, b); })
      quantize_ggml_rows<Block>(weights, q);
  });
  return q;
}

void round_activations_as_ggml(GgmlType weight_type, std::span<float> row) {
  switch (weight_type) {
    case GgmlType::f16:
      for (float& x : row) x = float16::from_bits(ggml::detail::to_fp16(x)).to_float();
      return;
    case GgmlType::bf16:
      for (float& x : row) {
        ggml::block_bf16 b;
        (void)ggml::quantize_block(&x, b);
        x = bfloat16::from_bits(b.bits).to_float();
      }
      return;
    case GgmlType::q2_k:
    case GgmlType::q3_k:
    case GgmlType::q4_k:
    case GgmlType::q5_k:
    case GgmlType::q6_k:
    case GgmlType::iq4_xs:
      // quantize_row_q8_K_ref: the scale from the value of largest magnitude, with its sign.
      for (std::size_t start = 0; start + ggml::qk_k <= row.size(); start += ggml::qk_k) {
        float* x = row.data() + start;
        float max = 0, amax = 0;
        for (std::size_t j = 0; j < ggml::qk_k; ++j)
          if (std::abs(x[j]) > amax) {
            amax = std::abs(x[j]);
            max = x[j];
          }
        if (amax == 0) {
          std::fill_n(x, ggml::qk_k, 0.0f);
          continue;
        }
        const float iscale = -127.0f / max;
        const float d = 1 / iscale;
        for (std::size_t j = 0; j < ggml::qk_k; ++j)
          x[j] = d * static_cast<float>(std::min(127, ggml::detail::nearest_int(iscale * x[j])));
      }
      return;
    default:
      // Q8_0 and Q8_1 (the same codes and scale): ggml's x86 quantize_row_q8_0 / _q8_1.
      for (std::size_t start = 0; start + 32 <= row.size(); start += 32) {
        float* x = row.data() + start;
        float amax = 0;
        for (std::size_t j = 0; j < 32; ++j) amax = std::max(amax, std::abs(x[j]));
        const float d = float16::from_bits(ggml::detail::to_fp16(amax / 127.0f)).to_float();
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        for (std::size_t j = 0; j < 32; ++j) x[j] = d * std::nearbyint(x[j] * id);
      }
      return;
  }
}

}  // namespace lowbit
