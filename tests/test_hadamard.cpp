#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "lowbit/format/hadamard.hpp"

namespace {

constexpr std::size_t orders[] = {12, 20, 28, 36, 40, 52, 60, 108, 140, 156, 172};

std::vector<float> random_vector(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

// H_n[i][j] from the definition H_n = H_K ⊗ H_{2^m}: i = a * 2^m + b, j = c * 2^m + d,
// H_n[i][j] = H_K[a][c] * (-1)^popcount(b & d).
int dense_entry(std::size_t n, std::size_t k, std::size_t i, std::size_t j) {
  const std::size_t m = n / k;
  const std::size_t a = i / m, b = i % m, c = j / m, d = j % m;
  int h = 1;
  if (k > 1) h = lowbit::hadamard_table(k)[a * k + c] == '+' ? 1 : -1;
  return std::popcount(b & d) % 2 ? -h : h;
}

// y = H_n x / sqrt(n) (or H_n^T x / sqrt(n)) by a dense product in double.
std::vector<double> dense_transform(const std::vector<float>& x, bool transpose = false) {
  const std::size_t n = x.size();
  const std::size_t k = lowbit::hadamard_order(n);
  REQUIRE(k != 0);
  std::vector<double> y(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    double s = 0;
    for (std::size_t j = 0; j < n; ++j)
      s += (transpose ? dense_entry(n, k, j, i) : dense_entry(n, k, i, j)) *
           static_cast<double>(x[j]);
    y[i] = s / std::sqrt(static_cast<double>(n));
  }
  return y;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

double norm(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += static_cast<double>(v) * v;
  return std::sqrt(s);
}

std::vector<std::size_t> test_sizes() {
  std::vector<std::size_t> sizes;
  for (std::size_t k : orders)
    for (std::size_t m = 1; m <= 8; m *= 2) sizes.push_back(k * m);
  return sizes;
}

}  // namespace

TEST_CASE("every stored H_K is a ±1 matrix with H H^T = K I", "[hadamard]") {
  for (std::size_t k : orders) {
    CAPTURE(k);
    const std::string_view h = lowbit::hadamard_table(k);
    REQUIRE(h.size() == k * k);
    for (char c : h) REQUIRE((c == '+' || c == '-'));
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t j = 0; j < k; ++j) {
        long dot = 0;
        for (std::size_t t = 0; t < k; ++t) dot += (h[i * k + t] == h[j * k + t]) ? 1 : -1;
        REQUIRE(dot == (i == j ? static_cast<long>(k) : 0));
      }
  }
  CHECK(lowbit::hadamard_table(44).empty());
}

TEST_CASE("supported sizes are K * 2^m", "[hadamard]") {
  for (std::size_t n : {1, 2, 4, 1024, 12, 24, 40, 80, 172, 344, 156 * 64, 108 * 4})
    CHECK(lowbit::hadamard_size_supported(n));
  for (std::size_t n : {0, 3, 44, 100, 6, 10, 36 * 5, 172 * 3})
    CHECK_FALSE(lowbit::hadamard_size_supported(n));
  CHECK(lowbit::hadamard_order(1024) == 1);
  CHECK(lowbit::hadamard_order(20) == 20);
  CHECK(lowbit::hadamard_order(40) == 40);  // the larger of 20 and 40
  CHECK(lowbit::hadamard_order(160) == 40);
  CHECK(lowbit::hadamard_order(172 * 16) == 172);
  CHECK(lowbit::hadamard_order(100) == 0);
}

TEST_CASE("fwht equals the dense Sylvester product", "[hadamard]") {
  for (std::size_t n = 1; n <= 4096; n *= 2) {
    CAPTURE(n);
    std::vector<float> x = random_vector(n, n);
    const std::vector<double> expected = dense_transform(x);
    lowbit::fwht(x);
    CHECK(max_abs_diff(x, expected) < 1e-4);
  }
  std::vector<float> x(12);
  CHECK_THROWS_AS(lowbit::fwht(x), lowbit::invalid_argument);
  std::vector<float> empty;
  CHECK_THROWS_AS(lowbit::fwht(empty), lowbit::invalid_argument);
}

TEST_CASE("hadamard_transform equals the dense product for every K * 2^m", "[hadamard]") {
  std::vector<std::size_t> sizes = test_sizes();
  for (std::size_t n : {1, 2, 64, 512}) sizes.push_back(n);
  for (std::size_t n : sizes) {
    CAPTURE(n);
    std::vector<float> x = random_vector(n, 7 * n);
    const std::vector<double> expected = dense_transform(x);
    lowbit::hadamard_transform(x);
    CHECK(max_abs_diff(x, expected) < 1e-4);
  }
}

TEST_CASE("the transform is orthonormal and the rotation inverts", "[hadamard]") {
  std::vector<std::size_t> sizes = test_sizes();
  for (std::size_t n : {1, 2, 64, 4096}) sizes.push_back(n);
  for (std::size_t n : sizes) {
    CAPTURE(n);
    const std::vector<float> x0 = random_vector(n, 11 * n);
    std::vector<float> x = x0;
    lowbit::hadamard_transform(x);
    CHECK(norm(x) == Approx(norm(x0)).epsilon(1e-5));
    for (bool randomized : {false, true}) {
      const lowbit::HadamardRotation r{n, 1234, randomized};
      x = x0;
      r.apply(x);
      CHECK(norm(x) == Approx(norm(x0)).epsilon(1e-5));
      r.apply_transpose(x);
      for (std::size_t i = 0; i < n; ++i) REQUIRE(x[i] == Approx(x0[i]).margin(1e-5));
      // R^T against the dense definition: R^T x = D H^T x / sqrt(n).
      x = x0;
      r.apply_transpose(x);
      std::vector<double> expected = dense_transform(x0, true);
      const std::vector<float> d = r.signs();
      for (std::size_t i = 0; i < n; ++i) expected[i] *= d[i];
      CHECK(max_abs_diff(x, expected) < 1e-4);
    }
  }
}

TEST_CASE("the randomized rotation is reproducible for a seed", "[hadamard]") {
  const lowbit::HadamardRotation a{768, 42, true}, b{768, 42, true}, c{768, 43, true};
  CHECK(a.signs() == b.signs());
  CHECK(a.signs() != c.signs());
  const std::vector<float> s = a.signs();
  std::size_t negative = 0;
  for (float v : s) {
    REQUIRE((v == 1.0f || v == -1.0f));
    negative += v < 0;
  }
  CHECK(negative > 300);
  CHECK(negative < 468);
  // splitmix64 from seed 0: the first output is 0xe220a8397b1dcdaf (top bit set: -1).
  CHECK(lowbit::HadamardRotation{4, 0, true}.signs()[0] == -1.0f);
  const std::vector<float> plain = lowbit::HadamardRotation{768, 42, false}.signs();
  for (float v : plain) REQUIRE(v == 1.0f);

  const std::vector<float> x0 = random_vector(768, 5);
  std::vector<float> xa = x0, xb = x0, xc = x0;
  a.apply(xa);
  b.apply(xb);
  c.apply(xc);
  CHECK(xa == xb);
  CHECK(xa != xc);
}

TEST_CASE("rotate_input_side preserves W x", "[hadamard]") {
  for (std::size_t cols : {64, 172, 768, 4096}) {
    CAPTURE(cols);
    const std::size_t rows = cols == 4096 ? 40 : 24;
    std::vector<float> w = random_vector(rows * cols, cols);
    const std::vector<float> x0 = random_vector(cols, cols + 1);
    std::vector<double> y0(rows, 0.0);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < cols; ++c) y0[r] += static_cast<double>(w[r * cols + c]) * x0[c];

    const lowbit::HadamardRotation rotation{cols, 99, true};
    rotate_input_side(lowbit::MatrixView<float>(w.data(), rows, cols), rotation);
    std::vector<float> x = x0;
    rotation.apply(x);
    for (std::size_t r = 0; r < rows; ++r) {
      double y = 0;
      for (std::size_t c = 0; c < cols; ++c) y += static_cast<double>(w[r * cols + c]) * x[c];
      REQUIRE(y == Approx(y0[r]).margin(1e-3 * std::sqrt(static_cast<double>(cols))));
    }
  }
}

