#include <catch2/catch.hpp>

#include "support/random_data.hpp"

#include <cmath>
#include <random>
#include <vector>

#include "lowbit/algo/higgs.hpp"
#include "lowbit/format/higgs_grids.hpp"

using lowbit::MatrixView;
using lowbit::QuantizedMatrix;

namespace {

using lowbit::test::gaussian;

}  // namespace

TEST_CASE("HIGGS codes are the nearest grid points of the rotated, RMS-scaled blocks", "[higgs]") {
  const std::size_t rows = 4, cols = 128;
  const auto w = gaussian(rows * cols, 1);
  for (auto [p, n] : {std::pair{1, 8}, std::pair{2, 16}, std::pair{2, 256}}) {
    lowbit::HiggsOptions options;
    options.dimension = p;
    options.grid_size = n;
    options.block = 64;
    options.seed = 5;
    INFO("p " << p << " n " << n);
    const QuantizedMatrix q =
        lowbit::quantize_higgs(MatrixView<const float>(w.data(), rows, cols), options);
    REQUIRE(q.input_rotation().has_value());
    CHECK(q.input_rotation()->size == 64);
    CHECK(q.bits_per_weight() == Approx(std::log2(n) / p + 16.0 / 64));

    // Reference: rotate each block with the same rotation, divide by the stored scale, and find
    // the nearest point by brute force.
    const lowbit::HiggsGrid grid = lowbit::higgs_grid(p, n);
    std::vector<float> rotated = w;
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t start = 0; start < cols; start += 64)
        q.input_rotation()->apply(std::span<float>(rotated.data() + r * cols + start, 64));
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t j = 0; j < cols / p; ++j) {
        const float scale = q.scale(q.scale_index(r, j * p));
        int best = 0;
        double best_distance = 1e300;
        for (int g = 0; g < n; ++g) {
          double distance = 0;
          for (int d = 0; d < p; ++d) {
            const double diff = rotated[r * cols + j * p + d] / scale - grid.points[g * p + d];
            distance += diff * diff;
          }
          if (distance < best_distance - 1e-9) best = g, best_distance = distance;
        }
        CHECK(q.code(r, j) == best);
      }
    }
  }
}

TEST_CASE("HIGGS error on Gaussian weights is the grid's MSE", "[higgs]") {
  const std::size_t rows = 64, cols = 512;
  const auto w = gaussian(rows * cols, 2, 1.0f);
  for (auto [p, n] : {std::pair{1, 16}, std::pair{2, 256}, std::pair{2, 64}}) {
    lowbit::HiggsOptions options;
    options.dimension = p;
    options.grid_size = n;
    const QuantizedMatrix q =
        lowbit::quantize_higgs(MatrixView<const float>(w.data(), rows, cols), options);
    const auto back = q.dequantize_unrotated();
    double error = 0, signal = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      error += (w[i] - double(back[i])) * (w[i] - double(back[i]));
      signal += double(w[i]) * w[i];
    }
    INFO("p " << p << " n " << n << ": relative MSE " << error / signal << ", grid MSE "
              << lowbit::higgs_grid(p, n).mse);
    CHECK(error / signal == Approx(lowbit::higgs_grid(p, n).mse).epsilon(0.1));
  }
}

TEST_CASE("HIGGS handles short rows, zero blocks and bad options", "[higgs]") {
  // 172 columns: the block becomes the whole row, a Hadamard order lowbit has.
  std::vector<float> w = gaussian(3 * 172, 3);
  std::fill(w.begin(), w.begin() + 172, 0.0f);  // an all-zero row
  lowbit::HiggsOptions options;
  const QuantizedMatrix q =
      lowbit::quantize_higgs(MatrixView<const float>(w.data(), 3, 172), options);
  CHECK(q.input_rotation()->size == 172);
  const auto back = q.dequantize_unrotated();
  for (std::size_t c = 0; c < 172; ++c) CHECK(back[c] == 0.0f);

  options.grid_size = 100;
  CHECK_THROWS_AS(lowbit::quantize_higgs(MatrixView<const float>(w.data(), 3, 172), options),
                  lowbit::invalid_argument);
  options.grid_size = 2;
  options.dimension = 2;
  CHECK_THROWS_AS(lowbit::quantize_higgs(MatrixView<const float>(w.data(), 3, 172), options),
                  lowbit::invalid_argument);
  const std::vector<float> odd(2 * 44, 0.5f);
  CHECK_THROWS_AS(lowbit::quantize_higgs(MatrixView<const float>(odd.data(), 2, 44), {}),
                  lowbit::invalid_argument);
  std::vector<float> bad = gaussian(2 * 64, 4);
  bad[70] = NAN;
  CHECK_THROWS_AS(lowbit::quantize_higgs(MatrixView<const float>(bad.data(), 2, 64), {}),
                  lowbit::invalid_value);
}
