// The quantized matrices the CUDA tests run (tests/test_cuda_packing.cpp, test_cuda_backend.cpp):
// one of every Scheme family the CUDA kernels decode, quantized from the same random weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/algo/hqq.hpp"
#include "lowbit/quant/codebook.hpp"
#include "lowbit/quant/fp8.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quant/microscaling.hpp"
#include "lowbit/quant/nf4.hpp"
#include "random_data.hpp"

namespace lowbit::test {

/// Every Scheme family of the CUDA backend on one [rows, cols] matrix: integers of 2..8 bits
/// (symmetric and asymmetric, groups of 32, 64, 128, per channel, per tensor, f32/f16/bf16 scales,
/// HQQ's fractional zeros), NF4 (with double quantization), MXFP4, NVFP4, a scalar codebook,
/// MXFP8 and FP8 E4M3 per channel and in 128 x 128 blocks.
inline std::vector<QuantizedMatrix> cuda_cases(std::size_t rows, std::size_t cols,
                                               std::uint32_t seed) {
  const std::vector<float> w = weights_with_outliers(rows, cols, seed);
  const MatrixView<const float> view(w.data(), rows, cols);
  std::vector<QuantizedMatrix> out;
  for (const Scheme& scheme : {
           Scheme::symmetric_int(4, Granularity::per_group(32)),
           Scheme::asymmetric_int(4, Granularity::per_group(64)),
           Scheme::asymmetric_int(4, Granularity::per_group(128), ScalarFormat::bf16),
           Scheme::symmetric_int(4, Granularity::per_channel()),
           Scheme::asymmetric_int(4, Granularity::per_tensor(), ScalarFormat::f32),
           Scheme::asymmetric_int(3, Granularity::per_group(32)),
           Scheme::symmetric_int(2, Granularity::per_group(64)),
           Scheme::symmetric_int(8, Granularity::per_channel(), ScalarFormat::f32),
           Scheme::asymmetric_int(8, Granularity::per_group(32)),
       })
    out.push_back(quantize_linear(view, scheme));
  HqqOptions hqq;
  hqq.group_size = 64;
  out.push_back(quantize_hqq(view, 4, hqq));
  Nf4Options nf4;
  nf4.block = 64;
  out.push_back(quantize_nf4(view, nf4));
  nf4.double_quant = true;
  nf4.double_quant_block = 4;
  out.push_back(quantize_nf4(view, nf4));
  out.push_back(quantize_mxfp4(view));
  out.push_back(quantize_nvfp4(view));  // E4M3 scales per 16, an fp32 tensor scale
  const Scheme codebook{.element = ElementFormat::codebook,
                        .bits = 4,
                        .granularity = Granularity::none(),
                        .codebook_granularity = Granularity::per_tensor(),
                        .codebook_format = ScalarFormat::f16};
  out.push_back(quantize_codebook(view, codebook));
  out.push_back(quantize_mxfp8(view));
  Fp8Options fp8;
  out.push_back(quantize_fp8(view, fp8));  // per channel, f32 scales
  fp8.granularity = Granularity::per_block(128, 128);
  out.push_back(quantize_fp8(view, fp8));
  return out;
}

}  // namespace lowbit::test
