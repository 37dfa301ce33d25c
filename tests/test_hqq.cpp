#include <catch2/catch.hpp>

#include "support/random_data.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowbit/algo/hqq.hpp"
#include "lowbit/io/llama2c.hpp"
#include "lowbit/model/llama.hpp"
#include "lowbit/quant/linear.hpp"

#ifndef LOWBIT_DATA_DIR
#define LOWBIT_DATA_DIR "../shared/data"
#endif

using lowbit::Granularity;
using lowbit::HqqOptions;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;
using lowbit::ScalarFormat;
using lowbit::Scheme;
using lowbit::ZeroFormat;

namespace {

using lowbit::test::gaussian;

// Heavy tails, as LLM weights have: Student's t with 3 degrees of freedom.
std::vector<float> student_t(std::size_t n, std::uint32_t seed, float sigma = 0.02f) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> w(n);
  for (float& x : w) x = sigma * t(rng);
  return w;
}

// --- A plain transcription of hqq 0.2.8's default solver (mobiusml/hqq, hqq/core/optimize.py,
// optimize_weights_proximal_legacy and its _step), written from the algorithm as the paper and
// that code state it, in float as the reference computes on the CPU, sums in double: every group
// of the matrix iterates together; each iteration quantizes with the current zero point, measures
// the l1 error, shrinks and updates the zero point; the early stop compares the mean l1 error of
// the whole matrix with the smallest before it and stops, keeping the zero points just updated,
// unless it is strictly smaller. ---
struct ReferenceGroup {
  float scale = 0.0f;
  float zero = 0.0f;
};

struct ReferenceResult {
  std::vector<ReferenceGroup> groups;  // row by row, group by group
  std::vector<double> errors;          // mean |w - Wr| over the matrix, iteration by iteration
  int updates = 0;                     // iterations run (each updates the zero points)
};

std::vector<float> reference_levels(const std::vector<float>& w, float s, float z, float top) {
  std::vector<float> levels;
  for (float x : w) levels.push_back(std::clamp(std::nearbyint(x / s + z), 0.0f, top));
  return levels;
}

std::vector<float> group_of(const std::vector<float>& w, std::size_t cols, std::size_t row,
                            std::size_t start, std::size_t length) {
  return {w.begin() + static_cast<std::ptrdiff_t>(row * cols + start),
          w.begin() + static_cast<std::ptrdiff_t>(row * cols + start + length)};
}

// One iteration on one group: returns sum |w - Wr| of (s, z) and updates them.
double reference_step(const std::vector<float>& w, float& s, float& z, float beta, float top,
                      const HqqOptions& o) {
  const std::vector<float> wq = reference_levels(w, s, z, top);
  double error = 0.0;
  std::vector<float> target(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    const float wr = (wq[i] - z) * s;
    const float e = w[i] - wr;
    error += std::abs(e);
    const float a = std::abs(e);
    const float we =
        (e < 0 ? -1.0f : 1.0f) * std::max(a - std::pow(a, o.lp_norm - 1.0f) / beta, 0.0f);
    target[i] = w[i] - we;
  }
  if (o.optimize_scale) {
    // Least squares of target ~ (wq - z) * s over (s, z).
    double mq = 0, mt = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      mq += wq[i];
      mt += target[i];
    }
    mq /= double(w.size());
    mt /= double(w.size());
    double cov = 0, var = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      cov += (wq[i] - mq) * (target[i] - mt);
      var += (wq[i] - mq) * (wq[i] - mq);
    }
    if (var > 0 && cov / var > 0) s = lowbit::round_scalar(o.scale_format, float(cov / var));
  }
  double mean = 0.0;
  for (std::size_t i = 0; i < w.size(); ++i) mean += wq[i] - target[i] / s;
  z = static_cast<float>(mean / double(w.size()));
  return error;
}

