#include <catch2/catch.hpp>

#include <vector>

#include "lowbit/matrix_view.hpp"

TEST_CASE("a matrix view addresses rows through its stride", "[matrix_view]") {
  std::vector<float> storage(3 * 5);
  for (std::size_t i = 0; i < storage.size(); ++i) storage[i] = static_cast<float>(i);
  const lowbit::MatrixView<float> view(storage.data(), 3, 4, 5);  // the last column is padding
  CHECK(view.size() == 12);
  CHECK(view(1, 0) == 5.0f);
  CHECK(view(2, 3) == 13.0f);
  CHECK(view.row(2).size() == 4);
  CHECK(view.row(2)[0] == 10.0f);
  view(0, 1) = -1.0f;
  const lowbit::MatrixView<const float> read_only = view;  // mutable converts to read-only
  CHECK(read_only(0, 1) == -1.0f);
  CHECK(read_only.row_stride == 5);
}

TEST_CASE("a matrix view rejects impossible shapes", "[matrix_view]") {
  std::vector<float> storage(8);
  CHECK_THROWS_AS(lowbit::MatrixView<float>(storage.data(), 2, 4, 3), lowbit::invalid_argument);
  CHECK_THROWS_AS(lowbit::MatrixView<const float>(nullptr, 2, 4), lowbit::invalid_argument);
  CHECK_NOTHROW(lowbit::MatrixView<const float>(nullptr, 0, 4));
}
