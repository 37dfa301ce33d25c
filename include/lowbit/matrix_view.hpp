// A non-owning, row-major, strided view of a matrix: what lowbit's functions take instead of a
// particular matrix library's types.
#pragma once

#include <cstddef>
#include <span>
#include <type_traits>

#include "lowbit/error.hpp"

namespace lowbit {

template <class T>
struct MatrixView {
  T* data = nullptr;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::size_t row_stride = 0;  // elements between the starts of consecutive rows (>= cols)

  constexpr MatrixView() = default;
  constexpr MatrixView(T* data_, std::size_t rows_, std::size_t cols_)
      : MatrixView(data_, rows_, cols_, cols_) {}
  constexpr MatrixView(T* data_, std::size_t rows_, std::size_t cols_, std::size_t row_stride_)
      : data(data_), rows(rows_), cols(cols_), row_stride(row_stride_) {
    if (row_stride < cols) throw invalid_argument("matrix view: row stride is smaller than cols");
    if (data == nullptr && rows * cols != 0) throw invalid_argument("matrix view: null data");
  }
  /// A mutable view converts to a read-only one.
  template <class U>
  requires std::is_same_v<const U, T> &&
      (!std::is_same_v<U, T>)constexpr MatrixView(const MatrixView<U>& other) noexcept
      : data(other.data), rows(other.rows), cols(other.cols), row_stride(other.row_stride) {}

  constexpr T& operator()(std::size_t r, std::size_t c) const noexcept {
    return data[r * row_stride + c];
  }
  constexpr std::span<T> row(std::size_t r) const noexcept { return {data + r * row_stride, cols}; }
  constexpr std::size_t size() const noexcept { return rows * cols; }
};

}  // namespace lowbit