ReferenceResult reference_hqq(const std::vector<float>& w, std::size_t rows, std::size_t cols,
                              std::size_t group, int bits, const HqqOptions& o) {
  const float top = static_cast<float>((1 << bits) - 1);
  ReferenceResult result;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t start = 0; start < cols; start += group) {
      const auto g = group_of(w, cols, r, start, std::min(group, cols - start));
      const float lo = *std::min_element(g.begin(), g.end());
      const float hi = *std::max_element(g.begin(), g.end());
      REQUIRE(lo < hi);  // constant groups are tested separately
      const float s = lowbit::round_scalar_up(o.scale_format,
                                              static_cast<float>((double(hi) - double(lo)) / top));
      result.groups.push_back({s, -lo / s});
    }
  float beta = o.beta;
  double best = std::numeric_limits<double>::infinity();
  for (int it = 0; it < o.iterations; ++it) {
    // Summed per group, then per row, then over the rows, as lowbit adds them.
    double total = 0.0;
    std::size_t k = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      double row_total = 0.0;
      for (std::size_t start = 0; start < cols; start += group, ++k)
        row_total += reference_step(group_of(w, cols, r, start, std::min(group, cols - start)),
                                    result.groups[k].scale, result.groups[k].zero, beta, top, o);
      total += row_total;
    }
    ++result.updates;
    result.errors.push_back(total / double(rows * cols));
    beta *= o.kappa;  // hqq 0.2.8's default solver never does this: kappa is 1 by default
    if (!o.early_stop) continue;
    if (!(total < best)) break;
    best = total;
  }
  return result;
}

struct Errors {
  double squared = 0.0;  // sum of squared errors
  double lp = 0.0;       // sum |error|^0.7, HQQ's objective
  double l1 = 0.0;
};

Errors errors(const std::vector<float>& w, const std::vector<float>& back) {
  Errors e;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double d = static_cast<double>(w[i]) - static_cast<double>(back[i]);
    e.squared += d * d;
    e.lp += std::pow(std::abs(d), 0.7);
    e.l1 += std::abs(d);
  }
  return e;
}

}  // namespace

TEST_CASE("HQQ matches a direct transcription of hqq 0.2.8's iteration", "[algo][hqq]") {
  // 150 columns, group 64: groups of 64, 64 and a ragged 22.
  const std::size_t rows = 12, cols = 150;
  std::size_t stopped_early = 0;
  for (bool heavy : {false, true}) {
    const auto w = heavy ? student_t(rows * cols, 11) : gaussian(rows * cols, 10);
    for (int bits = 2; bits <= 8; ++bits) {
      for (ScalarFormat scale_format : {ScalarFormat::f32, ScalarFormat::f16}) {
        for (bool optimize_scale : {false, true}) {
          for (bool early_stop : {true, false}) {
            for (float kappa : {1.0f, 1.01f}) {
              HqqOptions o;
              o.scale_format = scale_format;
              o.zero_format = ZeroFormat::f32;
              o.optimize_scale = optimize_scale;
              o.early_stop = early_stop;
              o.kappa = kappa;
              INFO("bits " << bits << " scale " << lowbit::to_string(scale_format)
                           << " optimize_scale " << optimize_scale << " early_stop " << early_stop
                           << " kappa " << kappa << " heavy " << heavy);
              const QuantizedMatrix q =
                  lowbit::quantize_hqq(MatrixView<const float>(w.data(), rows, cols), bits, o);
              CHECK(q.scheme() == Scheme::asymmetric_int(bits, Granularity::per_group(64),
                                                         scale_format, ZeroFormat::f32));
              const ReferenceResult ref = reference_hqq(w, rows, cols, 64, bits, o);
              if (ref.updates < o.iterations) ++stopped_early;
              const int top = (1 << bits) - 1;
              std::size_t k = 0;
              for (std::size_t r = 0; r < rows; ++r)
                for (std::size_t start = 0; start < cols; start += 64, ++k) {
                  const std::size_t length = std::min<std::size_t>(64, cols - start);
                  const auto group = group_of(w, cols, r, start, length);
                  const std::size_t index = q.scale_index(r, start);
                  const float s = q.scale(index), z = q.zero(index);
                  INFO("row " << r << " group " << start / 64);
                  // The same arithmetic in the same order: equal, not close.
                  REQUIRE(s == ref.groups[k].scale);
                  REQUIRE(z == ref.groups[k].zero);
                  // The codes: exactly round-to-nearest against the stored scale and zero.
                  for (std::size_t i = 0; i < length; ++i) {
                    const float level =
                        std::clamp(std::nearbyint(group[i] / s + z), 0.0f, static_cast<float>(top));
                    REQUIRE(q.code(r, start + i) == static_cast<int>(level));
                  }
                }
            }
          }
        }
      }
    }
  }
  CHECK(stopped_early > 0);  // the early stop was exercised
}

