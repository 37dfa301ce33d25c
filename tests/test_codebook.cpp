#include <catch2/catch.hpp>

#include "support/random_data.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "lowbit/quant/codebook.hpp"

using lowbit::ElementFormat;
using lowbit::Granularity;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;
using lowbit::ScalarFormat;
using lowbit::Scheme;

namespace {

std::vector<float> random_matrix(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  return lowbit::test::weights_with_outliers(rows, cols, seed);
}

Scheme codebook_scheme(int bits, std::size_t dim, Granularity books,
                       ScalarFormat format = ScalarFormat::f32,
                       Granularity scales = Granularity::none()) {
  Scheme scheme{.element = ElementFormat::codebook,
                .bits = bits,
                .granularity = scales,
                .scale_format = ScalarFormat::f16,
                .vector_dim = dim,
                .codebook_granularity = books,
                .codebook_format = format};
  scheme.validate();
  return scheme;
}

// The codebooks' sets of vectors, enumerated independently of the library: for codebook b, the
// rows and the column range it serves.
struct Block {
  std::size_t row_begin, row_end, col_begin, col_end;
};
Block block_of(const Scheme& scheme, std::size_t b, std::size_t rows, std::size_t cols) {
  const Granularity& g = scheme.codebook_granularity;
  if (g.kind == Granularity::Kind::channel) return {b, b + 1, 0, cols};
  if (g.kind == Granularity::Kind::group) {
    const std::size_t per_row = (cols + g.group_size - 1) / g.group_size;
    const std::size_t begin = (b % per_row) * g.group_size;
    return {b / per_row, b / per_row + 1, begin, std::min(cols, begin + g.group_size)};
  }
  return {0, rows, 0, cols};
}

// Sum over the matrix of importance * (w - dequantized)^2.
double weighted_error(const std::vector<float>& w, const std::vector<float>& back,
                      const std::vector<float>& importance) {
  double total = 0.0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double diff = static_cast<double>(w[i]) - back[i];
    total += (importance.empty() ? 1.0 : importance[i]) * diff * diff;
  }
  return total;
}

// Every code is the nearest stored entry of its codebook for its vector (the present components,
// weighted by importance), in the dequantized domain.
void check_codes_nearest(const QuantizedMatrix& q, const std::vector<float>& w,
                         const std::vector<float>& importance) {
  const Scheme& scheme = q.scheme();
  const std::size_t rows = q.rows(), cols = q.cols(), dim = scheme.vector_dim;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t v = 0; v < scheme.codes_per_row(cols); ++v) {
      const std::size_t start = v * dim, length = std::min(dim, cols - start);
      const std::size_t book = q.codebook_index(r, start);
      const float s = q.scale(q.scale_index(r, start));
      const auto cost = [&](std::size_t entry) {
        double total = 0.0;
        for (std::size_t j = 0; j < length; ++j) {
          const double diff = static_cast<double>(w[r * cols + start + j]) -
                              static_cast<double>(q.codebook_value(book, entry, j)) * s;
          total += (importance.empty() ? 1.0 : importance[r * cols + start + j]) * diff * diff;
        }
        return total;
      };
      double best = std::numeric_limits<double>::infinity();
      for (std::size_t e = 0; e < scheme.codebook_entries(); ++e) best = std::min(best, cost(e));
      const double mine = cost(q.code(r, v));
      REQUIRE(mine <= best * (1.0 + 1e-5) + 1e-30);
    }
}

}  // namespace

