// The CUDA backend's weight layout (kernels/cuda/packed_layout.hpp), on the host: it runs without
// a GPU and without CUDA. Each packed matrix is read back with the layout's own decoder and must
// equal QuantizedMatrix::dequantize bit for bit.
#include <catch2/catch.hpp>

#include "../kernels/cuda/packed_layout.hpp"
#include "support/cuda_cases.hpp"
#include "support/random_data.hpp"

#include <cstddef>
#include <cstdint>
#include <set>
#include <vector>

#include "lowbit/error.hpp"
#include "lowbit/format/ggml_blocks.hpp"
#include "lowbit/quant/ggml.hpp"
#include "lowbit/quant/microscaling.hpp"
#include "lowbit/quant/nf4.hpp"

namespace cuda = lowbit::kernels::cuda;
using lowbit::Granularity;
using lowbit::MatrixView;
using lowbit::QuantizedMatrix;
using lowbit::Scheme;

TEST_CASE("the CUDA fragment layout is a bijection over a tile", "[cuda]") {
  for (const int bits : {4, 8}) {
    std::set<std::pair<unsigned, unsigned>> seen;
    for (unsigned r = 0; r < 16; ++r)
      for (unsigned c = 0; c < 16; ++c) {
        const cuda::FragmentSlot at = cuda::fragment_slot(r, c, bits);
        CHECK(at.lane < 32);
        CHECK(at.slot < 8);
        seen.insert({at.lane, at.slot});
        // The mma A fragment: lane 4g + t holds rows g, g + 8 and columns 2t, 2t + 1, 2t + 8, 2t
        // + 9.
        CHECK(at.lane / 4 == r % 8);
        CHECK(at.lane % 4 == (c % 8) / 2);
      }
    CHECK(seen.size() == 256);
  }
  std::set<unsigned> positions;
  for (unsigned c = 0; c < 16; ++c) positions.insert(cuda::staged_position(c));
  CHECK(positions.size() == 16);
  CHECK(*positions.rbegin() == 15);
  // Lane t reads positions 4t..4t+3: columns 2t, 2t + 1, 2t + 8, 2t + 9.
  CHECK(cuda::staged_position(2) == 4);
  CHECK(cuda::staged_position(3) == 5);
  CHECK(cuda::staged_position(10) == 6);
  CHECK(cuda::staged_position(11) == 7);
}

TEST_CASE("the CUDA layout reads back every scheme exactly, on ragged shapes", "[cuda]") {
  struct Shape {
    std::size_t rows, cols;
  };
  // Rows not a multiple of 16, columns not a multiple of the group or of 64, one-row matrices,
  // and more than 128 rows for the 128 x 128 blocks.
  const std::vector<Shape> shapes = {{1, 1},    {1, 100},  {5, 31},   {16, 64},
                                     {17, 100}, {33, 257}, {3, 1000}, {130, 300}};
  std::uint32_t seed = 900;
  for (const Shape& shape : shapes)
    for (const QuantizedMatrix& q : lowbit::test::cuda_cases(shape.rows, shape.cols, seed++)) {
      INFO(q.scheme().to_string() << " [" << q.rows() << ", " << q.cols() << "]");
      REQUIRE(cuda::unpackable_reason(q).empty());
      CHECK(cuda::scheme_packable(q.scheme()));
      const cuda::PackedMatrix p = cuda::pack(q);
      CHECK(p.padded_rows % 16 == 0);
      CHECK(p.padded_rows >= q.rows());
      CHECK(p.padded_cols % 64 == 0);
      CHECK(p.padded_cols >= q.cols());
      CHECK(p.group % 16 == 0);
      CHECK(p.codes.size() * 4 == p.padded_rows * p.padded_cols * cuda::code_bits(p.decode) / 8);
      const std::vector<float> expected = q.dequantize();
      const std::vector<float> back = cuda::unpack(p);
      REQUIRE(back.size() == expected.size());
      std::size_t differ = 0;
      for (std::size_t i = 0; i < back.size(); ++i) differ += back[i] != expected[i];
      CHECK(differ == 0);
      // Padding holds code 0.
      std::size_t nonzero_padding = 0;
      for (std::size_t r = 0; r < p.padded_rows; ++r)
        for (std::size_t c = 0; c < p.padded_cols; ++c)
          if (r >= p.rows || c >= p.cols) {
            const float v = cuda::level(p, r, c);
            nonzero_padding += p.decode == cuda::Decode::lut4 ? v != p.table[0] : v != 0.0f;
          }
      CHECK(nonzero_padding == 0);
    }
}

