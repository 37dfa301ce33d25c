// Quantizes a small matrix through the installed package and checks the result, so that a broken
// package (missing header, target or dependency) fails CI.
#include <lowbit/kernels/cuda.hpp>
#include <lowbit/lowbit.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  std::vector<float> weights(8 * 64);
  for (std::size_t i = 0; i < weights.size(); ++i)
    weights[i] = std::sin(static_cast<float>(i)) * 0.05f;

  const auto scheme = lowbit::Scheme::symmetric_int(4, lowbit::Granularity::per_group(32));
  const lowbit::QuantizedMatrix q =
      lowbit::quantize_linear(lowbit::MatrixView<const float>(weights.data(), 8, 64), scheme);
  const std::vector<float> back = q.dequantize();

  float worst = 0.0f;
  for (std::size_t i = 0; i < weights.size(); ++i)
    worst = std::fmax(worst, std::fabs(weights[i] - back[i]));
  const float half_step = 0.5f * 0.05f / 7.0f * 1.01f;
  std::printf("lowbit %d.%d: %s, %.3f bits/weight, max error %.5f, cpu isa %s, cuda %s\n",
              LOWBIT_VERSION_MAJOR, LOWBIT_VERSION_MINOR, scheme.to_string().c_str(),
              q.bits_per_weight(), static_cast<double>(worst),
              lowbit::to_string(lowbit::best_isa()),
              lowbit::kernels::cuda_available() ? "available" : "not available");
  return worst <= half_step ? 0 : 1;
}
