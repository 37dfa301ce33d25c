// Matrices of ggml blocks (quant/ggml.hpp): the block quantizers over rows, threaded with OpenMP.
#include "lowbit/quant/ggml.hpp"

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

}  // namespace lowbit
