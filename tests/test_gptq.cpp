#include <catch2/catch.hpp>

#include "support/random_data.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <vector>

#include <Eigen/Dense>

#include "lowbit/algo/calibration.hpp"
#include "lowbit/algo/gptq.hpp"
#include "lowbit/quant/codebook.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quant/microscaling.hpp"
#include "lowbit/quant/nf4.hpp"

using lowbit::GptqOptions;
using lowbit::Granularity;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;
using lowbit::Scheme;
using lowbit::SymmetricMatrix;

namespace {

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Eigen::MatrixXd to_eigen(const SymmetricMatrix& m) {
  const auto n = static_cast<Eigen::Index>(m.rows());
  return Eigen::Map<const Eigen::MatrixXd>(m.data(), n, n);
}

/// A layer whose inputs are strongly correlated: x = A z, z ~ N(0, I), A = G diag(0.98^k) with G
/// Gaussian, so the input covariance has a condition number in the 10^5 range. Samples [n, in].
struct Layer {
  std::size_t out = 0, in = 0;
  std::vector<float> w;  // [out, in]
  RowMajorF x;           // [n, in]
  SymmetricMatrix h;
};

Layer correlated_layer(std::size_t out, std::size_t in, std::size_t n, std::uint32_t seed) {
  Layer layer;
  layer.out = out;
  layer.in = in;
  layer.w = lowbit::test::weights_with_outliers(out, in, seed);
  std::mt19937 rng(seed + 100);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const auto ein = static_cast<Eigen::Index>(in);
  Eigen::MatrixXf a(ein, ein);
  for (Eigen::Index j = 0; j < ein; ++j)
    for (Eigen::Index i = 0; i < ein; ++i)
      a(i, j) = normal(rng) * std::pow(0.98f, static_cast<float>(j));
  Eigen::MatrixXf z(ein, static_cast<Eigen::Index>(n));
  for (Eigen::Index j = 0; j < z.cols(); ++j)
    for (Eigen::Index i = 0; i < ein; ++i) z(i, j) = normal(rng);
  layer.x = (a * z).transpose();
  lowbit::InputStatistics stats(in);
  stats.add(MatrixView<const float>(layer.x.data(), n, in));
  layer.h = stats.hessian();
  return layer;
}

/// ||W X^T - Q X^T||_F for samples X [n, in].
double output_error(const std::vector<float>& w, const std::vector<float>& q, std::size_t out,
                    std::size_t in, const RowMajorF& x) {
  const Eigen::Map<const RowMajorF> wm(w.data(), static_cast<Eigen::Index>(out),
                                       static_cast<Eigen::Index>(in));
  const Eigen::Map<const RowMajorF> qm(q.data(), static_cast<Eigen::Index>(out),
                                       static_cast<Eigen::Index>(in));
  const Eigen::MatrixXd diff = (wm - qm).cast<double>();
  return (diff * x.cast<double>().transpose()).norm();
}

struct Reference {
  std::vector<std::uint8_t> codes;  // [rows, cols] at original positions
  std::vector<float> dequantized;   // [rows, cols]
  double loss = 0.0;
};

/// GPTQ as the paper's Algorithm 1 states it, without blocks or lazy updates: H^-1 by Eigen's
/// explicit inverse, and after each column every later column updated at once. Groups (neither
/// static nor per channel) are fitted where the references fit them: on the weights as they
/// stood at the start of the `fit_block` columns holding the group's first column (fit_block 1:
/// on the fully updated weights).
Reference reference_gptq(const std::vector<float>& w0, std::size_t rows, std::size_t cols,
                         const SymmetricMatrix& hessian, const lowbit::Grid& grid, bool act_order,
                         bool static_groups, std::size_t fit_block, double percdamp = 0.01) {
  Eigen::MatrixXd h = to_eigen(hessian);
  const Scheme& scheme = grid.scheme();
  const auto er = static_cast<Eigen::Index>(rows), ec = static_cast<Eigen::Index>(cols);
  Eigen::MatrixXf w = Eigen::Map<const RowMajorF>(w0.data(), er, ec);
  QuantizedMatrix scratch(scheme, rows, cols);
  const bool grouped = scheme.granularity.kind == Granularity::Kind::group;
  const std::size_t group = grouped ? scheme.granularity.group_size : cols;
  auto fit = [&](const Eigen::MatrixXf& block, std::size_t r) {
    std::vector<float> values(static_cast<std::size_t>(block.cols()));
    for (std::size_t c = 0; c < values.size(); ++c)
      values[c] = block(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c));
    return grid.fit(values, scratch);
  };
  std::vector<lowbit::GroupParams> current(rows);
  if (!grouped)
    for (std::size_t r = 0; r < rows; ++r) current[r] = fit(w, r);
  for (Eigen::Index j = 0; j < ec; ++j)
    if (h(j, j) == 0.0) {
      h(j, j) = 1.0;
      w.col(j).setZero();
    }
  std::vector<std::vector<lowbit::GroupParams>> fixed;
  if (grouped && static_groups)
    for (std::size_t start = 0; start < cols; start += group) {
      const Eigen::MatrixXf block =
          w.middleCols(static_cast<Eigen::Index>(start),
                       static_cast<Eigen::Index>(std::min(group, cols - start)));
      fixed.emplace_back(rows);
      for (std::size_t r = 0; r < rows; ++r) fixed.back()[r] = fit(block, r);
    }
  std::vector<Eigen::Index> perm(cols);
  std::iota(perm.begin(), perm.end(), Eigen::Index{0});
  if (act_order) {
    std::stable_sort(perm.begin(), perm.end(),
                     [&](Eigen::Index a, Eigen::Index b) { return h(a, a) > h(b, b); });
    Eigen::MatrixXf wp(er, ec);
    Eigen::MatrixXd hp(ec, ec);
    for (Eigen::Index j = 0; j < ec; ++j) {
      wp.col(j) = w.col(perm[static_cast<std::size_t>(j)]);
      for (Eigen::Index i = 0; i < ec; ++i)
        hp(i, j) = h(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(j)]);
    }
    w = wp;
    h = hp;
  }
  h.diagonal().array() += percdamp * h.diagonal().mean();
  const Eigen::MatrixXd inverse = h.inverse();
  const Eigen::MatrixXf u = Eigen::MatrixXd(inverse.llt().matrixU()).cast<float>();

  Reference out;
  out.codes.assign(rows * cols, 0);
  out.dequantized.assign(rows * cols, 0.0f);
  std::vector<std::uint8_t> codes(rows);
  std::vector<float> deq(rows);
  Eigen::MatrixXf snapshot;  // w at the start of the current fit_block columns
  for (std::size_t i = 0; i < cols; ++i) {
    const auto ei = static_cast<Eigen::Index>(i);
    const auto original = static_cast<std::size_t>(perm[i]);
    if (i % fit_block == 0) snapshot = w;
    const lowbit::GroupParams* params = current.data();
    if (grouped && static_groups) {
      params = fixed[original / group].data();
    } else if (grouped && i % group == 0) {
      const Eigen::MatrixXf block =
          snapshot.middleCols(ei, static_cast<Eigen::Index>(std::min(group, cols - i)));
      for (std::size_t r = 0; r < rows; ++r) current[r] = fit(block, r);
    }
    const Eigen::VectorXf column = w.col(ei);
    grid.quantize_column(scratch, original, column.data(), params, rows, codes.data(), deq.data());
    for (std::size_t r = 0; r < rows; ++r) {
      out.codes[r * cols + original] = codes[r];
      out.dequantized[r * cols + original] = deq[r];
      const float err = (column(static_cast<Eigen::Index>(r)) - deq[r]) / u(ei, ei);
      out.loss += 0.5 * static_cast<double>(err) * static_cast<double>(err);
      for (std::size_t j = i + 1; j < cols; ++j)
        w(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(j)) -=
            err * u(ei, static_cast<Eigen::Index>(j));
    }
  }
  return out;
}

