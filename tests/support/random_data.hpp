// Random test matrices with fixed seeds, shared by the quantizer tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace lowbit::test {

/// n samples of N(0, sigma^2).
inline std::vector<float> gaussian(std::size_t n, std::uint32_t seed, float sigma = 0.02f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> w(n);
  for (float& x : w) x = normal(rng);
  return w;
}

/// n samples of a heavy-tailed distribution like LLM weights: 0.01 * Student's t, 3 degrees of
/// freedom.
inline std::vector<float> heavy_tailed(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> w(n);
  for (float& x : w) x = 0.01f * t(rng);
  return w;
}

/// A [rows, cols] matrix like LLM weights: N(0, 0.02^2) with 1% of the entries ten times larger.
inline std::vector<float> weights_with_outliers(std::size_t rows, std::size_t cols,
                                                std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<float> w(rows * cols);
  for (float& x : w) x = uniform(rng) < 0.01f ? 10.0f * normal(rng) : normal(rng);
  return w;
}

}  // namespace lowbit::test