TEST_CASE("rotate_input_side handles strided views and big matrices", "[hadamard]") {
  const std::size_t rows = 300, cols = 256, stride = 260;  // 300 * 256 elements: threaded
  std::vector<float> w = random_vector(rows * stride, 3);
  const std::vector<float> original = w;
  const lowbit::HadamardRotation rotation{cols, 7, true};
  rotate_input_side(lowbit::MatrixView<float>(w.data(), rows, cols, stride), rotation);
  for (std::size_t r = 0; r < rows; r += 37) {
    std::vector<float> expected(original.begin() + static_cast<std::ptrdiff_t>(r * stride),
                                original.begin() + static_cast<std::ptrdiff_t>(r * stride + cols));
    rotation.apply(expected);
    for (std::size_t c = 0; c < cols; ++c) REQUIRE(w[r * stride + c] == expected[c]);
    for (std::size_t c = cols; c < stride; ++c)
      REQUIRE(w[r * stride + c] == original[r * stride + c]);
  }
}

TEST_CASE("unsupported sizes throw", "[hadamard]") {
  for (std::size_t n : {44, 100, 3}) {
    std::vector<float> x(n, 1.0f);
    CHECK_THROWS_AS(lowbit::hadamard_transform(x), lowbit::invalid_argument);
    const lowbit::HadamardRotation r{n, 1, true};
    CHECK_THROWS_AS(r.apply(x), lowbit::invalid_argument);
    CHECK_THROWS_AS(r.apply_transpose(x), lowbit::invalid_argument);
    std::vector<float> w(2 * n);
    CHECK_THROWS_AS(rotate_input_side(lowbit::MatrixView<float>(w.data(), 2, n), r),
                    lowbit::invalid_argument);
  }
  std::vector<float> x(64);
  const lowbit::HadamardRotation r{128, 1, true};
  CHECK_THROWS_AS(r.apply(x), lowbit::invalid_argument);  // length mismatch
  std::vector<float> w(2 * 64);
  CHECK_THROWS_AS(rotate_input_side(lowbit::MatrixView<float>(w.data(), 2, 64), r),
                  lowbit::invalid_argument);
}