struct Transcribed {
  std::vector<std::uint8_t> codes;  // [rows, cols] at original positions
  QuantizedMatrix params;           // the scales and zeros, stored by the grid
};

/// The references' GPTQ.fasterquant loop (IST-DASLab gptq.py; AutoGPTQ 0.7.1
/// auto_gptq/quantization/gptq.py), statement by statement, with the grid as the quantizer
/// (find_params: grid.fit of each row; quantize: grid.quantize_column) and lowbit's own U
/// (detail::gptq_inverse_factor, which the unblocked test above checks against an explicit
/// inverse). So only the loop is under test: which weights each column and each group's
/// find_params see. The lazy update is a plain triple loop.
Transcribed transcribed_reference(const std::vector<float>& w0, std::size_t rows,
                                  std::size_t columns, const SymmetricMatrix& hessian,
                                  const lowbit::Grid& grid, std::size_t blocksize, bool actorder,
                                  bool static_groups) {
  const Scheme& scheme = grid.scheme();
  const bool grouped = scheme.granularity.kind == Granularity::Kind::group;
  const std::size_t groupsize = grouped ? scheme.granularity.group_size : columns;
  Transcribed out{std::vector<std::uint8_t>(rows * columns),
                  QuantizedMatrix(scheme, rows, columns)};
  QuantizedMatrix& q = out.params;
  // W[r][c], row-major like the torch tensor.
  std::vector<float> W = w0;
  auto at = [&](std::vector<float>& m, std::size_t r, std::size_t c) -> float& {
    return m[r * columns + c];
  };
  std::vector<lowbit::GroupParams> quantizer(rows);
  // find_params(W[:, first:first + length]) for every row, stored as the group at `first`.
  auto find_params = [&](const std::vector<float>& m, std::size_t first, std::size_t length) {
    std::vector<lowbit::GroupParams> found(rows);
    for (std::size_t r = 0; r < rows; ++r) {
      const std::span<const float> values(m.data() + r * columns + first, length);
      found[r] = grid.fit(values, q);
      grid.store(q, q.scale_index(r, first), found[r]);
    }
    return found;
  };
  grid.prepare(MatrixView<const float>(w0.data(), rows, columns), q);
  if (!grouped) quantizer = find_params(W, 0, columns);  // "if not self.quantizer.ready()"

  Eigen::MatrixXd H = to_eigen(hessian);
  for (std::size_t j = 0; j < columns; ++j) {
    const auto ej = static_cast<Eigen::Index>(j);
    if (H(ej, ej) == 0.0) {  // dead
      H(ej, ej) = 1.0;
      for (std::size_t r = 0; r < rows; ++r) at(W, r, j) = 0.0f;
    }
  }
  std::vector<std::vector<lowbit::GroupParams>> groups;
  if (grouped && static_groups)
    for (std::size_t i = 0; i < columns; i += groupsize)
      groups.push_back(find_params(W, i, std::min(groupsize, columns - i)));

  std::vector<std::size_t> perm(columns);
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  if (actorder) {
    std::stable_sort(perm.begin(), perm.end(), [&](std::size_t a, std::size_t b) {
      return H(static_cast<Eigen::Index>(a), static_cast<Eigen::Index>(a)) >
             H(static_cast<Eigen::Index>(b), static_cast<Eigen::Index>(b));
    });
    std::vector<float> permuted(W.size());
    Eigen::MatrixXd Hp(H.rows(), H.cols());
    for (std::size_t j = 0; j < columns; ++j) {
      for (std::size_t r = 0; r < rows; ++r) at(permuted, r, j) = at(W, r, perm[j]);
      for (std::size_t i = 0; i < columns; ++i)
        Hp(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) =
            H(static_cast<Eigen::Index>(perm[i]), static_cast<Eigen::Index>(perm[j]));
    }
    W = permuted;
    H = Hp;
  }
  const std::vector<double> h_values(H.data(), H.data() + H.size());
  const auto factor =
      lowbit::detail::gptq_inverse_factor(SymmetricMatrix(columns, h_values), 0.01, 5);
  auto Hinv = [&](std::size_t i, std::size_t j) { return factor.upper[i * columns + j]; };

  std::vector<float> w(rows), dq(rows);
  std::vector<std::uint8_t> codes(rows);
  for (std::size_t i1 = 0; i1 < columns; i1 += blocksize) {
    const std::size_t i2 = std::min(i1 + blocksize, columns), count = i2 - i1;
    std::vector<float> W1(rows * count), Err1(rows * count, 0.0f);  // W[:, i1:i2].clone()
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < count; ++i) W1[r * count + i] = at(W, r, i1 + i);
    for (std::size_t i = 0; i < count; ++i) {
      for (std::size_t r = 0; r < rows; ++r) w[r] = W1[r * count + i];
      const float d = Hinv(i1 + i, i1 + i);
      const std::size_t idx = actorder ? perm[i1 + i] : i1 + i;
      if (grouped) {
        if (!static_groups) {
          if ((i1 + i) % groupsize == 0)  // the outer W, not W1
            quantizer = find_params(W, i1 + i, std::min(groupsize, columns - (i1 + i)));
        } else {
          quantizer = groups[idx / groupsize];
        }
      }
      grid.quantize_column(q, idx, w.data(), quantizer.data(), rows, codes.data(), dq.data());
      for (std::size_t r = 0; r < rows; ++r) {
        out.codes[r * columns + idx] = codes[r];
        const float err1 = (w[r] - dq[r]) / d;
        for (std::size_t j = i; j < count; ++j) W1[r * count + j] -= err1 * Hinv(i1 + i, i1 + j);
        Err1[r * count + i] = err1;
      }
    }
    // W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = i2; j < columns; ++j) {
        float sum = 0.0f;
        for (std::size_t k = 0; k < count; ++k) sum += Err1[r * count + k] * Hinv(i1 + k, j);
        at(W, r, j) -= sum;
      }
  }
  return out;
}

