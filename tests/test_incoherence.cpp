#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "lowbit/algo/incoherence.hpp"
#include "lowbit/quant/linear.hpp"

using lowbit::Granularity;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;
using lowbit::Scheme;

namespace {

std::vector<float> outlier_matrix(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> w(rows * cols);
  for (float& x : w) x = normal(rng);
  for (std::size_t r = 0; r < rows; ++r) w[r * cols + (r * 7) % cols] = 0.5f;  // one outlier a row
  return w;
}

double squared_error(const std::vector<float>& a, const std::vector<float>& b) {
  double total = 0;
  for (std::size_t i = 0; i < a.size(); ++i) total += (a[i] - double(b[i])) * (a[i] - double(b[i]));
  return total;
}

}  // namespace

TEST_CASE("a rotated matrix keeps the layer's function: W x = (W R^T)(R x)",
          "[hadamard][incoherence]") {
  for (std::size_t cols : {64, 172, 256}) {
    for (std::size_t block : {std::size_t{0}, std::size_t{32}, std::size_t{4}}) {
      if (block != 0 && cols % block != 0) continue;
      INFO("cols " << cols << " block " << block);
      const std::size_t rows = 5;
      const auto w = outlier_matrix(rows, cols, 1);
      const Scheme scheme =
          Scheme::symmetric_int(8, Granularity::per_channel(), lowbit::ScalarFormat::f32);
      const QuantizedMatrix q =
          lowbit::quantize_incoherent(MatrixView<const float>(w.data(), rows, cols),
                                      {block, 7, true}, [&](MatrixView<const float> rotated) {
                                        return lowbit::quantize_linear(rotated, scheme);
                                      });
      REQUIRE(q.input_rotation().has_value());
      CHECK(q.input_rotation()->size == (block == 0 ? cols : block));

      std::vector<float> x(cols);
      std::mt19937 rng(2);
      std::normal_distribution<float> normal;
      for (float& v : x) v = normal(rng);
      std::vector<float> rx = x;
      q.rotate_input(rx);
      const auto stored = q.dequantize();              // W R^T, quantized
      const auto original = q.dequantize_unrotated();  // back in the inputs' basis
      for (std::size_t r = 0; r < rows; ++r) {
        double exact = 0, through_rotation = 0, unrotated = 0;
        for (std::size_t c = 0; c < cols; ++c) {
          exact += double(w[r * cols + c]) * x[c];
          through_rotation += double(stored[r * cols + c]) * rx[c];
          unrotated += double(original[r * cols + c]) * x[c];
        }
        CHECK(through_rotation == Approx(unrotated).margin(1e-4));
        CHECK(through_rotation == Approx(exact).margin(0.02));  // int8: small quantization error
      }
    }
  }
}

TEST_CASE("rotation spreads outliers: RTN error drops", "[hadamard][incoherence]") {
  const std::size_t rows = 32, cols = 256;
  const auto w = outlier_matrix(rows, cols, 3);
  const MatrixView<const float> view(w.data(), rows, cols);
  for (int bits : {3, 4}) {
    const Scheme scheme = Scheme::asymmetric_int(bits, Granularity::per_channel());
    const double plain = squared_error(w, lowbit::quantize_linear(view, scheme).dequantize());
    const QuantizedMatrix rotated = lowbit::quantize_incoherent(
        view, {}, [&](MatrixView<const float> m) { return lowbit::quantize_linear(m, scheme); });
    const double with_rotation = squared_error(w, rotated.dequantize_unrotated());
    INFO(bits << " bits: " << plain << " plain, " << with_rotation << " rotated");
    CHECK(with_rotation < 0.5 * plain);
  }
}

TEST_CASE("unsupported rotation blocks are refused", "[hadamard][incoherence]") {
  const std::vector<float> w(3 * 44, 0.1f);
  const auto rtn = [](MatrixView<const float> m) {
    return lowbit::quantize_linear(m, Scheme::symmetric_int(4, Granularity::per_channel()));
  };
  CHECK_THROWS_AS(lowbit::quantize_incoherent(MatrixView<const float>(w.data(), 3, 44), {}, rtn),
                  lowbit::invalid_argument);  // 44 = 11 * 4: no Hadamard matrix of order 11
  CHECK_THROWS_AS(
      lowbit::quantize_incoherent(MatrixView<const float>(w.data(), 3, 44), {8, 0, true}, rtn),
      lowbit::invalid_argument);  // 8 does not divide 44
  CHECK_NOTHROW(
      lowbit::quantize_incoherent(MatrixView<const float>(w.data(), 3, 44), {4, 0, true}, rtn));
  QuantizedMatrix q(Scheme::symmetric_int(4, Granularity::per_channel()), 2, 12);
  CHECK_THROWS_AS(q.set_input_rotation({8, 0, true}), lowbit::invalid_argument);
  std::vector<float> x(5);
  q.set_input_rotation({12, 0, true});
  CHECK_THROWS_AS(q.rotate_input(x), lowbit::invalid_argument);
}