TEST_CASE("codebook error equals the k-means objective of each codebook", "[quant][codebook]") {
  const std::size_t rows = 6, cols = 90;  // 90: ragged groups of 32 and ragged vectors of 4
  const auto w = random_matrix(rows, cols, 1);
  for (std::size_t dim : {1u, 2u, 4u})
    for (const Granularity& books :
         {Granularity::per_tensor(), Granularity::per_channel(), Granularity::per_group(32)}) {
      const Scheme scheme = codebook_scheme(dim == 4 ? 4 : 3, dim, books);
      INFO(scheme.to_string());
      lowbit::CodebookOptions options;
      options.seed = 5;
      const QuantizedMatrix q =
          lowbit::quantize_codebook(MatrixView<const float>(w.data(), rows, cols), scheme, options);
      // The same k-means problems, built here: vectors of the block, missing components weight 0.
      double objective = 0.0;
      for (std::size_t b = 0; b < q.codebook_grid().size(); ++b) {
        const Block block = block_of(scheme, b, rows, cols);
        std::vector<float> points, weights;
        bool ragged = false;
        for (std::size_t r = block.row_begin; r < block.row_end; ++r)
          for (std::size_t c = block.col_begin; c < block.col_end; c += dim)
            for (std::size_t j = 0; j < dim; ++j) {
              const bool present = c + j < block.col_end;
              ragged |= !present;
              points.push_back(present ? w[r * cols + c + j] : 0.0f);
              weights.push_back(present ? 1.0f : 0.0f);
            }
        if (!ragged || dim == 1) weights.clear();
        lowbit::KMeansOptions kmeans_options;
        kmeans_options.clusters = 1 << scheme.bits;
        kmeans_options.max_iterations = options.iterations;
        kmeans_options.seed = lowbit::detail::codebook_seed(options.seed, b);
        const auto result = lowbit::kmeans(points, dim, weights, kmeans_options);
        objective += result.error;
        // f32 codebooks store the centers exactly.
        for (std::size_t e = 0; e < scheme.codebook_entries(); ++e)
          for (std::size_t j = 0; j < dim; ++j)
            REQUIRE(q.codebook_value(b, e, j) == result.centers[e * dim + j]);
      }
      CHECK(weighted_error(w, q.dequantize(), {}) == Approx(objective).epsilon(1e-9));
      check_codes_nearest(q, w, {});
    }
}

TEST_CASE("codes are the nearest stored entries for every layout and format", "[quant][codebook]") {
  const std::size_t rows = 5, cols = 70;
  const auto w = random_matrix(rows, cols, 2);
  std::mt19937 rng(3);
  std::vector<float> importance(rows * cols);
  for (float& x : importance) x = static_cast<float>(rng() % 1000) / 100.0f;
  for (std::size_t dim : {1u, 2u, 4u})
    for (const Granularity& books : {Granularity::per_tensor(), Granularity::per_channel(),
                                     Granularity::per_group(16), Granularity::per_group(24)})
      for (ScalarFormat format : {ScalarFormat::f32, ScalarFormat::f16, ScalarFormat::bf16})
        for (const Granularity& scales : {Granularity::none(), Granularity::per_group(8)})
          for (bool weighted : {false, true}) {
            if (books.kind == Granularity::Kind::group && books.group_size % dim != 0) continue;
            const Scheme scheme = codebook_scheme(2, dim, books, format, scales);
            INFO(scheme.to_string() << (weighted ? " weighted" : ""));
            lowbit::CodebookOptions options;
            if (weighted) options.importance = {importance.data(), rows, cols};
            const QuantizedMatrix q = lowbit::quantize_codebook(
                MatrixView<const float>(w.data(), rows, cols), scheme, options);
            CHECK(q.scheme() == scheme);
            check_codes_nearest(q, w, weighted ? importance : std::vector<float>{});
            if (scales.kind != Granularity::Kind::none)
              for (std::size_t i = 0; i < q.scale_grid().size(); ++i) {
                // The stored scale covers the group: normalized values lie in [-1, 1].
                float absmax = 0.0f;
                for (std::size_t c = i % q.scale_grid().cols * 8;
                     c < std::min(cols, (i % q.scale_grid().cols + 1) * 8); ++c)
                  absmax = std::max(absmax, std::abs(w[(i / q.scale_grid().cols) * cols + c]));
                REQUIRE(q.scale(i) >= absmax);
              }
          }
}