TEST_CASE("HQQ stores the zero point in its format and codes match what dequantize reads",
          "[algo][hqq]") {
  const std::size_t rows = 8, cols = 128;
  const auto w = student_t(rows * cols, 12);
  for (ZeroFormat zero_format : {ZeroFormat::f16, ZeroFormat::bf16, ZeroFormat::f32}) {
    for (ScalarFormat scale_format : {ScalarFormat::f32, ScalarFormat::f16, ScalarFormat::bf16}) {
      HqqOptions o;
      o.zero_format = zero_format;
      o.scale_format = scale_format;
      const QuantizedMatrix q =
          lowbit::quantize_hqq(MatrixView<const float>(w.data(), rows, cols), 3, o);
      INFO(q.scheme().to_string());
      const auto back = q.dequantize();
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) {
          const std::size_t index = q.scale_index(r, c);
          const float s = q.scale(index), z = q.zero(index);
          CHECK(z == lowbit::round_scalar(lowbit::zero_scalar_format(zero_format), z));
          const float level = std::clamp(std::nearbyint(w[r * cols + c] / s + z), 0.0f, 7.0f);
          REQUIRE(q.code(r, c) == static_cast<int>(level));
          REQUIRE(back[r * cols + c] == (level - z) * s);
        }
    }
  }
}

TEST_CASE("HQQ has a lower error than min/max RTN at 2, 3 and 4 bits", "[algo][hqq]") {
  const std::size_t rows = 64, cols = 512;
  for (bool heavy : {false, true}) {
    const auto w = heavy ? student_t(rows * cols, 21) : gaussian(rows * cols, 20);
    const MatrixView<const float> view(w.data(), rows, cols);
    for (int bits : {2, 3, 4}) {
      const Errors rtn = errors(
          w, lowbit::quantize_linear(view, Scheme::asymmetric_int(bits, Granularity::per_group(64)))
                 .dequantize());
      HqqOptions start;
      start.iterations = 0;  // the min/max parameters HQQ starts from
      const Errors minmax = errors(w, lowbit::quantize_hqq(view, bits, start).dequantize());
      const Errors hqq = errors(w, lowbit::quantize_hqq(view, bits).dequantize());
      INFO((heavy ? "student-t" : "gaussian")
           << " bits " << bits << ": SSE rtn " << rtn.squared << " minmax " << minmax.squared
           << " hqq " << hqq.squared << "; l0.7 rtn " << rtn.lp << " minmax " << minmax.lp
           << " hqq " << hqq.lp);
      CHECK(hqq.squared <= rtn.squared);
      CHECK(hqq.lp <= rtn.lp);
      CHECK(hqq.lp < minmax.lp);  // the iterations lower their own objective
      CHECK(hqq.l1 < minmax.l1);  // and the error the early stop watches
      // Measured (seeds as here), HQQ / RTN sum of squared errors and l0.7 objective:
      //   gaussian  2 bits 0.898 0.952, 3 bits 0.894 0.949, 4 bits 0.883 0.944
      //   student-t 2 bits 0.987 0.996, 3 bits 0.937 0.964, 4 bits 0.893 0.946
      // At 2 bits on heavy tails the zero point alone barely beats RTN's integer zero point, which
      // puts a level exactly on 0 where most of the weights are (the min/max start with its
      // fractional zero is twice RTN's error there); optimizing the scale too is what helps.
      if (!heavy || bits > 2) CHECK(hqq.squared < 0.96 * rtn.squared);
      HqqOptions with_scale;
      with_scale.optimize_scale = true;
      const Errors scaled = errors(w, lowbit::quantize_hqq(view, bits, with_scale).dequantize());
      INFO("with optimize_scale: SSE " << scaled.squared << " l0.7 " << scaled.lp);
      CHECK(scaled.squared <= hqq.squared);
      CHECK(scaled.lp <= hqq.lp);
      if (bits <= 3) {
        // Measured: SSE 0.50 / 0.77 (gaussian 2 / 3 bits), 0.69 / 0.81 (student-t) of RTN's.
        CHECK(scaled.squared < 0.85 * rtn.squared);
        CHECK(scaled.lp < 0.92 * rtn.lp);
      }
    }
  }
}