std::vector<std::uint8_t> all_codes(const QuantizedMatrix& q) {
  std::vector<std::uint8_t> codes(q.rows() * q.cols());
  for (std::size_t r = 0; r < q.rows(); ++r)
    for (std::size_t c = 0; c < q.cols(); ++c) codes[r * q.cols() + c] = q.code(r, c);
  return codes;
}

std::size_t mismatches(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < a.size(); ++i) count += a[i] != b[i];
  return count;
}

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

}  // namespace

TEST_CASE("blocked GPTQ matches an unblocked transcription", "[algo][gptq]") {
  // 100 columns: blocks of 16 and 128 (one ragged block), groups of 32 (a ragged last group of 4)
  // and 20 (groups that cross block boundaries). The transcription fits groups on the weights
  // as of the start of each block of `block` columns (GptqGroupFit::reference) or on the fully
  // updated weights (GptqGroupFit::updated, fit_block 1).
  const std::size_t rows = 12, cols = 100;
  const Layer layer = correlated_layer(rows, cols, 400, 3);
  for (const Granularity g :
       {Granularity::per_channel(), Granularity::per_group(32), Granularity::per_group(20)})
    for (bool symmetric : {true, false})
      for (bool act_order : {false, true})
        for (bool static_groups : {false, true}) {
          if (act_order && g.kind == Granularity::Kind::group && !static_groups) continue;
          const Scheme scheme =
              symmetric ? Scheme::symmetric_int(3, g) : Scheme::asymmetric_int(4, g);
          const auto grid = lowbit::make_grid(scheme);
          for (const lowbit::GptqGroupFit fit :
               {lowbit::GptqGroupFit::reference, lowbit::GptqGroupFit::updated})
            for (std::size_t block : {std::size_t{16}, std::size_t{128}, std::size_t{7}}) {
              const bool updated = fit == lowbit::GptqGroupFit::updated;
              INFO(scheme.to_string() << " act_order " << act_order << " static " << static_groups
                                      << " block " << block << " updated " << updated);
              const Reference ref = reference_gptq(layer.w, rows, cols, layer.h, *grid, act_order,
                                                   static_groups, updated ? 1 : block);
              GptqOptions options;
              options.group_fit = fit;
              options.block = block;
              options.act_order = act_order;
              options.static_groups = static_groups;
              const auto result = lowbit::quantize_gptq(
                  MatrixView<const float>(layer.w.data(), rows, cols), layer.h, *grid, options);
              CHECK(result.retries == 0);
              // Float rounding differs (blocked sums, LLT solve vs explicit inverse) but stays far
              // from the rounding boundaries of these seeds: the codes agree exactly.
              CHECK(mismatches(all_codes(result.weights), ref.codes) == 0);
              // A group's f16 scale is rounded up from sums taken in another order, so it may land
              // one f16 step (2^-10 relative) higher or lower; the codes are the same.
              const auto back = result.weights.dequantize();
              std::size_t beyond_one_step = 0;
              for (std::size_t i = 0; i < back.size(); ++i)
                beyond_one_step += std::abs(back[i] - ref.dequantized[i]) >
                                   1e-6f + 0x1p-10f * std::abs(ref.dequantized[i]);
              CHECK(beyond_one_step == 0);
              CHECK(result.proxy_loss == Approx(ref.loss).epsilon(1e-4));
            }
        }
}

