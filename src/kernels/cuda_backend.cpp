// The CUDA backend (include/lowbit/kernels/cuda.hpp): device memory for prepared matrices, the
// fallback to the reference kernels, and the gemm entries (device pointers, and host floats
// through fp16). Host code, compiled by the host compiler; the kernels are in kernels/cuda/*.cu.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../../kernels/cuda/launch.hpp"
#include "../../kernels/cuda/packed_layout.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/kernels/backend.hpp"
#include "lowbit/kernels/cuda.hpp"
#include "lowbit/kernels/reference.hpp"

namespace lowbit::kernels {

namespace {

using cuda::DeviceWeights;
using cuda::PackedMatrix;

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw error(std::string("CUDA: ") + what + ": " + cudaGetErrorName(status) + " (" +
                cudaGetErrorString(status) + ")");
}

/// Makes `device` current for a scope, then restores the caller's.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceScope() { cudaSetDevice(previous_); }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
};

/// An owning device allocation.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes) {
    if (bytes > 0) check(cudaMalloc(&data_, bytes), "cudaMalloc");
  }
  template <class T>
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size() * sizeof(T)) {
    if (!host.empty())
      check(cudaMemcpy(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
            "cudaMemcpy to the device");
  }
  ~DeviceBuffer() {
    if (data_ != nullptr) cudaFree(data_);
  }
  DeviceBuffer(DeviceBuffer&& other) noexcept : data_(std::exchange(other.data_, nullptr)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    return *this;
  }
  template <class T>
  T* as() const noexcept {
    return static_cast<T*>(data_);
  }

 private:
  void* data_ = nullptr;
};

/// Why the CUDA backend cannot run here (empty when it can): no CUDA build is handled by
/// cuda_unavailable.cpp; this is no device, or one older than the kernels (sm_80).
std::string device_problem() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0)
    return std::string("no CUDA device is present (") +
           (status != cudaSuccess ? cudaGetErrorString(status) : "0 devices") + ")";
  int device = 0, major = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess)
    return "the current CUDA device cannot be queried";
  if (major < 8) return "the CUDA kernels need compute capability 8.0 (Ampere) or later";
  return {};
}

/// A Scheme the kernels have no decode for, or an int8 activation mode: the reference kernels run
/// it, on the host.
class FallbackPrepared final : public PreparedMatrix {
 public:
  FallbackPrepared(std::shared_ptr<const QuantizedMatrix> w, const PrepareOptions& options,
                   const Backend& backend)
      : PreparedMatrix(w, options, backend, true),
        reference_(reference_backend().prepare(std::move(w), options)) {}
  std::size_t bytes() const noexcept override { return reference_->bytes(); }
  void gemm(MatrixView<const float> x, MatrixView<float> y) const {
    reference_backend().gemm(*reference_, x, y);
  }

 private:
  std::unique_ptr<PreparedMatrix> reference_;
};

class CudaPrepared final : public PreparedMatrix {
 public:
  CudaPrepared(std::shared_ptr<const QuantizedMatrix> w, const PrepareOptions& options,
               const Backend& backend)
      : PreparedMatrix(std::move(w), options, backend, false) {
    check(cudaGetDevice(&device_), "cudaGetDevice");
    const PackedMatrix packed = cuda::pack(source());
    bytes_ = packed.bytes();
    codes_ = DeviceBuffer(packed.codes);
    scales_ = DeviceBuffer(packed.scales);
    zeros_ = DeviceBuffer(packed.zeros);
    table_ = DeviceBuffer(packed.table);
    weights_.decode = packed.decode;
    weights_.rows = packed.rows;
    weights_.cols = packed.cols;
    weights_.padded_rows = packed.padded_rows;
    weights_.padded_cols = packed.padded_cols;
    weights_.group = packed.group;
    weights_.has_zero = packed.has_zero;
    weights_.level_offset = packed.level_offset;
    weights_.codes = codes_.as<const std::uint32_t>();
    weights_.scales = scales_.as<const float>();
    weights_.zeros = zeros_.as<const float>();
    weights_.table = table_.as<const float>();
  }

  std::size_t bytes() const noexcept override { return bytes_; }

  /// cuda_gemm: activations on the device, in the inputs' original basis.
  void gemm(const CudaGemmArgs& args) const {
    if (source().input_rotation())
      throw unsupported(
          "cuda_gemm: the matrix carries an input rotation; rotate X first or use Backend::gemm");
    run(args);
  }

  /// Backend::gemm: host floats through fp16 on the device.
  void gemm(MatrixView<const float> x, MatrixView<float> y) const {
    detail::check_gemm_shapes(rows(), cols(), x, y, "gemm");
    const std::vector<float> rotated = detail::rotated_inputs(source(), x);
    std::vector<std::uint16_t> x16(rotated.size());
    for (std::size_t i = 0; i < rotated.size(); ++i) x16[i] = float16::encode(rotated[i]).code;
    const DeviceScope scope(device_);
    const DeviceBuffer x_device(x16);
    const DeviceBuffer y_device(x.rows * rows() * sizeof(std::uint16_t));
    CudaGemmArgs args;
    args.x = x_device.as<const void>();
    args.y = y_device.as<void>();
    args.batch = x.rows;
    run(args);  // X is rotated already
    std::vector<std::uint16_t> y16(x.rows * rows());
    if (!y16.empty())
      check(cudaMemcpy(y16.data(), y_device.as<void>(), y16.size() * sizeof(std::uint16_t),
                       cudaMemcpyDeviceToHost),
            "cudaMemcpy from the device");
    for (std::size_t b = 0; b < x.rows; ++b)
      for (std::size_t o = 0; o < rows(); ++o)
        y(b, o) = float16::from_bits(y16[b * rows() + o]).to_float();
  }

