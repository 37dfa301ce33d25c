// The bodies of format/hadamard.hpp, compiled once: the stored tables are large, and a header
// holding them made every includer's compiler build (and try to constant-evaluate) them.
#include "lowbit/format/hadamard.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <iterator>
#include <limits>
#include <string>

#include "format/hadamard_tables.hpp"
#include "lowbit/detail/parallel.hpp"
#include "lowbit/error.hpp"

namespace lowbit {

namespace detail::hadamard {
namespace {

/// The stored table of order K, or nullptr (K = 1 has none: H_1 = [1]).
const Table* find_table(std::size_t order) noexcept {
  for (const Table& t : tables)
    if (t.order == order) return &t;
  return nullptr;
}

/// H_K as floats, row-major, built once per order on first use (thread-safe static init).
const std::vector<float>& table_floats(const Table& table) {
  static const std::array<std::vector<float>, std::size(tables)> all = [] {
    std::array<std::vector<float>, std::size(tables)> out;
    for (std::size_t t = 0; t < std::size(tables); ++t) {
      out[t].resize(tables[t].entries.size());
      for (std::size_t i = 0; i < out[t].size(); ++i)
        out[t][i] = tables[t].entries[i] == '+' ? 1.0f : -1.0f;
    }
    return out;
  }();
  return all[static_cast<std::size_t>(&table - tables)];
}

constexpr bool is_power_of_two(std::size_t n) noexcept { return n != 0 && (n & (n - 1)) == 0; }

/// n = K * 2^m: the stored table for K (nullptr when K = 1), or false when n is not of that form.
bool split(std::size_t n, const Table*& table) noexcept {
  table = nullptr;
  if (n == 0) return false;
  std::size_t odd = n;
  while (odd % 2 == 0) odd /= 2;
  if (odd == 1) return true;  // power of two
  // The largest stored K that divides n with a power-of-two quotient (only 20 and 40 can both
  // fit: n = 40 * 2^m uses H_40, n = 20 uses H_20).
  for (std::size_t t = std::size(tables); t-- > 0;)
    if (n % tables[t].order == 0 && is_power_of_two(n / tables[t].order)) {
      table = &tables[t];
      return true;
    }
  return false;
}

/// Unnormalized in-place butterfly: x <- H_{2^m} x.
void fwht_unnormalized(float* x, std::size_t n) noexcept {
  for (std::size_t h = 1; h < n; h *= 2)
    for (std::size_t i = 0; i < n; i += 2 * h)
      for (std::size_t j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
}

/// x <- H_n x / sqrt(n) (or H_n^T x / sqrt(n)); n must be supported (checked by the callers).
void transform(std::span<float> x, const Table* table, bool transpose) {
  const std::size_t n = x.size();
  const std::size_t k = table ? table->order : 1;
  const std::size_t m = n / k;
  // The unnormalized butterflies reach n times the largest input: inputs above FLT_MAX / n are
  // first scaled by a power of two (exact), so that only a result that itself exceeds float's
  // range overflows. Other inputs take the unscaled path, so their results do not change.
  float absmax = 0.0f;
  for (float v : x) absmax = std::max(absmax, std::abs(v));
  const bool prescale = absmax > std::numeric_limits<float>::max() / static_cast<float>(n);
  const int shift = prescale ? static_cast<int>(std::bit_width(n)) : 0;
  if (prescale)
    for (float& v : x) v = std::ldexp(v, -shift);
  for (std::size_t a = 0; a < k; ++a) fwht_unnormalized(x.data() + a * m, m);
  const float scale =
      static_cast<float>(std::ldexp(1.0 / std::sqrt(static_cast<double>(n)), shift));
  if (table == nullptr) {
    for (float& v : x) v *= scale;
    return;
  }
  const std::vector<float>& h = table_floats(*table);
  std::vector<float> y(n, 0.0f);
  for (std::size_t a = 0; a < k; ++a) {
    float* out = y.data() + a * m;
    for (std::size_t c = 0; c < k; ++c) {
      const float s = transpose ? h[c * k + a] : h[a * k + c];
      const float* in = x.data() + c * m;
      for (std::size_t b = 0; b < m; ++b) out[b] += s * in[b];
    }
  }
  for (std::size_t i = 0; i < n; ++i) x[i] = y[i] * scale;
}

void require_supported(std::size_t n, const char* what, const Table*& table) {
  if (!split(n, table))
    throw invalid_argument(std::string(what) + ": size " + std::to_string(n) +
                           " is not K * 2^m for a known Hadamard order K");
}

/// splitmix64 (Steele, Lea, Flood 2014): the sign generator of HadamardRotation.
constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

const Table* check_rotation(const HadamardRotation& rotation, std::size_t n) {
  if (n != rotation.size)
    throw invalid_argument("HadamardRotation: vector of length " + std::to_string(n) +
                           " for a rotation of size " + std::to_string(rotation.size));
  const Table* table = nullptr;
  require_supported(rotation.size, "HadamardRotation", table);
  return table;
}

}  // namespace
}  // namespace detail::hadamard

bool hadamard_size_supported(std::size_t n) noexcept {
  const detail::hadamard::Table* table = nullptr;
  return detail::hadamard::split(n, table);
}

std::size_t hadamard_order(std::size_t n) noexcept {
  const detail::hadamard::Table* table = nullptr;
  if (!detail::hadamard::split(n, table)) return 0;
  return table ? table->order : 1;
}

std::string_view hadamard_table(std::size_t order) noexcept {
  const detail::hadamard::Table* table = detail::hadamard::find_table(order);
  return table ? table->entries : std::string_view{};
}

void fwht(std::span<float> x) {
  if (!detail::hadamard::is_power_of_two(x.size()))
    throw invalid_argument("fwht: size " + std::to_string(x.size()) + " is not a power of two");
  detail::hadamard::transform(x, nullptr, false);
}

void hadamard_transform(std::span<float> x) {
  const detail::hadamard::Table* table = nullptr;
  detail::hadamard::require_supported(x.size(), "hadamard_transform", table);
  detail::hadamard::transform(x, table, false);
}

void HadamardRotation::apply(std::span<float> x) const {
  const detail::hadamard::Table* table = detail::hadamard::check_rotation(*this, x.size());
  if (randomized) {
    const std::vector<float> d = signs();
    for (std::size_t i = 0; i < x.size(); ++i) x[i] *= d[i];
  }
  detail::hadamard::transform(x, table, false);
}

void HadamardRotation::apply_transpose(std::span<float> x) const {
  const detail::hadamard::Table* table = detail::hadamard::check_rotation(*this, x.size());
  detail::hadamard::transform(x, table, true);
  if (randomized) {
    const std::vector<float> d = signs();
    for (std::size_t i = 0; i < x.size(); ++i) x[i] *= d[i];
  }
}

std::vector<float> HadamardRotation::signs() const {
  std::vector<float> d(size, 1.0f);
  if (!randomized) return d;
  std::uint64_t state = seed;
  for (float& v : d) v = (detail::hadamard::splitmix64(state) >> 63) ? -1.0f : 1.0f;
  return d;
}

void rotate_input_side(MatrixView<float> weights, const HadamardRotation& rotation) {
  if (weights.cols != rotation.size)
    throw invalid_argument("rotate_input_side: matrix has " + std::to_string(weights.cols) +
                           " columns, rotation has size " + std::to_string(rotation.size));
  const detail::hadamard::Table* table = nullptr;
  detail::hadamard::require_supported(rotation.size, "rotate_input_side", table);
  const std::vector<float> d = rotation.randomized ? rotation.signs() : std::vector<float>{};
  const auto rows = static_cast<std::ptrdiff_t>(weights.rows);
#pragma omp parallel for schedule(static) if (detail::worth_threads(weights.size()))
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    const std::span<float> row = weights.row(static_cast<std::size_t>(r));
    if (!d.empty())
      for (std::size_t i = 0; i < row.size(); ++i) row[i] *= d[i];
    detail::hadamard::transform(row, table, false);
  }
}

}  // namespace lowbit
