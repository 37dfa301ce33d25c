// (Private to the compiled library.) What every backend shares: the check of an activation mode
// against the weights, the thread count, and the reference kernels' prepared matrix, which the CPU
// backend also falls back to for a Scheme it has no kernel for.
#pragma once

#include <memory>
#include <vector>

#include "lowbit/kernels/backend.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quantized_matrix.hpp"

namespace lowbit::kernels::detail {

/// What any backend's prepare checks: the activation mode fits the weights.
void check_activation_mode(const QuantizedMatrix& w, const PrepareOptions& options);

/// set_num_threads' count, else OpenMP's.
int threads_to_use() noexcept;

/// The reference backend's matrix: the QuantizedMatrix, dequantized once for the float mode.
class ReferencePrepared final : public PreparedMatrix {
 public:
  ReferencePrepared(std::shared_ptr<const QuantizedMatrix> w, const PrepareOptions& options,
                    const Backend& backend, bool fallback);

  std::size_t bytes() const noexcept override;
  void gemm(MatrixView<const float> x, MatrixView<float> y) const;

 private:
  std::vector<float> dequantized_;
};

}  // namespace lowbit::kernels::detail