TEST_CASE("GPTQ gives the reference implementations' codes, scales and zeros", "[algo][gptq]") {
  // 200 columns with the references' blocksize of 128: a ragged last block of 72. Groups of 32
  // and 64 start inside blocks, where the references fit them on weights that lack the updates
  // of the block's earlier columns; both have a ragged last group of 8. Act-order per channel
  // and with static groups (AutoGPTQ's desc_act with static_groups).
  const std::size_t rows = 24, cols = 200;
  const Layer layer = correlated_layer(rows, cols, 800, 41);
  struct Case {
    Scheme scheme;
    bool act_order = false;
    bool static_groups = false;
  };
  const std::vector<Case> cases = {
      {Scheme::asymmetric_int(4, Granularity::per_group(32))},
      {Scheme::asymmetric_int(3, Granularity::per_group(64))},
      {Scheme::symmetric_int(4, Granularity::per_group(32))},
      {Scheme::asymmetric_int(4, Granularity::per_group(64)), false, true},
      {Scheme::asymmetric_int(4, Granularity::per_group(32)), true, true},
      {Scheme::asymmetric_int(4, Granularity::per_channel()), true, false}};
  for (const Case& c : cases) {
    INFO(c.scheme.to_string() << " act_order " << c.act_order << " static " << c.static_groups);
    const auto grid = lowbit::make_grid(c.scheme);
    const Transcribed ref = transcribed_reference(layer.w, rows, cols, layer.h, *grid, 128,
                                                  c.act_order, c.static_groups);
    GptqOptions options;
    options.act_order = c.act_order;
    options.static_groups = c.static_groups;
    REQUIRE(options.block == 128);
    const auto result = lowbit::quantize_gptq(MatrixView<const float>(layer.w.data(), rows, cols),
                                              layer.h, *grid, options);
    CHECK(mismatches(all_codes(result.weights), ref.codes) == 0);
    CHECK(std::equal(result.weights.scale_bytes().begin(), result.weights.scale_bytes().end(),
                     ref.params.scale_bytes().begin(), ref.params.scale_bytes().end()));
    CHECK(std::equal(result.weights.zero_codes().begin(), result.weights.zero_codes().end(),
                     ref.params.zero_codes().begin(), ref.params.zero_codes().end()));
    if (c.scheme.granularity.kind == Granularity::Kind::group && !c.static_groups) {
      // Where groups are fitted matters on these inputs: fitted on the fully updated weights,
      // the codes differ from the references'.
      options.group_fit = lowbit::GptqGroupFit::updated;
      const auto updated = lowbit::quantize_gptq(
          MatrixView<const float>(layer.w.data(), rows, cols), layer.h, *grid, options);
      CHECK(mismatches(all_codes(updated.weights), ref.codes) > 0);
    }
  }
}

