// The backend-dispatch interface of lowbit's dequantize-GEMM kernels.
//
// A Backend runs Y = X W^T for a QuantizedMatrix W [out, in] and float activations X [batch, in]
// (row-major), Y [batch, out]. It first repacks W once, at load time, into the layout its kernels
// read (Backend::prepare -> PreparedMatrix), then multiplies as often as needed (Backend::gemm).
//
// Backends:
//   reference  scalar and simple, the oracle every other backend is tested against (header
//              kernels/reference.hpp); runs every Scheme.
//   cpu        SIMD kernels (xsimd; AVX2+FMA and AVX-512 variants compiled in their own
//              translation units, chosen once at run time from CPUID, LOWBIT_ISA=scalar|avx2|avx512
//              forces one). A Scheme it has no kernel for is prepared for the reference kernels
//              instead: PreparedMatrix::fallback() says so; supports() says it up front.
//   cuda       NVIDIA GPUs, fp16/bf16 activations (kernels/cuda.hpp, lowbit::cuda); falls back to
//              the reference kernels as the cpu backend does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "lowbit/cpu_features.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit::kernels {

/// What a GEMM does with its activations.
enum class ActivationQuantization : std::uint8_t {
  none,            // float activations times the dequantized weights (W4A16, W8A16, ...)
  int8_per_token,  // each row of X quantized to int8 (absmax / 127) on the fly, integer dot
                   // products, scales applied per weight group (W8A8, W4A8)
  llm_int8,        // LLM.int8(): int8 per token except the input columns holding |x| > threshold,
             // which are multiplied in float (kernels/int8_reference.hpp); int8 per-channel weights
};

std::string_view to_string(ActivationQuantization activations) noexcept;

struct PrepareOptions {
  ActivationQuantization activations = ActivationQuantization::none;
  float outlier_threshold = 6.0f;  // llm_int8 only
};

class Backend;

/// A QuantizedMatrix repacked for one backend's kernels. Keeps the QuantizedMatrix it came from.
class PreparedMatrix {
 public:
  virtual ~PreparedMatrix() = default;
  PreparedMatrix(const PreparedMatrix&) = delete;
  PreparedMatrix& operator=(const PreparedMatrix&) = delete;

  const QuantizedMatrix& source() const noexcept { return *source_; }
  std::size_t rows() const noexcept { return source_->rows(); }
  std::size_t cols() const noexcept { return source_->cols(); }
  const PrepareOptions& options() const noexcept { return options_; }
  /// The backend whose gemm runs this matrix.
  const Backend& backend() const noexcept { return *backend_; }
  /// True when the backend had no kernel for this Scheme and runs the reference kernels instead.
  bool fallback() const noexcept { return fallback_; }
  /// Bytes of weight data one gemm call reads in this backend's layout (codes, scales, zero-point
  /// biases, tables; the reference backend's dequantized floats): what a bandwidth figure divides.
  virtual std::size_t bytes() const noexcept = 0;

 protected:
  PreparedMatrix(std::shared_ptr<const QuantizedMatrix> source, const PrepareOptions& options,
                 const Backend& backend, bool fallback)
      : source_(std::move(source)), options_(options), backend_(&backend), fallback_(fallback) {}

 private:
  std::shared_ptr<const QuantizedMatrix> source_;
  PrepareOptions options_;
  const Backend* backend_;
  bool fallback_;
};

class Backend {
 public:
  virtual ~Backend() = default;
  /// "reference", "cpu/avx512", "cpu/avx2", "cpu/scalar", "cuda".
  virtual std::string name() const = 0;
  /// Whether this backend has its own kernel for `scheme` with these activations (when not,
  /// prepare falls back to the reference kernels or throws, as the backend documents).
  virtual bool supports(const Scheme& scheme, const PrepareOptions& options) const = 0;
  /// Repacks w. Throws unsupported for an activation mode the Scheme cannot run (int8 modes need
  /// integer weights; llm_int8 needs int8 per-channel weights).
  virtual std::unique_ptr<PreparedMatrix> prepare(std::shared_ptr<const QuantizedMatrix> w,
                                                  const PrepareOptions& options = {}) const = 0;
  /// Y = X W^T for a matrix this backend prepared. X [batch, in], Y [batch, out]; they must not
  /// overlap. Throws invalid_argument for shapes that do not fit or a matrix another backend
  /// prepared, invalid_value for NaN/Inf activations in the int8 modes.
  virtual void gemm(const PreparedMatrix& w, MatrixView<const float> x,
                    MatrixView<float> y) const = 0;

 protected:
  Backend() = default;
  Backend(const Backend&) = default;
  Backend& operator=(const Backend&) = default;
};

/// The scalar reference backend.
const Backend& reference_backend();
/// The SIMD CPU backend for the instruction set selected_isa() chooses (cpu_features.hpp).
const Backend& cpu_backend();
/// The CPU backend for one instruction set (for tests and benchmarks); unsupported when this CPU
/// cannot run it.
const Backend& cpu_backend(Isa isa);
/// The backend gemm uses when none is named: the CPU backend.
const Backend& default_backend();

/// Threads the CPU kernels use (OpenMP over output rows); 0 = OpenMP's default.
void set_num_threads(int threads);
int num_threads() noexcept;

}  // namespace lowbit::kernels