TEST_CASE("the CUDA layout decodes each format as its kernel does", "[cuda]") {
  const auto w = lowbit::test::weights_with_outliers(4, 96, 950);
  const MatrixView<const float> view(w.data(), 4, 96);
  CHECK(cuda::pack(
            lowbit::quantize_linear(view, Scheme::symmetric_int(4, Granularity::per_group(32))))
            .decode == cuda::Decode::int4);
  CHECK(cuda::pack(
            lowbit::quantize_linear(view, Scheme::asymmetric_int(6, Granularity::per_group(32))))
            .decode == cuda::Decode::int8);
  CHECK(cuda::pack(lowbit::quantize_nvfp4(view)).decode == cuda::Decode::lut4);
  CHECK(cuda::pack(lowbit::quantize_mxfp8(view)).decode == cuda::Decode::e4m3);
  // Signed codes are stored as unsigned levels with the offset as their zero.
  const cuda::PackedMatrix sym = cuda::pack(
      lowbit::quantize_linear(view, Scheme::symmetric_int(4, Granularity::per_channel())));
  CHECK(!sym.has_zero);
  CHECK(sym.level_offset == 8.0f);
  CHECK(sym.group == sym.padded_cols);
  CHECK(sym.groups == 1);
  // E4M3 scales carry 2^8.
  const QuantizedMatrix fp8 = lowbit::quantize_mxfp8(view);
  CHECK(cuda::pack(fp8).scales[0] == fp8.scale(fp8.scale_index(0, 0)) * 256.0f);
}

TEST_CASE("the CUDA layout refuses what its kernels cannot decode", "[cuda]") {
  const auto w = lowbit::test::gaussian(4 * 256, 960);
  const MatrixView<const float> view(w.data(), 4, 256);
  // Groups that are not a multiple of 16 columns.
  const QuantizedMatrix g8 =
      lowbit::quantize_linear(view, Scheme::asymmetric_int(4, Granularity::per_group(8)));
  CHECK(!cuda::unpackable_reason(g8).empty());
  CHECK(!cuda::scheme_packable(g8.scheme()));
  CHECK_THROWS_AS(cuda::pack(g8), lowbit::unsupported);
  // llama.cpp blocks, vector codebooks, per-row codebooks.
  CHECK(!cuda::scheme_packable(Scheme::ggml_blocks(lowbit::GgmlType::q4_0)));
  Scheme vector_codebook{.element = lowbit::ElementFormat::codebook,
                         .bits = 4,
                         .granularity = Granularity::none(),
                         .vector_dim = 2,
                         .codebook_granularity = Granularity::per_tensor(),
                         .codebook_format = lowbit::ScalarFormat::f16};
  CHECK(!cuda::scheme_packable(vector_codebook));
  Scheme row_codebook = vector_codebook;
  row_codebook.vector_dim = 1;
  row_codebook.codebook_granularity = Granularity::per_channel();
  CHECK(!cuda::scheme_packable(row_codebook));
  row_codebook.codebook_granularity = Granularity::per_tensor();
  CHECK(cuda::scheme_packable(row_codebook));
  // An E4M3 NaN code.
  QuantizedMatrix nan = lowbit::quantize_mxfp8(view);
  CHECK(cuda::unpackable_reason(nan).empty());
  nan.set_code(1, 7, 0xFF);
  CHECK(!cuda::unpackable_reason(nan).empty());
}