TEST_CASE("HQQ's early stop is hqq 0.2.8's: the whole matrix's error, the last zero points",
          "[algo][hqq]") {
  const std::size_t rows = 32, cols = 128;  // two groups per row
  const auto w = student_t(rows * cols, 30);
  const MatrixView<const float> view(w.data(), rows, cols);
  std::size_t stopped_early = 0;
  for (int bits : {2, 3, 4}) {
    HqqOptions o;
    o.zero_format = ZeroFormat::f32;
    o.scale_format = ScalarFormat::f32;
    HqqOptions all = o;
    all.early_stop = false;
    const ReferenceResult trace = reference_hqq(w, rows, cols, 64, bits, all);  // every iteration
    const ReferenceResult ref = reference_hqq(w, rows, cols, 64, bits, o);
    INFO("bits " << bits << ": " << ref.updates << " iterations");
    REQUIRE(ref.updates >= 1);
    // The stop: every error before the last decreased; the last did not, unless all ran.
    for (std::size_t i = 1; i + 1 < ref.errors.size(); ++i)
      CHECK(ref.errors[i] < ref.errors[i - 1]);
    if (ref.updates < o.iterations) {
      ++stopped_early;
      REQUIRE(ref.errors.size() >= 2);
      CHECK(ref.errors.back() >= ref.errors[ref.errors.size() - 2]);
    }
    // The stopped run returns what the full run holds after as many iterations: the zero points
    // of the iteration that stopped it, for every group alike.
    HqqOptions truncated = all;
    truncated.iterations = ref.updates;
    const QuantizedMatrix stopped = lowbit::quantize_hqq(view, bits, o);
    const QuantizedMatrix cut = lowbit::quantize_hqq(view, bits, truncated);
    const QuantizedMatrix full = lowbit::quantize_hqq(view, bits, all);
    for (std::size_t k = 0; k < rows * 2; ++k) {
      INFO("group " << k);
      CHECK(stopped.zero(k) == cut.zero(k));
      CHECK(stopped.zero(k) == ref.groups[k].zero);
      // Without the early stop the last iterate is returned, as the reference's slow solver does.
      CHECK(full.zero(k) == trace.groups[k].zero);
    }
  }
  CHECK(stopped_early > 0);  // the stop was exercised
}

TEST_CASE("HQQ: all-zero and constant groups dequantize exactly", "[algo][hqq]") {
  const std::size_t rows = 3, cols = 70;  // groups of 64 and a ragged 6
  for (float c : {0.0f, 0.3f, -0.3f, 0.25f, -2.0f, 1e-30f, 1e-40f}) {
    for (ScalarFormat scale_format : {ScalarFormat::f32, ScalarFormat::f16, ScalarFormat::bf16}) {
      if (lowbit::round_scalar(scale_format, std::abs(c)) != std::abs(c)) continue;
      for (int bits = 2; bits <= 8; ++bits) {
        HqqOptions o;
        o.scale_format = scale_format;
        INFO("constant " << c << " bits " << bits << " " << lowbit::to_string(scale_format));
        const std::vector<float> w(rows * cols, c);
        const QuantizedMatrix q =
            lowbit::quantize_hqq(MatrixView<const float>(w.data(), rows, cols), bits, o);
        REQUIRE(q.dequantize() == w);
      }
    }
  }
  // Groups each constant, differing from one another, next to a group with a real range.
  std::vector<float> w(2 * 96);
  for (std::size_t i = 0; i < 64; ++i) w[i] = 0.0f;
  for (std::size_t i = 64; i < 96; ++i) w[i] = -0.5f;
  for (std::size_t i = 96; i < 160; ++i) w[i] = 0.01f * static_cast<float>(i % 7) - 0.03f;
  for (std::size_t i = 160; i < 192; ++i) w[i] = 0.125f;
  const auto back = lowbit::quantize_hqq(MatrixView<const float>(w.data(), 2, 96), 4).dequantize();
  for (std::size_t i = 0; i < 96; ++i) CHECK(back[i] == w[i]);
  for (std::size_t i = 160; i < 192; ++i) CHECK(back[i] == w[i]);
  for (std::size_t i = 96; i < 160; ++i) CHECK(std::abs(back[i] - w[i]) < 0.01f);
}