TEST_CASE("codebook bits per weight", "[quant][codebook]") {
  const std::size_t rows = 16, cols = 100;
  const auto w = random_matrix(rows, cols, 4);
  // 4-bit indices of 2-vectors, a codebook per channel in f16: 50 codes of 4 bits per row and
  // 16 x 2 f16 values per row.
  const Scheme per_channel = codebook_scheme(4, 2, Granularity::per_channel(), ScalarFormat::f16);
  const QuantizedMatrix q =
      lowbit::quantize_codebook(MatrixView<const float>(w.data(), rows, cols), per_channel);
  CHECK(q.bits_per_weight() == Approx((50.0 * 4 + 16 * 2 * 16) / 100.0));
  // 3-bit scalar codebook per tensor with f16 scales in groups of 32 (4 groups, the last short).
  const Scheme scaled = codebook_scheme(3, 1, Granularity::per_tensor(), ScalarFormat::bf16,
                                        Granularity::per_group(32));
  const QuantizedMatrix s =
      lowbit::quantize_codebook(MatrixView<const float>(w.data(), rows, cols), scaled);
  CHECK(s.bits_per_weight() ==
        Approx((rows * cols * 3.0 + rows * 4 * 16.0 + 8 * 16.0) / (rows * cols)));
  // Ragged vectors: 4-vectors over 10 columns are 3 codes a row.
  const Scheme ragged = codebook_scheme(2, 4, Granularity::per_tensor());
  CHECK(ragged.codes_per_row(10) == 3u);
  CHECK(ragged.bits_per_weight(2, 10) == Approx((2 * 3 * 2.0 + 4 * 4 * 32.0) / 20.0));
}

TEST_CASE("all-zero and constant matrices reconstruct exactly", "[quant][codebook]") {
  const std::size_t rows = 4, cols = 38;
  for (float c : {0.0f, 0.25f, -1.5f, 3.0e-3f})
    for (ScalarFormat format : {ScalarFormat::f32, ScalarFormat::f16, ScalarFormat::bf16})
      for (std::size_t dim : {1u, 2u, 4u})
        for (const Granularity& scales : {Granularity::none(), Granularity::per_group(8)})
          for (const Granularity& books : {Granularity::per_tensor(), Granularity::per_channel(),
                                           Granularity::per_group(16)}) {
            // Exactness needs the constant to be a value of the format that stores it.
            const ScalarFormat holder =
                scales.kind == Granularity::Kind::none ? format : ScalarFormat::f16;
            if (lowbit::round_scalar(holder, c) != c) continue;
            const Scheme scheme = codebook_scheme(2, dim, books, format, scales);
            INFO(scheme.to_string() << " constant " << c);
            const std::vector<float> w(rows * cols, c);
            const QuantizedMatrix q =
                lowbit::quantize_codebook(MatrixView<const float>(w.data(), rows, cols), scheme);
            REQUIRE(q.dequantize() == w);
          }
  // Rows that are each constant, different from one another, per-channel codebooks.
  std::vector<float> w(3 * 10);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i / 10) - 1.0f;
  const QuantizedMatrix q = lowbit::quantize_codebook(
      MatrixView<const float>(w.data(), 3, 10), codebook_scheme(1, 4, Granularity::per_channel()));
  CHECK(q.dequantize() == w);
}

TEST_CASE("values of few distinct levels are reconstructed exactly", "[quant][codebook]") {
  // Four distinct values and 2-bit codes: k-means finds them all.
  const std::size_t rows = 8, cols = 64;
  std::vector<float> w(rows * cols);
  const float levels[] = {-0.5f, -0.125f, 0.25f, 0.75f};
  std::mt19937 rng(9);
  for (float& x : w) x = levels[rng() % 4];
  const QuantizedMatrix q = lowbit::quantize_codebook(
      MatrixView<const float>(w.data(), rows, cols),
      codebook_scheme(2, 1, Granularity::per_tensor(), ScalarFormat::f16));
  CHECK(q.dequantize() == w);
}

TEST_CASE("importance steers the codebook", "[quant][codebook]") {
  const std::size_t rows = 4, cols = 256;
  const auto w = random_matrix(rows, cols, 6);
  std::vector<float> importance(rows * cols);
  for (std::size_t i = 0; i < importance.size(); ++i) importance[i] = (i % 8 == 0) ? 100.0f : 0.01f;
  const Scheme scheme = codebook_scheme(2, 1, Granularity::per_tensor());
  lowbit::CodebookOptions options;
  const QuantizedMatrix plain =
      lowbit::quantize_codebook(MatrixView<const float>(w.data(), rows, cols), scheme, options);
  options.importance = {importance.data(), rows, cols};
  const QuantizedMatrix steered =
      lowbit::quantize_codebook(MatrixView<const float>(w.data(), rows, cols), scheme, options);
  CHECK(weighted_error(w, steered.dequantize(), importance) <
        weighted_error(w, plain.dequantize(), importance));
}