TEST_CASE("GPTQ beats RTN on correlated inputs", "[algo][gptq]") {
  const std::size_t out = 64, in = 256, n = 2048;
  const Layer layer = correlated_layer(out, in, n, 7);
  const MatrixView<const float> w(layer.w.data(), out, in);
  for (int bits : {3, 4})
    for (const Granularity g : {Granularity::per_channel(), Granularity::per_group(32)})
      for (bool act_order : {false, true}) {
        const Scheme scheme = Scheme::asymmetric_int(bits, g);
        GptqOptions options;
        options.act_order = act_order;
        options.static_groups = act_order;  // act-order with groups needs static groups
        const auto result = lowbit::quantize_gptq(w, layer.h, scheme, options);
        const double gptq = output_error(layer.w, result.weights.dequantize(), out, in, layer.x);
        const double rtn = output_error(layer.w, lowbit::quantize_linear(w, scheme).dequantize(),
                                        out, in, layer.x);
        INFO(scheme.to_string() << " act_order " << act_order << ": GPTQ " << gptq << ", RTN "
                                << rtn);
        CHECK(gptq < 0.7 * rtn);
      }
}

TEST_CASE("GPTQ with an NF4 grid beats NF4 RTN and equals it with a diagonal Hessian",
          "[algo][gptq]") {
  const std::size_t out = 64, in = 256, n = 2048;
  const Layer layer = correlated_layer(out, in, n, 8);
  const MatrixView<const float> w(layer.w.data(), out, in);
  lowbit::Nf4Options nf4_options;
  nf4_options.block = 64;
  const Scheme scheme = lowbit::nf4_scheme(nf4_options);
  const QuantizedMatrix rtn = lowbit::quantize_nf4(w, nf4_options);
  const auto result = lowbit::quantize_gptq(w, layer.h, scheme);
  CHECK(result.weights.scheme() == scheme);
  const double gptq_error = output_error(layer.w, result.weights.dequantize(), out, in, layer.x);
  const double rtn_error = output_error(layer.w, rtn.dequantize(), out, in, layer.x);
  INFO("GPTQ " << gptq_error << ", RTN " << rtn_error);
  CHECK(gptq_error < 0.7 * rtn_error);

  const auto diagonal = lowbit::quantize_gptq(w, SymmetricMatrix::identity(in), scheme);
  CHECK(all_codes(diagonal.weights) == all_codes(rtn));
  CHECK(diagonal.weights.dequantize() == rtn.dequantize());
}

TEST_CASE("GPTQ with a diagonal Hessian gives RTN's codes and scales", "[algo][gptq]") {
  // With H diagonal (any positive diagonal, not only the identity), U = chol(H^-1)^T is diagonal:
  // no error is fed into other columns, the weights are never changed, and every group's
  // parameters come from the original weights - exactly round-to-nearest, in any column order.
  const std::size_t rows = 9, cols = 100;
  const auto w = lowbit::test::weights_with_outliers(rows, cols, 11);
  std::mt19937 rng(12);
  std::uniform_real_distribution<double> uniform(0.1, 10.0);
  std::vector<double> diagonal(cols);
  for (double& d : diagonal) d = uniform(rng);
  const SymmetricMatrix diag = SymmetricMatrix::from_diagonal(diagonal);
  const SymmetricMatrix identity = SymmetricMatrix::identity(cols);
  for (const SymmetricMatrix* h : std::vector<const SymmetricMatrix*>{&identity, &diag})
    for (const Granularity g : {Granularity::per_tensor(), Granularity::per_channel(),
                                Granularity::per_group(32), Granularity::per_group(48)})
      for (bool symmetric : {true, false})
        for (bool act_order : {false, true}) {
          const Scheme scheme =
              symmetric ? Scheme::symmetric_int(4, g) : Scheme::asymmetric_int(3, g);
          INFO(scheme.to_string() << " act_order " << act_order);
          GptqOptions options;
          options.act_order = act_order;
          options.static_groups = act_order;
          options.block = 16;
          const MatrixView<const float> view(w.data(), rows, cols);
          const auto result = lowbit::quantize_gptq(view, *h, scheme, options);
          const QuantizedMatrix rtn = lowbit::quantize_linear(view, scheme);
          CHECK(all_codes(result.weights) == all_codes(rtn));
          CHECK(std::equal(result.weights.scale_bytes().begin(), result.weights.scale_bytes().end(),
                           rtn.scale_bytes().begin(), rtn.scale_bytes().end()));
          CHECK(std::equal(result.weights.zero_codes().begin(), result.weights.zero_codes().end(),
                           rtn.zero_codes().begin(), rtn.zero_codes().end()));
        }
}