TEST_CASE("HQQ: ragged groups, one row, one column, empty, other group sizes", "[algo][hqq]") {
  const auto w = gaussian(200, 40);
  for (std::size_t group :
       {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{128}, std::size_t{500}}) {
    HqqOptions o;
    o.group_size = group;
    INFO("group " << group);
    const auto row = lowbit::quantize_hqq(MatrixView<const float>(w.data(), 1, 200), 3, o);
    CHECK(row.scale_grid().cols == (200 + group - 1) / group);
    const auto back = row.dequantize();
    // Within a group, the error is at most half a step unless a value was clamped; HQQ's range
    // is the group's own, so with a measured error it never exceeds the group's width.
    for (std::size_t i = 0; i < 200; ++i) {
      const float s = row.scale(row.scale_index(0, i));
      CHECK(std::abs(back[i] - w[i]) <= 7.0f * s + 1e-7f);
    }
    // One element per group is a constant group: its value is its scale, exact in f32.
    HqqOptions f32 = o;
    f32.scale_format = ScalarFormat::f32;
    CHECK(lowbit::quantize_hqq(MatrixView<const float>(w.data(), 200, 1), 3, f32).dequantize() ==
          w);
    const auto empty = lowbit::quantize_hqq(MatrixView<const float>(nullptr, 0, 0), 3, o);
    CHECK(empty.dequantize().empty());
  }
}

TEST_CASE("HQQ: NaN or Inf is an error naming the position; bad arguments", "[algo][hqq]") {
  std::vector<float> w(4 * 8, 0.5f);
  w[2 * 8 + 5] = std::numeric_limits<float>::quiet_NaN();
  HqqOptions o;
  o.tensor_name = "layers.0.attention.wq";
  const MatrixView<const float> view(w.data(), 4, 8);
  CHECK_THROWS_AS(lowbit::quantize_hqq(view, 4, o), lowbit::invalid_value);
  CHECK_THROWS_WITH(lowbit::quantize_hqq(view, 4, o),
                    Catch::Contains("NaN at row 2, column 5") &&
                        Catch::Contains("layers.0.attention.wq") && Catch::Contains("[4, 8]"));
  w[2 * 8 + 5] = 0.0f;
  w[3 * 8 + 0] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(lowbit::quantize_hqq(view, 4), Catch::Contains("Inf at row 3, column 0"));
  w[3 * 8 + 0] = 0.0f;

  CHECK_NOTHROW(lowbit::quantize_hqq(view, 2));
  CHECK_NOTHROW(lowbit::quantize_hqq(view, 8));
  CHECK_THROWS_AS(lowbit::quantize_hqq(view, 0), lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::quantize_hqq(view, 9), lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::quantize_hqq(view, 9), lowbit::invalid_argument);
  auto bad = [&](auto change) {
    HqqOptions options;
    change(options);
    return [=] { return lowbit::quantize_hqq(view, 4, options); };
  };
  CHECK_THROWS_AS(bad([](HqqOptions& x) { x.zero_format = ZeroFormat::code; })(),
                  lowbit::invalid_argument);
  CHECK_THROWS_WITH(bad([](HqqOptions& x) { x.zero_format = ZeroFormat::code; })(),
                    Catch::Contains("fractional"));
  CHECK_THROWS_AS(bad([](HqqOptions& x) { x.group_size = 0; })(), lowbit::invalid_argument);
  CHECK_THROWS_AS(bad([](HqqOptions& x) { x.lp_norm = 0.0f; })(), lowbit::invalid_argument);
  CHECK_THROWS_AS(bad([](HqqOptions& x) { x.lp_norm = 1.5f; })(), lowbit::invalid_argument);
  CHECK_THROWS_AS(bad([](HqqOptions& x) { x.beta = 0.0f; })(), lowbit::invalid_argument);
  CHECK_THROWS_AS(bad([](HqqOptions& x) { x.kappa = 0.5f; })(), lowbit::invalid_argument);
  CHECK_THROWS_AS(bad([](HqqOptions& x) { x.iterations = -1; })(), lowbit::invalid_argument);
  CHECK_NOTHROW(bad([](HqqOptions& x) { x.lp_norm = 1.0f; })());
}