 private:
  /// Stages the activations (stream-ordered scratch) and runs the kernel for the batch, on
  /// activations in the stored basis.
  void run(const CudaGemmArgs& args) const {
    const std::size_t x_stride = args.x_stride == 0 ? cols() : args.x_stride;
    const std::size_t y_stride = args.y_stride == 0 ? rows() : args.y_stride;
    if (x_stride < cols() || y_stride < rows())
      throw invalid_argument("cuda_gemm: row strides " + std::to_string(x_stride) + " and " +
                             std::to_string(y_stride) + " are shorter than the rows of X [" +
                             std::to_string(args.batch) + ", " + std::to_string(cols()) +
                             "] and Y [" + std::to_string(args.batch) + ", " +
                             std::to_string(rows()) + "]");
    if (args.batch == 0 || rows() == 0) return;
    const DeviceScope scope(device_);
    const auto stream = static_cast<cudaStream_t>(args.stream);
    constexpr std::size_t element = 2;  // fp16 and bf16
    if (cols() == 0) {                  // an empty sum
      check(cudaMemset2DAsync(args.y, y_stride * element, 0, rows() * element, args.batch, stream),
            "cudaMemset2DAsync");
      return;
    }
    cuda::StageArgs stage;
    stage.x = args.x;
    stage.x_stride = x_stride;
    stage.batch = args.batch;
    stage.cols = cols();
    stage.padded_batch = cuda::padded_batch(args.batch);
    stage.padded_cols = weights_.padded_cols;
    stage.activation =
        args.activation == CudaActivation::bf16 ? cuda::Activation::bf16 : cuda::Activation::fp16;
    stage.stream = args.stream;
    const bool mma = args.batch > cuda::gemv_max_batch;
    const std::size_t staged_bytes = stage.padded_batch * stage.padded_cols * element;
    const std::size_t sums_bytes =
        mma ? stage.padded_batch * weights_.k_tiles() * sizeof(float) : 0;
    void* scratch = nullptr;
    check(cudaMallocAsync(&scratch, staged_bytes + sums_bytes, stream), "cudaMallocAsync");
    stage.staged = scratch;
    stage.tile_sums =
        mma ? reinterpret_cast<float*>(static_cast<char*>(scratch) + staged_bytes) : nullptr;
    cuda::launch_stage(stage);
    cuda::KernelArgs kernel;
    kernel.w = weights_;
    kernel.staged = stage.staged;
    kernel.tile_sums = stage.tile_sums;
    kernel.batch = args.batch;
    kernel.padded_batch = stage.padded_batch;
    kernel.y = args.y;
    kernel.y_stride = y_stride;
    kernel.activation = stage.activation;
    kernel.stream = args.stream;
    if (mma)
      cuda::launch_mma(kernel);
    else
      cuda::launch_gemv(kernel);
    const cudaError_t launched = cudaGetLastError();
    const cudaError_t freed = cudaFreeAsync(scratch, stream);
    check(launched, mma ? "the tensor-core GEMM kernel" : "the GEMV kernel");
    check(freed, "cudaFreeAsync");
  }

  int device_ = 0;
  std::size_t bytes_ = 0;
  DeviceBuffer codes_, scales_, zeros_, table_;
  DeviceWeights weights_;
};

class CudaBackend final : public Backend {
 public:
  std::string name() const override { return "cuda"; }
  bool supports(const Scheme& scheme, const PrepareOptions& options) const override {
    return options.activations == ActivationQuantization::none && cuda::scheme_packable(scheme);
  }
  std::unique_ptr<PreparedMatrix> prepare(std::shared_ptr<const QuantizedMatrix> w,
                                          const PrepareOptions& options) const override {
    if (!w) throw invalid_argument("prepare: no matrix");
    if (options.activations != ActivationQuantization::none ||
        !cuda::unpackable_reason(*w).empty())  // the reference runs it (and checks the options)
      return std::make_unique<FallbackPrepared>(std::move(w), options, *this);
    return std::make_unique<CudaPrepared>(std::move(w), options, *this);
  }
  void gemm(const PreparedMatrix& w, MatrixView<const float> x,
            MatrixView<float> y) const override {
    check_owner(w, "gemm");
    if (w.fallback())
      static_cast<const FallbackPrepared&>(w).gemm(x, y);
    else
      static_cast<const CudaPrepared&>(w).gemm(x, y);
  }
  void check_owner(const PreparedMatrix& w, const char* who) const {
    if (&w.backend() != this)
      throw invalid_argument(std::string(who) + ": the matrix was prepared by the " +
                             w.backend().name() + " backend, not the cuda one");
  }
};

const CudaBackend& backend_instance() {
  static const CudaBackend backend;
  return backend;
}

}  // namespace

bool cuda_available() noexcept {
  try {
    return device_problem().empty();
  } catch (...) {
    return false;
  }
}

const Backend& cuda_backend() {
  if (const std::string problem = device_problem(); !problem.empty())
    throw unsupported("the cuda backend cannot run: " + problem);
  return backend_instance();
}

void cuda_gemm(const PreparedMatrix& w, const CudaGemmArgs& args) {
  backend_instance().check_owner(w, "cuda_gemm");
  if (w.fallback())
    throw unsupported("cuda_gemm: the CUDA kernels cannot run this matrix (" +
                      w.source().scheme().to_string() +
                      "); it runs on the host's reference kernels through Backend::gemm");
  static_cast<const CudaPrepared&>(w).gemm(args);
}

const char* cuda_kernel_for_batch(std::size_t batch) noexcept {
  return batch > cuda::gemv_max_batch ? "mma" : "gemv";
}

}  // namespace lowbit::kernels