TEST_CASE("GPTQ zeroes dead input channels", "[algo][gptq]") {
  const std::size_t rows = 8, cols = 64, n = 300;
  Layer layer = correlated_layer(rows, cols, n, 21);
  for (Eigen::Index dead : {0, 5, 40, 63}) layer.x.col(dead).setZero();
  lowbit::InputStatistics stats(cols);
  stats.add(MatrixView<const float>(layer.x.data(), n, cols));
  const SymmetricMatrix h = stats.hessian();
  CHECK(h(5, 5) == 0.0);
  for (bool act_order : {false, true})
    for (const Scheme& scheme : {Scheme::asymmetric_int(4, Granularity::per_group(16)),
                                 Scheme::symmetric_int(4, Granularity::per_channel())}) {
      GptqOptions options;
      options.act_order = act_order;
      options.static_groups = true;
      const auto result = lowbit::quantize_gptq(MatrixView<const float>(layer.w.data(), rows, cols),
                                                h, scheme, options);
      const auto back = result.weights.dequantize();
      CHECK(all_finite(back));
      CHECK(std::isfinite(result.proxy_loss));
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t dead : {0u, 5u, 40u, 63u}) CHECK(back[r * cols + dead] == 0.0f);
    }
}

TEST_CASE("GPTQ raises the damping of a singular Hessian", "[algo][gptq]") {
  // Two identical inputs with H_00 = 4: the Cholesky pivot of column 1 is exactly 0 without
  // damping, so percdamp = 0 fails once and the retry uses 0.01 * mean(diag H).
  const std::size_t cols = 4;
  const float samples[] = {1, 1, 1, 0, 1, 1, -1, 1, 1, 1, 0, -1, 1, 1, 1, 1};
  lowbit::InputStatistics stats(cols);
  stats.add(MatrixView<const float>(samples, 4, cols));
  SymmetricMatrix h = stats.hessian();
  h *= 2.0;  // 2/4 * sum x x^T, doubled: H_00 = 4
  REQUIRE(h(0, 0) == 4.0);
  const std::vector<double> diagonal = h.diagonal();
  const double mean_diagonal =
      std::accumulate(diagonal.begin(), diagonal.end(), 0.0) / static_cast<double>(cols);
  const std::vector<float> w = {0.5f, -0.25f, 0.125f, 1.0f, -1.0f, 0.3f, 0.2f, 0.1f};
  const Scheme scheme = Scheme::asymmetric_int(4, Granularity::per_channel());
  GptqOptions options;
  options.percdamp = 0.0;
  const auto result =
      lowbit::quantize_gptq(MatrixView<const float>(w.data(), 2, cols), h, scheme, options);
  CHECK(result.retries == 1);
  CHECK(result.damping == Approx(0.01 * mean_diagonal));
  CHECK(all_finite(result.weights.dequantize()));

  // Rank-deficient inputs (16 samples of 64 channels), no damping at all: never NaN.
  const Layer layer = correlated_layer(8, 64, 16, 22);
  const auto deficient = lowbit::quantize_gptq(MatrixView<const float>(layer.w.data(), 8, 64),
                                               layer.h, scheme, options);
  CHECK(all_finite(deficient.weights.dequantize()));
  CHECK(std::isfinite(deficient.proxy_loss));

  // An indefinite Hessian: lambda = 0.0025, 0.025, 0.25 fail, 2.5 works - three retries, or an
  // error when fewer are allowed.
  const SymmetricMatrix indefinite(2, {1.0, 0.0, 0.0, -0.5});
  const std::vector<float> w2 = {0.5f, -0.25f};
  const auto retried =
      lowbit::quantize_gptq(MatrixView<const float>(w2.data(), 1, 2), indefinite, scheme);
  CHECK(retried.retries == 3);
  CHECK(retried.damping == Approx(2.5));
  CHECK(all_finite(retried.weights.dequantize()));
  GptqOptions few;
  few.max_damping_retries = 2;
  CHECK_THROWS_AS(
      lowbit::quantize_gptq(MatrixView<const float>(w2.data(), 1, 2), indefinite, scheme, few),
      lowbit::invalid_value);
  CHECK_THROWS_AS(lowbit::quantize_gptq(MatrixView<const float>(w2.data(), 1, 2),
                                        SymmetricMatrix(2, {-1.0, 0.0, 0.0, -1.0}), scheme),
                  lowbit::invalid_value);
}

