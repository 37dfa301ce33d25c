// Generates src/format/hadamard_tables.hpp: the ±1 Hadamard matrices H_K of the
// orders K that lowbit's Hadamard transform combines with a power of two (n = K * 2^m).
//
//   Paley I   (q ≡ 3 mod 4 a prime power, K = q + 1):  K = 12, 20, 28 (GF(27)), 60, 108, 140.
//             Q[i][j] = chi(a_i - a_j) (quadratic character of GF(q)), S = [[0, 1^T], [-1, Q]],
//             H = I + S.
//   Paley II  (q ≡ 1 mod 4 a prime power, K = 2 (q + 1)): K = 36 (q = 17), 52 (GF(25)).
//             C = [[0, 1^T], [1, Q]] (symmetric conference matrix),
//             H = C ⊗ [[1, 1], [1, -1]] + I ⊗ [[1, -1], [-1, -1]].
//   Sylvester doubling: H_40 = [[H_20, H_20], [H_20, -H_20]].
//   Williamson (K = 4n): H = [[A, B, C, D], [-B, A, -D, C], [-C, D, A, -B], [-D, -C, B, A]] with
//             A, B, C, D symmetric circulant ±1 matrices of order n, A^2 + B^2 + C^2 + D^2 = 4n I.
//             K = 156 (n = 39) and 172 (n = 43); the first rows are published data:
//               n = 39: S. London, "Constructing new Turyn type sequences, T-sequences and
//                       Hadamard matrices", PhD thesis, University of Illinois at Chicago, 2013.
//               n = 43: M. Hall Jr., Combinatorial Theory, 2nd ed., Wiley, 1983 (Williamson
//                       matrices of order 43 after Baumert & Hall / Whiteman).
//
// Every matrix is checked here (entries ±1, H H^T = K I) before it is written; the tests check
// the stored tables again.
//
// Build and run (from the repository root):
//   g++ -std=c++20 -O2 tools/gen/gen_hadamard.cpp -o /tmp/gen_hadamard
//   /tmp/gen_hadamard > src/format/hadamard_tables.hpp
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace {

using Matrix = std::vector<std::vector<int>>;

// GF(p^k) with elements 0 .. q-1 written in base p (polynomial coefficients, lowest first),
// reduced modulo a monic irreducible polynomial of degree k (found by search; k <= 3 here, so
// "no root in GF(p)" is irreducibility).
struct Field {
  int p, k, q;
  std::vector<int> modulus;  // coefficients c_0 .. c_{k-1} of x^k + c_{k-1} x^{k-1} + ... + c_0
  std::vector<int> digits(int a) const {
    std::vector<int> d(k);
    for (int i = 0; i < k; ++i) d[i] = a % p, a /= p;
    return d;
  }
  int from_digits(const std::vector<int>& d) const {
    int a = 0;
    for (int i = k - 1; i >= 0; --i) a = a * p + d[i];
    return a;
  }
  int sub(int a, int b) const {
    std::vector<int> x = digits(a), y = digits(b);
    for (int i = 0; i < k; ++i) x[i] = ((x[i] - y[i]) % p + p) % p;
    return from_digits(x);
  }
  int mul(int a, int b) const {
    std::vector<int> x = digits(a), y = digits(b), r(2 * k - 1, 0);
    for (int i = 0; i < k; ++i)
      for (int j = 0; j < k; ++j) r[i + j] = (r[i + j] + x[i] * y[j]) % p;
    for (int deg = 2 * k - 2; deg >= k; --deg) {  // x^k = -(c_{k-1} x^{k-1} + ... + c_0)
      const int c = r[deg];
      r[deg] = 0;
      for (int i = 0; i < k; ++i) r[deg - k + i] = ((r[deg - k + i] - c * modulus[i]) % p + p) % p;
    }
    r.resize(k);
    return from_digits(r);
  }
};

Field make_field(int p, int k) {
  Field f{p, k, 1, {}};
  for (int i = 0; i < k; ++i) f.q *= p;
  if (k == 1) {
    f.modulus = {0};  // unused: products never reach degree 1
    return f;
  }
  if (k > 3) std::abort();
  for (int code = 0;; ++code) {  // monic candidates x^k + ..., coefficients from code
    std::vector<int> c(k);
    int t = code;
    for (int i = 0; i < k; ++i) c[i] = t % p, t /= p;
    bool root = false;
    for (int x = 0; x < p && !root; ++x) {
      int v = 1;  // Horner on x^k + c_{k-1} x^{k-1} + ... + c_0
      for (int i = k - 1; i >= 0; --i) v = (v * x + c[i]) % p;
      root = v == 0;
    }
    if (!root) {
      f.modulus = c;
      return f;
    }
  }
}

// Quadratic character matrix Q[i][j] = chi(i - j) over GF(q).
Matrix jacobsthal(int p, int k) {
  const Field f = make_field(p, k);
  std::vector<int> chi(f.q, -1);
  chi[0] = 0;
  for (int a = 1; a < f.q; ++a) chi[f.mul(a, a)] = 1;
  Matrix Q(f.q, std::vector<int>(f.q));
  for (int i = 0; i < f.q; ++i)
    for (int j = 0; j < f.q; ++j) Q[i][j] = chi[f.sub(i, j)];
  return Q;
}

Matrix paley1(int p, int k) {
  const Matrix Q = jacobsthal(p, k);
  const int q = static_cast<int>(Q.size()), n = q + 1;
  Matrix H(n, std::vector<int>(n));
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      int s;
      if (i == 0)
        s = j == 0 ? 0 : 1;
      else if (j == 0)
        s = -1;
      else
        s = Q[i - 1][j - 1];
      H[i][j] = s + (i == j ? 1 : 0);
    }
  return H;
}

