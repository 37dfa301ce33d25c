#include <catch2/catch.hpp>

#include "support/random_data.hpp"

#include <random>
#include <vector>

#include "lowbit/quant/clipping.hpp"
#include "lowbit/quant/linear.hpp"

using lowbit::ClipSearch;
using lowbit::Granularity;
using lowbit::MatrixView;
using lowbit::Scheme;

namespace {

double squared_error(const std::vector<float>& a, const std::vector<float>& b) {
  double total = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) total += (a[i] - b[i]) * double(a[i] - b[i]);
  return total;
}

using lowbit::test::heavy_tailed;

}  // namespace

TEST_CASE("the clip search tries GPTQ's grid of shrink factors", "[quant][clipping]") {
  const ClipSearch clip = ClipSearch::mse();
  CHECK(clip.candidates() == 80);
  CHECK(clip.factor(0) == 1.0f);
  CHECK(clip.factor(79) == Approx(0.21f));
  CHECK(ClipSearch::none().candidates() == 1);
}

TEST_CASE("best_factor returns the candidate of least error", "[quant][clipping]") {
  const ClipSearch clip = ClipSearch::mse(10, 0.5f);
  std::vector<float> tried;
  const float best = clip.best_factor([&](float f) {
    tried.push_back(f);
    return (f - 0.72) * (f - 0.72);
  });
  CHECK(tried.size() == 5);
  CHECK(best == Approx(0.7f));
}

TEST_CASE("the MSE clip search never loses to min/max and wins on heavy tails",
          "[quant][clipping]") {
  const std::size_t rows = 32, cols = 256;
  const auto w = heavy_tailed(rows * cols, 11);
  for (int bits : {2, 3, 4}) {
    for (const Granularity& g :
         {Granularity::per_tensor(), Granularity::per_channel(), Granularity::per_group(64)}) {
      for (bool symmetric : {true, false}) {
        const Scheme scheme =
            symmetric ? Scheme::symmetric_int(bits, g) : Scheme::asymmetric_int(bits, g);
        INFO(scheme.to_string());
        const MatrixView<const float> view(w.data(), rows, cols);
        lowbit::LinearQuantizeOptions clipped;
        clipped.clip = ClipSearch::mse();
        const double plain = squared_error(w, lowbit::quantize_linear(view, scheme).dequantize());
        const double searched =
            squared_error(w, lowbit::quantize_linear(view, scheme, clipped).dequantize());
        CHECK(searched <= plain);
        if (bits <= 3) CHECK(searched < 0.9 * plain);  // heavy tails: clipping clearly pays
      }
    }
  }
}

TEST_CASE("the clip search matches a brute-force search per group", "[quant][clipping]") {
  const std::size_t cols = 96;
  const auto w = heavy_tailed(cols, 12);
  const Scheme scheme =
      Scheme::asymmetric_int(3, Granularity::per_group(32), lowbit::ScalarFormat::f32);
  lowbit::LinearQuantizeOptions options;
  options.clip = ClipSearch::mse();
  const auto q =
      lowbit::quantize_linear(MatrixView<const float>(w.data(), 1, cols), scheme, options);
  const lowbit::LinearGrid grid(scheme);
  for (std::size_t g = 0; g < 3; ++g) {
    const std::span<const float> group(w.data() + 32 * g, 32);
    double best = 1e300;
    lowbit::LinearParams best_params;
    for (int i = 0; i < options.clip.candidates(); ++i) {
      const auto p = grid.params(lowbit::ValueRange::of(group), options.clip.factor(i));
      double err = 0;
      for (float x : group)
        err += (x - grid.dequantize(grid.quantize(x, p), p)) *
               double(x - grid.dequantize(grid.quantize(x, p), p));
      if (err < best) {
        best = err;
        best_params = p;
      }
    }
    CHECK(q.scale(g) == best_params.scale);
    CHECK(q.zero(g) == best_params.zero);
  }
}
