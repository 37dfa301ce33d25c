// The row loop the microscaling, NF4 and FP8 quantizers share (quant/microscaling.hpp).
#include "lowbit/quant/microscaling.hpp"

#include "lowbit/detail/parallel.hpp"

namespace lowbit::detail {

void quantize_rows(MatrixView<const float> w, QuantizedMatrix& q,
                   const std::function<void(std::size_t, std::span<std::uint8_t>)>& quantize_row) {
  const auto rows = static_cast<std::ptrdiff_t>(w.rows);
#pragma omp parallel if (worth_threads(w.size()))
  {
    std::vector<std::uint8_t> codes(w.cols);
#pragma omp for schedule(static)
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
      const auto row = static_cast<std::size_t>(r);
      quantize_row(row, std::span<std::uint8_t>(codes));
      pack_words(codes, q.scheme().bits, q.row_words(row), q.scheme().pack_order);
    }
  }
}

}  // namespace lowbit::detail
