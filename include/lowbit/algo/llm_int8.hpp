// LLM.int8() (Dettmers et al., "LLM.int8(): 8-bit Matrix Multiplication for Transformers at
// Scale", 2022). Vector-wise int8 (int8 weights per output channel, int8 activations per token)
// fails beyond ~6.7B parameters because a few input feature dimensions carry outliers of
// magnitude 20-100 in most tokens. The mixed-precision decomposition splits the matmul by input
// column: the columns where some activation exceeds a threshold (6.0) are multiplied in 16-bit
// float, the rest (99.9% of them) in int8 with int32 accumulation, and the two parts are added.
//
// What lowbit does (as bitsandbytes' MatMul8bitLt at inference, where only int8 weights exist):
//  * Weights: quantize_llm_int8_weights = quantize_w8a8_weights (smoothquant.hpp): signed int8 per
//    output channel, scale = absmax / 127, f32 scales.
//  * The product (outlier columns chosen per call, multiplied in float against the dequantized int8
//    weights; the rest in int8) is the reference kernel llm_int8_gemm, with the exact definition,
//    in kernels/int8_reference.hpp.
#pragma once

#include "lowbit/algo/smoothquant.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quantized_matrix.hpp"

namespace lowbit {

/// Vector-wise int8 weights for LLM.int8(): quantize_w8a8_weights(w).
inline QuantizedMatrix quantize_llm_int8_weights(MatrixView<const float> w,
                                                 const LinearQuantizeOptions& options = {}) {
  return quantize_w8a8_weights(w, options);
}

}  // namespace lowbit