Matrix paley2(int p, int k) {
  const Matrix Q = jacobsthal(p, k);
  const int q = static_cast<int>(Q.size()), m = q + 1;
  Matrix H(2 * m, std::vector<int>(2 * m));
  const int plus[2][2] = {{1, 1}, {1, -1}}, diag[2][2] = {{1, -1}, {-1, -1}};
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < m; ++j) {
      const int c = i == 0 ? (j == 0 ? 0 : 1) : j == 0 ? 1 : Q[i - 1][j - 1];
      for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b)
          H[2 * i + a][2 * j + b] = c * plus[a][b] + (i == j ? diag[a][b] : 0);
    }
  return H;
}

Matrix sylvester_double(const Matrix& A) {
  const int n = static_cast<int>(A.size());
  Matrix H(2 * n, std::vector<int>(2 * n));
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      H[i][j] = H[i][j + n] = H[i + n][j] = A[i][j];
      H[i + n][j + n] = -A[i][j];
    }
  return H;
}

Matrix williamson(const char* a, const char* b, const char* c, const char* d) {
  const std::string rows[4] = {a, b, c, d};
  const int n = static_cast<int>(rows[0].size());
  auto circ = [&](int which, int i, int j) {
    return rows[which][((j - i) % n + n) % n] == '+' ? 1 : -1;
  };
  // block[r][c] = (sign, which of A..D)
  const int which[4][4] = {{0, 1, 2, 3}, {1, 0, 3, 2}, {2, 3, 0, 1}, {3, 2, 1, 0}};
  const int sign[4][4] = {{1, 1, 1, 1}, {-1, 1, -1, 1}, {-1, 1, 1, -1}, {-1, -1, 1, 1}};
  Matrix H(4 * n, std::vector<int>(4 * n));
  for (int br = 0; br < 4; ++br)
    for (int bc = 0; bc < 4; ++bc)
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j)
          H[br * n + i][bc * n + j] = sign[br][bc] * circ(which[br][bc], i, j);
  return H;
}

void check(const Matrix& H, int K) {
  if (static_cast<int>(H.size()) != K) {
    std::fprintf(stderr, "order %d: wrong size %zu\n", K, H.size());
    std::exit(1);
  }
  for (int i = 0; i < K; ++i)
    for (int j = 0; j < K; ++j) {
      if (H[i][j] != 1 && H[i][j] != -1) {
        std::fprintf(stderr, "order %d: entry (%d, %d) = %d\n", K, i, j, H[i][j]);
        std::exit(1);
      }
      int dot = 0;
      for (int t = 0; t < K; ++t) dot += H[i][t] * H[j][t];
      if (dot != (i == j ? K : 0)) {
        std::fprintf(stderr, "order %d: rows %d and %d have dot product %d\n", K, i, j, dot);
        std::exit(1);
      }
    }
}

}  // namespace

int main() {
  std::map<int, std::pair<Matrix, const char*>> all;
  all[12] = {paley1(11, 1), "Paley I, q = 11"};
  all[20] = {paley1(19, 1), "Paley I, q = 19"};
  all[28] = {paley1(3, 3), "Paley I, q = 27 (GF(3^3))"};
  all[36] = {paley2(17, 1), "Paley II, q = 17"};
  all[40] = {sylvester_double(all[20].first), "Sylvester doubling of H_20"};
  all[52] = {paley2(5, 2), "Paley II, q = 25 (GF(5^2))"};
  all[60] = {paley1(59, 1), "Paley I, q = 59"};
  all[108] = {paley1(107, 1), "Paley I, q = 107"};
  all[140] = {paley1(139, 1), "Paley I, q = 139"};
  all[156] = {williamson("+++--+-+-----+--++----++--+-----+-+--++",
                         "+++--++-+---+-+--+----+--+-+---+-++--++",
                         "++++---+--++----+-+--+-+----++--+---+++",
                         "+---++-+-+-----+++-++-+++-----+-+-++---"),
              "Williamson, n = 39 (London 2013)"};
  all[172] = {williamson("++---++++-+--+--++--------++--+--+-++++---+",
                         "+++-+-++--+-+-++++-+----+-++++-+-+--++-+-++",
                         "++-++++++----+-+--++-++-++--+-+----++++++-+",
                         "+---++--++++-+-+++-++--++-+++-+-++++--++---"),
              "Williamson, n = 43 (Hall 1983)"};
  for (const auto& [K, entry] : all) check(entry.first, K);

  std::printf(
      "// Generated by tools/gen/gen_hadamard.cpp; do not edit. Hadamard matrices H_K (H H^T = K "
      "I)\n"
      "// as row-major strings, '+' for +1 and '-' for -1. How each was built is noted beside it.\n"
      "// clang-format off\n#pragma once\n\n#include <cstddef>\n#include <string_view>\n\n"
      "namespace lowbit::detail::hadamard {\n\n"
      "struct Table {\n  std::size_t order;\n  std::string_view entries;  // order * order "
      "characters\n};\n\n");
  for (const auto& [K, entry] : all) {
    std::printf("// H_%d: %s.\ninline constexpr std::string_view h%d =\n", K, entry.second, K);
    for (int i = 0; i < K; ++i) {
      std::string row;
      for (int v : entry.first[i]) row += v > 0 ? '+' : '-';
      std::printf("    \"%s\"%s\n", row.c_str(), i + 1 == K ? ";" : "");
    }
    std::printf("\n");
  }
  std::printf("inline constexpr Table tables[] = {\n");
  for (const auto& [K, entry] : all) std::printf("    {%d, h%d},\n", K, K);
  std::printf("};\n\n}  // namespace lowbit::detail::hadamard\n");
  std::fprintf(stderr, "all %zu matrices verified\n", all.size());
}