TEST_CASE("codebook quantization does not depend on the thread count", "[quant][codebook]") {
#ifdef _OPENMP
  const std::size_t rows = 64, cols = 300;
  const auto w = random_matrix(rows, cols, 7);
  const Scheme scheme = codebook_scheme(4, 2, Granularity::per_channel(), ScalarFormat::f16);
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  const QuantizedMatrix one =
      lowbit::quantize_codebook(MatrixView<const float>(w.data(), rows, cols), scheme);
  omp_set_num_threads(3);
  const QuantizedMatrix three =
      lowbit::quantize_codebook(MatrixView<const float>(w.data(), rows, cols), scheme);
  omp_set_num_threads(before);
  CHECK(std::vector<std::uint32_t>(one.packed_codes().begin(), one.packed_codes().end()) ==
        std::vector<std::uint32_t>(three.packed_codes().begin(), three.packed_codes().end()));
  CHECK(std::vector<std::uint8_t>(one.codebook_bytes().begin(), one.codebook_bytes().end()) ==
        std::vector<std::uint8_t>(three.codebook_bytes().begin(), three.codebook_bytes().end()));
#endif
}

TEST_CASE("codebook quantization rejects bad input", "[quant][codebook]") {
  std::vector<float> w(4 * 8, 0.5f);
  w[2 * 8 + 5] = std::numeric_limits<float>::quiet_NaN();
  lowbit::CodebookOptions options;
  options.tensor_name = "layers.0.attention.wq";
  const Scheme scheme = codebook_scheme(2, 2, Granularity::per_tensor());
  CHECK_THROWS_AS(
      lowbit::quantize_codebook(MatrixView<const float>(w.data(), 4, 8), scheme, options),
      lowbit::invalid_value);
  CHECK_THROWS_WITH(
      lowbit::quantize_codebook(MatrixView<const float>(w.data(), 4, 8), scheme, options),
      Catch::Contains("NaN at row 2, column 5") && Catch::Contains("layers.0.attention.wq"));
  w[2 * 8 + 5] = 0.0f;
  w[3 * 8 + 0] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(lowbit::quantize_codebook(MatrixView<const float>(w.data(), 4, 8), scheme),
                    Catch::Contains("Inf at row 3, column 0"));
  w[3 * 8 + 0] = 0.0f;
  // Importance of another shape, or negative.
  std::vector<float> importance(4 * 7, 1.0f);
  options.importance = {importance.data(), 4, 7};
  CHECK_THROWS_AS(
      lowbit::quantize_codebook(MatrixView<const float>(w.data(), 4, 8), scheme, options),
      lowbit::invalid_argument);
  importance.assign(4 * 8, 1.0f);
  importance[9] = -1.0f;
  options.importance = {importance.data(), 4, 8};
  CHECK_THROWS_AS(
      lowbit::quantize_codebook(MatrixView<const float>(w.data(), 4, 8), scheme, options),
      lowbit::invalid_value);
  // Not a codebook scheme.
  CHECK_THROWS_AS(lowbit::quantize_codebook(MatrixView<const float>(w.data(), 4, 8),
                                            Scheme::symmetric_int(4, Granularity::per_group(8))),
                  lowbit::unsupported);
}

TEST_CASE("empty matrices quantize", "[quant][codebook]") {
  const QuantizedMatrix q = lowbit::quantize_codebook(
      MatrixView<const float>(nullptr, 0, 16), codebook_scheme(2, 2, Granularity::per_tensor()));
  CHECK(q.rows() == 0);
  const QuantizedMatrix r = lowbit::quantize_codebook(
      MatrixView<const float>(nullptr, 3, 0), codebook_scheme(2, 2, Granularity::per_channel()));
  CHECK(r.dequantize().empty());
}