TEST_CASE("HQQ on stories260K: lower error than RTN g64 at 4 and 3 bits", "[algo][hqq][model]") {
  const auto checkpoint = lowbit::io::read_llama2c(std::filesystem::path(LOWBIT_DATA_DIR) /
                                                   "stories260K" / "stories260K.bin");
  const lowbit::model::LlamaModel model(checkpoint.config, checkpoint.tensors);
  for (int bits : {4, 3}) {
    double reference = 0.0, rtn = 0.0, hqq = 0.0, hqq_scale = 0.0;
    for (const std::string& name : model.linear_names()) {
      const MatrixView<const float> w = model.linear_layer(name).weights();
      const std::vector<float> original(w.data, w.data + w.size());
      HqqOptions o;
      o.tensor_name = name;
      rtn += errors(original, lowbit::quantize_linear(
                                  w, Scheme::asymmetric_int(bits, Granularity::per_group(64)))
                                  .dequantize())
                 .squared;
      hqq += errors(original, lowbit::quantize_hqq(w, bits, o).dequantize()).squared;
      o.optimize_scale = true;
      hqq_scale += errors(original, lowbit::quantize_hqq(w, bits, o).dequantize()).squared;
      for (float x : original) reference += double(x) * double(x);
    }
    const double rtn_rel = std::sqrt(rtn / reference), hqq_rel = std::sqrt(hqq / reference),
                 scale_rel = std::sqrt(hqq_scale / reference);
    INFO("bits " << bits << ": relative RMS error RTN g64 " << rtn_rel << ", HQQ g64 " << hqq_rel
                 << ", HQQ g64 with optimize_scale " << scale_rel);
    // Measured: 4 bits RTN 0.0920, HQQ 0.0881; 3 bits RTN 0.1974, HQQ 0.1850.
    CHECK(hqq_rel < rtn_rel);
    CHECK(scale_rel <= hqq_rel);
  }
}

TEST_CASE("HQQ at 1 bit: two levels per group, fractional zero", "[hqq]") {
  const auto w = gaussian(8 * 128, 21);
  const MatrixView<const float> view(w.data(), 8, 128);
  const auto relative_error = [&](const lowbit::QuantizedMatrix& q) {
    const auto back = q.dequantize();
    double error = 0, signal = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      error += (w[i] - double(back[i])) * (w[i] - double(back[i]));
      signal += double(w[i]) * w[i];
    }
    return error / signal;
  };
  lowbit::HqqOptions start;
  start.iterations = 0;  // the min/max starting point
  lowbit::HqqOptions with_scale;
  with_scale.optimize_scale = true;
  const lowbit::QuantizedMatrix q = lowbit::quantize_hqq(view, 1);
  CHECK(q.scheme().bits == 1);
  CHECK(q.bits_per_weight() == Approx(1.0 + 32.0 / 64));
  const double minmax = relative_error(lowbit::quantize_hqq(view, 1, start));
  const double zero_only = relative_error(q);
  const double both = relative_error(lowbit::quantize_hqq(view, 1, with_scale));
  INFO("1-bit relative error: min/max " << minmax << ", HQQ " << zero_only
                                        << ", HQQ with the scale " << both);
  // Two levels at a group's min and max are far apart: HQQ's zero-point updates pull them toward
  // the mass, and also optimizing the scale brings the error under the energy of the weights.
  CHECK(zero_only < minmax);
  CHECK(both < zero_only);
  CHECK(both < 1.0);
}