TEST_CASE("GPTQ rejects what it cannot represent", "[algo][gptq]") {
  const std::vector<float> w(4 * 8, 0.5f);
  const MatrixView<const float> view(w.data(), 4, 8);
  const SymmetricMatrix h = SymmetricMatrix::identity(8);
  GptqOptions options;
  options.act_order = true;  // groups without static groups would need a g_idx
  CHECK_THROWS_AS(
      lowbit::quantize_gptq(view, h, Scheme::asymmetric_int(4, Granularity::per_group(4)), options),
      lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::quantize_gptq(view, SymmetricMatrix::identity(7),
                                        Scheme::asymmetric_int(4, Granularity::per_channel())),
                  lowbit::invalid_argument);
  std::vector<float> bad = w;
  bad[9] = std::nanf("");
  CHECK_THROWS_AS(lowbit::quantize_gptq(MatrixView<const float>(bad.data(), 4, 8), h,
                                        Scheme::asymmetric_int(4, Granularity::per_channel())),
                  lowbit::invalid_value);
  // Ragged groups with act-order and static groups: fine.
  options.static_groups = true;
  const auto ok =
      lowbit::quantize_gptq(view, h, Scheme::asymmetric_int(4, Granularity::per_group(3)), options);
  CHECK(ok.weights.dequantize() == w);
}

TEST_CASE("GPTQ over FP4 and FP8 grids: RTN's codes with a diagonal Hessian, better otherwise",
          "[algo][gptq]") {
  const std::size_t out = 48, in = 200, n = 2048;  // 200: ragged last block of 32 and of 16
  const Layer layer = correlated_layer(out, in, n, 31);
  const MatrixView<const float> w(layer.w.data(), out, in);
  const SymmetricMatrix identity = SymmetricMatrix::identity(in);
  struct Case {
    Scheme scheme;
    QuantizedMatrix rtn;
  };
  const std::vector<Case> cases = {
      {lowbit::mx_scheme(lowbit::ElementFormat::fp4_e2m1), lowbit::quantize_mxfp4(w)},
      {lowbit::mx_scheme(lowbit::ElementFormat::fp8_e4m3), lowbit::quantize_mxfp8(w)},
      {lowbit::nvfp4_scheme(), lowbit::quantize_nvfp4(w)}};
  for (const Case& c : cases) {
    INFO(c.scheme.to_string());
    const auto diagonal = lowbit::quantize_gptq(w, identity, c.scheme);
    CHECK(all_codes(diagonal.weights) == all_codes(c.rtn));
    CHECK(std::equal(diagonal.weights.scale_bytes().begin(), diagonal.weights.scale_bytes().end(),
                     c.rtn.scale_bytes().begin(), c.rtn.scale_bytes().end()));
    CHECK(diagonal.weights.tensor_scale() == c.rtn.tensor_scale());
    CHECK(diagonal.weights.dequantize() == c.rtn.dequantize());

    const auto result = lowbit::quantize_gptq(w, layer.h, c.scheme);
    const double gptq = output_error(layer.w, result.weights.dequantize(), out, in, layer.x);
    const double rtn = output_error(layer.w, c.rtn.dequantize(), out, in, layer.x);
    INFO("GPTQ " << gptq << ", RTN " << rtn);
    CHECK(gptq < 0.8 * rtn);
  }
  // FP4 with fp16 absmax scales per group of 32.
  Scheme fp4 = lowbit::mx_scheme(lowbit::ElementFormat::fp4_e2m1);
  fp4.scale_format = lowbit::ScalarFormat::f16;
  const auto result = lowbit::quantize_gptq(w, layer.h, fp4);
  const auto back = result.weights.dequantize();
  CHECK(all_finite(back));
  // Every weight is an E2M1 value times its group's stored scale.
  for (std::size_t r = 0; r < out; r += 7)
    for (std::size_t c = 0; c < in; c += 13) {
      const float s = result.weights.scale(result.weights.scale_index(r, c));
      const float e = lowbit::float4_e2m1::from_bits(result.weights.code(r, c)).to_float();
      CHECK(back[r * in + c] == e * s);
    }
}

