#include <catch2/catch.hpp>

#include "support/random_data.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <Eigen/Dense>

#include "lowbit/algo/calibration.hpp"

using lowbit::InputStatistics;
using lowbit::MatrixView;

TEST_CASE("InputStatistics accumulates 2/n X^T X, mean |x| and max |x|", "[algo][calibration]") {
  const std::size_t n = 37, in = 19;
  const auto x = lowbit::test::gaussian(n * in, 1, 1.0f);
  InputStatistics all(in);
  CHECK(all.samples() == 0);
  CHECK(all.hessian().isZero());
  all.add(MatrixView<const float>(x.data(), n, in));
  REQUIRE(all.samples() == n);

  Eigen::MatrixXd direct =
      Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(in), static_cast<Eigen::Index>(in));
  std::vector<double> mean(in, 0.0);
  std::vector<float> max(in, 0.0f);
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t i = 0; i < in; ++i) {
      mean[i] += std::abs(x[t * in + i]) / static_cast<double>(n);
      max[i] = std::max(max[i], std::abs(x[t * in + i]));
      for (std::size_t j = 0; j < in; ++j)
        direct(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) +=
            2.0 / static_cast<double>(n) * x[t * in + i] * x[t * in + j];
    }
  const Eigen::MatrixXd h = all.hessian();
  CHECK((h - direct).cwiseAbs().maxCoeff() <= 1e-12 * direct.cwiseAbs().maxCoeff());
  CHECK(h == h.transpose());
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
  CHECK((batched.hessian() - h).cwiseAbs().maxCoeff() <= 1e-12 * h.cwiseAbs().maxCoeff());
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
