// The row loop the microscaling, NF4 and FP8 quantizers share (quant/microscaling.hpp).
#include "lowbit/quant/microscaling.hpp"

#include "detail/parallel_rows.hpp"
#include "lowbit/detail/parallel.hpp"

namespace lowbit::detail {

void quantize_rows(MatrixView<const float> w, QuantizedMatrix& q,
                   const std::function<void(std::size_t, std::span<std::uint8_t>)>& quantize_row) {
  for_each_row(
      w.rows, worth_threads(w.size()), [&] { return std::vector<std::uint8_t>(w.cols); },
      [&](std::size_t row, std::vector<std::uint8_t>& codes) {
        quantize_row(row, std::span<std::uint8_t>(codes));
        pack_words(codes, q.scheme().bits, q.row_words(row), q.scheme().pack_order);
      });
}

}  // namespace lowbit::detail