TEST_CASE("GPTQ over k-means codebooks keeps the codebooks and lowers the output error",
          "[algo][gptq]") {
  const std::size_t out = 32, in = 128, n = 2048;
  const Layer layer = correlated_layer(out, in, n, 32);
  const MatrixView<const float> w(layer.w.data(), out, in);
  for (const Granularity g : {Granularity::per_tensor(), Granularity::per_channel()}) {
    const Scheme scheme{.element = lowbit::ElementFormat::codebook,
                        .bits = 3,
                        .granularity = Granularity::none(),
                        .codebook_granularity = g,
                        .codebook_format = lowbit::ScalarFormat::f16};
    INFO(scheme.to_string());
    const QuantizedMatrix rtn = lowbit::quantize_codebook(w, scheme);
    const auto result = lowbit::quantize_gptq(w, layer.h, scheme);
    CHECK(std::equal(result.weights.codebook_bytes().begin(), result.weights.codebook_bytes().end(),
                     rtn.codebook_bytes().begin(), rtn.codebook_bytes().end()));
    const double gptq = output_error(layer.w, result.weights.dequantize(), out, in, layer.x);
    const double rtn_error = output_error(layer.w, rtn.dequantize(), out, in, layer.x);
    INFO("GPTQ " << gptq << ", k-means " << rtn_error);
    CHECK(gptq < 0.8 * rtn_error);
    // With a diagonal Hessian, each weight takes its nearest entry: k-means' own assignment.
    const auto diagonal = lowbit::quantize_gptq(w, SymmetricMatrix::identity(in), scheme);
    CHECK(diagonal.weights.dequantize() == rtn.dequantize());
  }
}

TEST_CASE("GPTQ+Hadamard rotates the Hessian with the weights", "[algo][gptq]") {
  const std::size_t out = 16, in = 96, n = 1024;  // 96 = 12 * 8: a non-power-of-two Hadamard
  const Layer layer = correlated_layer(out, in, n, 33);
  const MatrixView<const float> w(layer.w.data(), out, in);
  const Scheme scheme = Scheme::asymmetric_int(3, Granularity::per_group(32));

  // R H R^T against a dense R built from the definition (R e_j column by column).
  const lowbit::HadamardRotation rotation{48, 5, true};
  const auto ein = static_cast<Eigen::Index>(in);
  Eigen::MatrixXd r = Eigen::MatrixXd::Zero(ein, ein);
  for (Eigen::Index j = 0; j < ein; ++j) {
    std::vector<float> e(48, 0.0f);
    e[static_cast<std::size_t>(j % 48)] = 1.0f;
    rotation.apply(e);
    for (Eigen::Index i = 0; i < 48; ++i)
      r((j / 48) * 48 + i, j) = static_cast<double>(e[static_cast<std::size_t>(i)]);
  }
  const Eigen::MatrixXd expected = r * to_eigen(layer.h) * r.transpose();
  const Eigen::MatrixXd rotated = to_eigen(lowbit::detail::rotate_hessian(layer.h, rotation));
  CHECK((rotated - expected).norm() <= 1e-5 * expected.norm());

  GptqOptions options;
  options.hadamard = lowbit::IncoherenceOptions{48, 5, true};
  const auto result = lowbit::quantize_gptq(w, layer.h, scheme, options);
  REQUIRE(result.weights.input_rotation().has_value());
  CHECK(result.weights.input_rotation()->size == 48);
  // The same as GPTQ on the rotated weights with the rotated inputs' Hessian.
  const RowMajorF x_rotated = layer.x * r.transpose().cast<float>();
  lowbit::InputStatistics stats(in);
  stats.add(MatrixView<const float>(x_rotated.data(), n, in));
  const Eigen::Map<const RowMajorF> wm(layer.w.data(), static_cast<Eigen::Index>(out), ein);
  const RowMajorF w_rotated = wm * r.transpose().cast<float>();
  const auto direct = lowbit::quantize_gptq(MatrixView<const float>(w_rotated.data(), out, in),
                                            stats.hessian(), scheme);
  const auto a = result.weights.dequantize(), b = direct.weights.dequantize();
  std::size_t differ = 0;
  for (std::size_t i = 0; i < a.size(); ++i) differ += std::abs(a[i] - b[i]) > 1e-6f;
  CHECK(differ <= a.size() / 100);  // float rounding of two routes to H may flip a rare code

  // In the original basis it is a good quantization of W, better than Hadamard + RTN.
  const double gptq =
      output_error(layer.w, result.weights.dequantize_unrotated(), out, in, layer.x);
  const QuantizedMatrix rtn = lowbit::quantize_incoherent(
      w, {48, 5, true},
      [&](MatrixView<const float> m) { return lowbit::quantize_linear(m, scheme); });
  const double rtn_error = output_error(layer.w, rtn.dequantize_unrotated(), out, in, layer.x);
  INFO("GPTQ+Hadamard " << gptq << ", Hadamard+RTN " << rtn_error);
  CHECK(gptq < 0.7 * rtn_error);

  options.hadamard = lowbit::IncoherenceOptions{64, 5, true};  // 64 does not divide 96
  CHECK_THROWS_AS(lowbit::quantize_gptq(w, layer.h, scheme, options), lowbit::invalid_argument);
}
