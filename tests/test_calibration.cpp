#include <catch2/catch.hpp>

#include "support/random_data.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "lowbit/algo/calibration.hpp"

using lowbit::InputStatistics;
using lowbit::MatrixView;
using lowbit::SymmetricMatrix;

namespace {

/// max |a_ij - b_ij|, and max |b_ij|.
double max_difference(const SymmetricMatrix& a, const SymmetricMatrix& b) {
  double worst = 0.0;
  for (std::size_t i = 0; i < a.values().size(); ++i)
    worst = std::max(worst, std::abs(a.values()[i] - b.values()[i]));
  return worst;
}
double max_abs(const SymmetricMatrix& m) {
  double worst = 0.0;
  for (double v : m.values()) worst = std::max(worst, std::abs(v));
  return worst;
}

}  // namespace

TEST_CASE("InputStatistics accumulates 2/n X^T X, mean |x| and max |x|", "[algo][calibration]") {
  const std::size_t n = 37, in = 19;
  const auto x = lowbit::test::gaussian(n * in, 1, 1.0f);
  InputStatistics all(in);
  CHECK(all.samples() == 0);
  CHECK(all.hessian() == SymmetricMatrix(in));
  all.add(MatrixView<const float>(x.data(), n, in));
  REQUIRE(all.samples() == n);

  std::vector<double> direct(in * in, 0.0);  // row-major
  std::vector<double> mean(in, 0.0);
  std::vector<float> max(in, 0.0f);
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t i = 0; i < in; ++i) {
      mean[i] += std::abs(x[t * in + i]) / static_cast<double>(n);
      max[i] = std::max(max[i], std::abs(x[t * in + i]));
      for (std::size_t j = 0; j < in; ++j)
        direct[i * in + j] +=
            2.0 / static_cast<double>(n) * (static_cast<double>(x[t * in + i]) * x[t * in + j]);
    }
  const SymmetricMatrix h = all.hessian();
  REQUIRE(h.rows() == in);
  // (x_i x_j == x_j x_i in double, so direct is exactly symmetric too.)
  const SymmetricMatrix expected(in, direct);
  CHECK(max_difference(h, expected) <= 1e-12 * max_abs(expected));
  for (std::size_t i = 0; i < in; ++i) {
    CHECK(all.mean_abs()[i] == Approx(mean[i]).epsilon(1e-12));
    CHECK(all.max_abs()[i] == max[i]);
  }

  // The same samples in uneven batches, through a strided view (every other row of a wider
  // buffer), give the same statistics.
  std::vector<float> wide(n * 2 * in, std::numeric_limits<float>::quiet_NaN());
  for (std::size_t t = 0; t < n; ++t) std::copy_n(x.data() + t * in, in, wide.data() + t * 2 * in);
  InputStatistics batched(in);
  std::size_t done = 0;
  for (std::size_t batch : {1u, 10u, 26u}) {
    batched.add(MatrixView<const float>(wide.data() + done * 2 * in, batch, in, 2 * in));
    done += batch;
  }
  REQUIRE(done == n);
  CHECK(batched.samples() == n);
  CHECK(max_difference(batched.hessian(), h) <= 1e-12 * max_abs(h));
  CHECK(batched.max_abs() == all.max_abs());
}

TEST_CASE("InputStatistics rejects bad batches", "[algo][calibration]") {
  InputStatistics stats(4);
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, std::numeric_limits<float>::infinity()};
  CHECK_THROWS_AS(stats.add(MatrixView<const float>(x.data(), 2, 3, 4)), lowbit::invalid_argument);
  CHECK_THROWS_AS(stats.add(MatrixView<const float>(x.data(), 2, 4)), lowbit::invalid_value);
  stats.add(MatrixView<const float>(x.data(), 0, 4));
  CHECK(stats.samples() == 0);
}

// SymmetricMatrix lives in its own header (algo/symmetric_matrix.hpp); its tests sit here with
// the accumulator that produces it.
TEST_CASE("SymmetricMatrix stays symmetric and rejects asymmetric values", "[algo][calibration]") {
  SymmetricMatrix m(3);
  m.set(2, 0, 1.5);
  CHECK(m(0, 2) == 1.5);
  CHECK(m(2, 0) == 1.5);
  m *= 2.0;
  CHECK(m(0, 2) == 3.0);
  CHECK(m.diagonal() == std::vector<double>{0.0, 0.0, 0.0});
  const std::vector<double> d = {1.0, 2.0};
  CHECK(SymmetricMatrix::from_diagonal(d) == SymmetricMatrix(2, {1.0, 0.0, 0.0, 2.0}));
  CHECK(SymmetricMatrix::identity(2).diagonal() == std::vector<double>{1.0, 1.0});
  CHECK_THROWS_AS(SymmetricMatrix(2, {1.0, 2.0, 3.0}), lowbit::invalid_argument);
  CHECK_THROWS_AS(SymmetricMatrix(2, {1.0, 2.0, 2.5, 1.0}), lowbit::invalid_argument);
  CHECK_THROWS_AS(SymmetricMatrix(2, {1.0, std::nan(""), 0.0, 1.0}), lowbit::invalid_argument);
  CHECK(std::isnan(SymmetricMatrix(2, {1.0, std::nan(""), std::nan(""), 1.0})(1, 0)));
}
