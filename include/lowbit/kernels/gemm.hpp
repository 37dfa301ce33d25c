// The public entry of lowbit's dequantize-GEMM kernels: Y = X W^T for a QuantizedMatrix W
// [out, in] and float activations X [batch, in] (row-major), Y [batch, out].
//
//   auto prepared = lowbit::kernels::prepare(std::move(q));   // once, at load time
//   lowbit::kernels::gemm(*prepared, x, y);                     // in the hot loop
//
// prepare repacks W for a backend (the CPU one, for the instruction set this CPU runs, unless
// another is named); see kernels/backend.hpp for the backends and what each runs.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "lowbit/error.hpp"
#include "lowbit/kernels/backend.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quantized_matrix.hpp"

namespace lowbit::kernels {

/// Repacks w once for `backend`'s kernels.
inline std::unique_ptr<PreparedMatrix> prepare(QuantizedMatrix w,
                                               const PrepareOptions& options = {},
                                               const Backend& backend = default_backend()) {
  return backend.prepare(std::make_shared<const QuantizedMatrix>(std::move(w)), options);
}

/// Y = X W^T on the backend that prepared W.
inline void gemm(const PreparedMatrix& w, MatrixView<const float> x, MatrixView<float> y) {
  w.backend().gemm(w, x, y);
}

/// Y = X W^T for contiguous row-major activations: x holds batch * w.cols() values and y batch *
/// w.rows(), batch = x.size() / w.cols() (a std::vector passes as is). Throws invalid_argument when
/// x is not whole rows or y does not match.
inline void gemm(const PreparedMatrix& w, std::span<const float> x, std::span<float> y) {
  const std::size_t batch = w.cols() == 0 ? 0 : x.size() / w.cols();
  if (batch * w.cols() != x.size() || y.size() != batch * w.rows()) {
    std::string message = "gemm: ";
    message.append(std::to_string(x.size()))
        .append(" activations and ")
        .append(std::to_string(y.size()))
        .append(" outputs for a weight of ")
        .append(lowbit::detail::shape_text(w.rows(), w.cols()))
        .append(" (x must hold batch * in values, y batch * out)");
    throw invalid_argument(message);
  }
  gemm(w, MatrixView<const float>(x.data(), batch, w.cols()),
       MatrixView<float>(y.data(), batch, w.rows()));
}

/// Y = X W^T, preparing W for this one call (for a matrix used once; prepare it otherwise).
inline void gemm(const QuantizedMatrix& w, MatrixView<const float> x, MatrixView<float> y,
                 const PrepareOptions& options = {}, const Backend& backend = default_backend()) {
  const auto prepared = prepare(w, options, backend);
  gemm(*prepared, x, y);
}

}  // namespace lowbit::kernels
