// The weights the benchmarks quantize: N(0, 0.02^2) samples with a fixed seed, the same in every
// program so that figures from different benchmarks describe the same data.
#pragma once

#include <cstddef>
#include <random>
#include <vector>

namespace lowbit::bench {

inline std::vector<float> normal_weights(std::size_t count) {
  std::vector<float> w(count);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (float& x : w) x = normal(rng);
  return w;
}

}  // namespace lowbit::bench
