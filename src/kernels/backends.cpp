// The backend registry and the reference backend (the CPU backend is kernels/cpu/backend.cpp).
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kernels/backend_common.hpp"
#include "lowbit/algo/smoothquant.hpp"  // w8a8_weight_scheme: what LLM.int8() runs on
#include "lowbit/cpu_features.hpp"
#include "lowbit/error.hpp"
#include "lowbit/kernels/backend.hpp"
#include "lowbit/kernels/reference.hpp"

namespace lowbit::kernels {

std::string_view to_string(ActivationQuantization activations) noexcept {
  switch (activations) {
    case ActivationQuantization::none:
      return "none";
    case ActivationQuantization::int8_per_token:
      return "int8_per_token";
    case ActivationQuantization::llm_int8:
      return "llm_int8";
  }
  return "?";
}

namespace {

std::atomic<int> thread_setting{0};

}  // namespace

int detail::threads_to_use() noexcept {
  const int n = thread_setting.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
}

void detail::check_activation_mode(const QuantizedMatrix& w, const PrepareOptions& options) {
  switch (options.activations) {
    case ActivationQuantization::none:
      return;
    case ActivationQuantization::int8_per_token:
      detail::require_integer_weights(w.scheme(), "prepare");
      return;
    case ActivationQuantization::llm_int8:
      if (w.scheme() != w8a8_weight_scheme() || w.input_rotation())
        throw unsupported("prepare: LLM.int8() needs int8 per-channel weights (" +
                          w8a8_weight_scheme().to_string() + "), not " + w.scheme().to_string());
      if (!(options.outlier_threshold > 0.0f))
        throw invalid_argument("prepare: the LLM.int8() outlier threshold must be positive");
      return;
  }
}

// --- reference ---

detail::ReferencePrepared::ReferencePrepared(std::shared_ptr<const QuantizedMatrix> w,
                                             const PrepareOptions& options, const Backend& backend,
                                             bool fallback)
    : PreparedMatrix(std::move(w), options, backend, fallback) {
  // The float weights are what the `none` mode multiplies: dequantized once, here.
  if (options.activations == ActivationQuantization::none) dequantized_ = source().dequantize();
}

std::size_t detail::ReferencePrepared::bytes() const noexcept {
  return options().activations == ActivationQuantization::none ? dequantized_.size() * sizeof(float)
                                                               : source().storage_bytes();
}

void detail::ReferencePrepared::gemm(MatrixView<const float> x, MatrixView<float> y) const {
  const QuantizedMatrix& w = source();
  detail::check_gemm_shapes(w.rows(), w.cols(), x, y, "gemm");
  if (options().activations != ActivationQuantization::none) {
    reference_gemm(w, x, y, options());
    return;
  }
  const std::vector<float> rotated = detail::rotated_inputs(w, x);
  reference_gemm_dequantized(MatrixView<const float>(dequantized_.data(), w.rows(), w.cols()),
                             MatrixView<const float>(rotated.data(), x.rows, x.cols), y);
}

namespace {

class ReferenceBackend final : public Backend {
 public:
  std::string name() const override { return "reference"; }
  bool supports(const Scheme&, const PrepareOptions&) const override { return true; }
  std::unique_ptr<PreparedMatrix> prepare(std::shared_ptr<const QuantizedMatrix> w,
                                          const PrepareOptions& options) const override {
    if (!w) throw invalid_argument("prepare: no matrix");
    detail::check_activation_mode(*w, options);
    return std::make_unique<detail::ReferencePrepared>(std::move(w), options, *this, false);
  }
  void gemm(const PreparedMatrix& w, MatrixView<const float> x,
            MatrixView<float> y) const override {
    if (&w.backend() != this)
      throw invalid_argument("gemm: the matrix was prepared by the " + w.backend().name() +
                             " backend, not the reference one");
    static_cast<const detail::ReferencePrepared&>(w).gemm(x, y);
  }
};

}  // namespace

const Backend& reference_backend() {
  static const ReferenceBackend backend;
  return backend;
}

const Backend& default_backend() { return cpu_backend(); }

void set_num_threads(int threads) { thread_setting.store(std::max(threads, 0)); }

int num_threads() noexcept { return detail::threads_to_use(); }

}  // namespace lowbit::kernels
