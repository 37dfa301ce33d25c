// The CPU backend: which instruction set's kernel runs (a table per ISA), the repacking of a
// QuantizedMatrix for the kernels (prepare), and the per-call preparation of the activations
// (rotation, zero padding, group sums). The kernels themselves are *_impl.hpp, compiled once per
// instruction set by the build (cmake/LowbitCpuKernels.cmake).
#include <algorithm>
#include <cmath>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/backend_common.hpp"
#include "kernels/int8_matmul.hpp"
#include "lowbit/cpu_features.hpp"
#include "lowbit/detail/enum_table.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/ggml_blocks.hpp"
#include "lowbit/kernels/backend.hpp"
#include "lowbit/kernels/reference.hpp"
#include "packed_weights.hpp"

namespace lowbit::kernels {

namespace {

using detail::ReferencePrepared;

/// How the CPU kernels decode a Scheme's codes, when they can (see kernels/cpu/packed_weights.hpp).
std::optional<cpu::Decode> cpu_decode(const Scheme& scheme) {
  if (scheme.ggml_type) {  // llama.cpp's blocks, in their level form (ggml::to_levels)
    const GgmlTypeTraits& traits = ggml_traits(*scheme.ggml_type);
    if (*scheme.ggml_type == GgmlType::f16) return cpu::Decode::f16;
    if (*scheme.ggml_type == GgmlType::bf16) return cpu::Decode::bf16;
    if (traits.iq4nl_levels) return cpu::Decode::lut4;
    return traits.code_bits <= 4 ? cpu::Decode::int4 : cpu::Decode::int8;
  }
  if (scheme.vector_dim != 1) return std::nullopt;
  switch (scheme.element) {
    case ElementFormat::int_signed:
    case ElementFormat::int_unsigned:  // unsigned levels, in 4-bit slots up to 4 bits
      return scheme.bits <= 4 ? cpu::Decode::int4 : cpu::Decode::int8;
    case ElementFormat::nf4:
    case ElementFormat::fp4_e2m1:
      return cpu::Decode::lut4;
    case ElementFormat::codebook:
      if (scheme.bits > 4 || scheme.codebook_granularity.kind == Granularity::Kind::group)
        return std::nullopt;
      return cpu::Decode::lut4;
    case ElementFormat::fp8_e4m3:
      return cpu::Decode::e4m3;
    default:
      return std::nullopt;
  }
}

/// Whether the CPU kernels run `scheme` with these activations: float activations for every
/// format cpu_decode knows (groups of 16 or more in steps of 16); int8 activations for integer
/// weights in groups of 32 or more in steps of 32, or per channel / tensor.
bool cpu_kernel_runs(const Scheme& scheme, const PrepareOptions& options) {
  if (!cpu_decode(scheme)) return false;
  if (scheme.has_block_layout()) return options.activations == ActivationQuantization::none;
  const Granularity& g = scheme.granularity;
  if (options.activations != ActivationQuantization::none)
    return scheme.is_integer() && g.kind != Granularity::Kind::none &&
           (g.kind != Granularity::Kind::group || g.group_size % cpu::block_size == 0);
  if (g.kind == Granularity::Kind::group || g.kind == Granularity::Kind::block)
    return g.group_size % cpu::half_block == 0;
  return g.kind != Granularity::Kind::none || scheme.is_codebook();
}

/// Whether w's codes hold a value the kernel does not decode (E4M3 NaN).
bool has_undecodable_codes(const QuantizedMatrix& w) {
  if (w.scheme().element != ElementFormat::fp8_e4m3) return false;
  for (std::size_t r = 0; r < w.rows(); ++r)
    for (std::size_t c = 0; c < w.cols(); ++c)
      if ((w.code(r, c) & 0x7F) == 0x7F) return true;
  return false;
}

/// Sets the level of weight c of a packed row (4-bit: byte i holds weights i and i + 16 of each
/// block of 32; 8-bit: one byte per weight).
void put_level(cpu::PackedWeights& w, std::uint8_t* row, std::size_t c, std::uint8_t u) {
  if (w.bits() == 8) {
    row[c] = u;
    return;
  }
  const std::size_t block = c / cpu::block_size, i = c % cpu::block_size;
  std::uint8_t& byte = row[block * 16 + i % 16];
  byte = static_cast<std::uint8_t>(byte | (i < 16 ? u : u << 4));
}

/// ggml's F16 and BF16: the 16-bit weights as they are, rows padded with zeros to whole blocks;
/// one group per row with scale 1.
cpu::PackedWeights pack_float16_weights(const QuantizedMatrix& q) {
  cpu::PackedWeights w;
  w.decode = *cpu_decode(q.scheme());
  w.rows = q.rows();
  w.cols = q.cols();
  w.padded_cols = (q.cols() + cpu::block_size - 1) / cpu::block_size * cpu::block_size;
  w.group = w.padded_cols;
  w.groups = w.padded_cols == 0 ? 0 : 1;
  w.codes.assign(w.rows * w.row_bytes(), 0);
  w.scales.assign(w.rows * w.groups, 1.0f);
  for (std::size_t r = 0; r < w.rows; ++r) {
    const std::span<const std::uint8_t> row = q.row_bytes(r);
    std::copy(row.begin(), row.end(),
              w.codes.begin() + static_cast<std::ptrdiff_t>(r * w.row_bytes()));
  }
  return w;
}

/// llama.cpp's quantized blocks in their level form (format/ggml_types.hpp, ggml::to_levels):
/// levels u of up to 4 bits in 4-bit slots, of 5 to 8 bits in bytes, with a scale s and a bias b
/// per group of 16 or 32 weights (the sub-blocks), each weight s u + b; the IQ4 types' levels index
/// kvalues_iq4nl, a lut4 table, with no bias. E.g. Q4_0: u = nibble, s = d, b = -8 d; Q4_1:
/// s = d, b = m; Q6_K: sub-block j of 16: u = 6-bit code, s = d sc_j, b = -32 s.
/// (F16 and BF16: pack_float16_weights.)
cpu::PackedWeights pack_ggml_weights(const QuantizedMatrix& q) {
  const GgmlType type = *q.scheme().ggml_type;
  if (type == GgmlType::f16 || type == GgmlType::bf16) return pack_float16_weights(q);
  const GgmlTypeTraits& traits = ggml_traits(type);
  cpu::PackedWeights w;
  w.decode = *cpu_decode(q.scheme());
  w.rows = q.rows();
  w.cols = q.cols();
  w.padded_cols = q.cols();  // whole blocks of 32 or 256 by construction
  w.group = traits.group_weights;
  w.groups = w.padded_cols / w.group;
  w.has_bias = !traits.iq4nl_levels;
  w.codes.assign(w.rows * w.row_bytes(), 0);
  w.scales.assign(w.rows * w.groups, 0.0f);
  if (w.has_bias) w.biases.assign(w.rows * w.groups, 0.0f);
  if (traits.iq4nl_levels)
    for (int i = 0; i < 16; ++i) w.tables.push_back(static_cast<float>(ggml::iq4nl_value(i)));
  ggml::visit_block_type(type, [&]<class Block>(std::type_identity<Block>) {
    if constexpr (requires(const Block& b, std::uint8_t* u, ggml::LevelGroup* g) {
                    ggml::to_levels(b, u, g);
                  }) {
      constexpr GgmlTypeTraits block_traits = ggml_traits(ggml::type_of<Block>::value);
      constexpr std::size_t groups_per_block =
          block_traits.block_weights / block_traits.group_weights;
      std::uint8_t levels[block_traits.block_weights];
      ggml::LevelGroup groups[groups_per_block];
      for (std::size_t r = 0; r < w.rows; ++r) {
        std::uint8_t* row = w.codes.data() + r * w.row_bytes();
        std::size_t g = r * w.groups, c = 0;
        for (const Block& b : q.row_blocks<Block>(r)) {
          ggml::to_levels(b, levels, groups);
          for (const std::uint8_t u : levels) put_level(w, row, c++, u);
          for (const ggml::LevelGroup& group : groups) {
            w.scales[g] = group.scale;
            if (w.has_bias) w.biases[g] = group.bias;
            ++g;
          }
        }
      }
    }
  });
  return w;
}

cpu::PackedWeights pack_weights(const QuantizedMatrix& q) {
  const Scheme& scheme = q.scheme();
  if (scheme.has_block_layout()) return pack_ggml_weights(q);
  cpu::PackedWeights w;
  w.decode = *cpu_decode(scheme);
  w.rows = q.rows();
  w.cols = q.cols();
  w.padded_cols = (q.cols() + cpu::block_size - 1) / cpu::block_size * cpu::block_size;
  // (2-D blocks become per-row groups of the block's width: each row gets its block's scale.)
  w.group = scheme.granularity.kind == Granularity::Kind::group ||
                    scheme.granularity.kind == Granularity::Kind::block
                ? scheme.granularity.group_size
                : w.padded_cols;
  w.group = std::min(w.group, w.padded_cols);
  w.groups = w.padded_cols == 0 ? 0 : (w.padded_cols + w.group - 1) / w.group;
  w.has_bias = scheme.is_integer();
  w.codes.assign(w.rows * w.row_bytes(), 0);
  w.scales.assign(w.rows * w.groups, 0.0f);
  if (w.has_bias) w.biases.assign(w.rows * w.groups, 0.0f);

  // Integer codes become unsigned levels: a signed v is stored as v + 2^(b-1).
  const bool is_signed = scheme.element == ElementFormat::int_signed;
  const int offset = is_signed ? 1 << (scheme.bits - 1) : 0;
  auto level = [&](std::uint8_t code) -> std::uint8_t {
    if (!scheme.is_integer()) return code;
    return static_cast<std::uint8_t>(is_signed ? from_code(code, scheme.bits, true) + offset
                                               : static_cast<int>(code));
  };
  if (w.decode == cpu::Decode::lut4) {
    if (scheme.is_codebook()) {
      w.table_per_row = scheme.codebook_granularity.kind == Granularity::Kind::channel;
      const std::size_t tables = w.table_per_row ? w.rows : 1;
      w.tables.assign(tables * 16, 0.0f);
      for (std::size_t t = 0; t < tables; ++t)
        for (std::size_t e = 0; e < scheme.codebook_entries(); ++e)
          w.tables[t * 16 + e] = q.codebook_value(q.codebook_index(t, 0), e, 0);
    } else {
      const std::vector<float> values = element_values(scheme);
      w.tables.assign(16, 0.0f);
      std::copy(values.begin(), values.end(), w.tables.begin());
    }
  }
  // E4M3 codes decode to value / 2^8: the scales carry the 2^8.
  const float decode_scale = w.decode == cpu::Decode::e4m3 ? 256.0f : 1.0f;
  const float tensor_scale = q.tensor_scale();
  for (std::size_t r = 0; r < w.rows; ++r) {
    std::uint8_t* row = w.codes.data() + r * w.row_bytes();
    for (std::size_t c = 0; c < w.cols; ++c) {
      const std::uint8_t u = level(q.code(r, c));
      const std::size_t block = c / cpu::block_size, i = c % cpu::block_size;
      if (w.bits() == 8) {
        row[c] = u;
      } else {
        std::uint8_t& byte = row[block * 16 + i % 16];
        byte = static_cast<std::uint8_t>(byte | (i < 16 ? u : u << 4));
      }
    }
    for (std::size_t g = 0; g < w.groups; ++g) {
      const std::size_t first = std::min(g * w.group, w.cols == 0 ? 0 : w.cols - 1);
      const std::size_t index = q.scale_index(r, first);
      const float scale = q.scale(index) * tensor_scale * decode_scale;
      w.scales[r * w.groups + g] = scale;
      if (w.has_bias)
        w.biases[r * w.groups + g] = -(q.zero(index) + static_cast<float>(offset)) * scale;
    }
  }
  return w;
}

using Kernel = void (*)(const cpu::GemmArgs&);
using Int8Kernel = void (*)(const cpu::Int8GemmArgs&);

/// The kernels of each instruction set, one row per level of isa_table.
struct IsaKernels {
  Isa value;
  Kernel dequant_gemm;
  Int8Kernel int8_gemm;
};

constexpr IsaKernels isa_kernels[] = {
    {Isa::scalar, cpu::dequant_gemm_scalar, cpu::int8_gemm_scalar},
    {Isa::avx2, cpu::dequant_gemm_avx2, cpu::int8_gemm_avx2},
    {Isa::avx512, cpu::dequant_gemm_avx512, cpu::int8_gemm_avx2},  // VNNI: int8_kernel_for
};
static_assert(std::size(isa_kernels) == std::size(isa_table));

const IsaKernels& kernels_for(Isa isa) noexcept {
  const IsaKernels* row = lowbit::detail::row_of(isa_kernels, isa);
  return row ? *row : isa_kernels[0];
}

/// The int8 kernel: VNNI's where the CPU has it (Ice Lake, Zen 4 and later) and AVX-512 is
/// chosen, else the level's own.
Int8Kernel int8_kernel_for(Isa isa) noexcept {
  if (isa == Isa::avx512 && cpu_features().avx512_vnni) return cpu::int8_gemm_avx512vnni;
  return kernels_for(isa).int8_gemm;
}

class CpuPrepared final : public PreparedMatrix {
 public:
  CpuPrepared(std::shared_ptr<const QuantizedMatrix> w, const PrepareOptions& options,
              const Backend& backend, Isa isa)
      : PreparedMatrix(std::move(w), options, backend, false),
        weights_(pack_weights(source())),
        kernel_(kernels_for(isa).dequant_gemm),
        int8_kernel_(int8_kernel_for(isa)) {}

  std::size_t bytes() const noexcept override { return weights_.bytes(); }

  void gemm(MatrixView<const float> x, MatrixView<float> y) const {
    const QuantizedMatrix& w = source();
    detail::check_gemm_shapes(w.rows(), w.cols(), x, y, "gemm");
    // Activations: rotated when the weights carry a rotation, zero-padded to whole blocks.
    const std::size_t padded = weights_.padded_cols, groups = weights_.groups;
    std::vector<float> xp(x.rows * padded, 0.0f);
    for (std::size_t b = 0; b < x.rows; ++b) {
      float* row = xp.data() + b * padded;
      std::copy(x.row(b).begin(), x.row(b).end(), row);
      w.rotate_input(std::span<float>(row, w.cols()));
    }
    // Threads only where there is work to share: a fork-join costs microseconds.
    const std::size_t work = x.rows * w.rows() * padded;
    const int threads = work >= (std::size_t{1} << 18) ? detail::threads_to_use() : 1;
    std::vector<float> sums(x.rows * groups, 0.0f);
    if (options().activations == ActivationQuantization::none) {
      if (weights_.has_bias)  // the zero points need the sum of x over each group
        for (std::size_t b = 0; b < x.rows; ++b)
          for (std::size_t c = 0; c < w.cols(); ++c)
            sums[b * groups + c / weights_.group] += xp[b * padded + c];
      cpu::GemmArgs args{&weights_, xp.data(), sums.data(), x.rows, y.data, y.row_stride, threads};
      kernel_(args);
      return;
    }
    int8_gemm(xp, sums, x.rows, y, threads);
  }

 private:
  /// W8A8 / W4A8, and LLM.int8(): its outlier columns leave the int8 part and are multiplied by
  /// the dequantized weights in float afterwards.
  void int8_gemm(std::vector<float>& xp, std::vector<float>& sums, std::size_t batch,
                 MatrixView<float> y, int threads) const {
    const std::size_t padded = weights_.padded_cols, groups = weights_.groups;
    const std::size_t cols = source().cols();
    std::vector<std::size_t> outliers;
    std::vector<float> outlier_values;  // [batch, outliers]
    if (options().activations == ActivationQuantization::llm_int8) {
      require_finite(xp, batch);
      for (std::size_t c = 0; c < cols; ++c)
        for (std::size_t b = 0; b < batch; ++b)
          if (std::abs(xp[b * padded + c]) > options().outlier_threshold) {
            outliers.push_back(c);
            break;
          }
      outlier_values.resize(batch * outliers.size());
      for (std::size_t b = 0; b < batch; ++b)
        for (std::size_t j = 0; j < outliers.size(); ++j) {
          float& v = xp[b * padded + outliers[j]];
          outlier_values[b * outliers.size() + j] = v;
          v = 0.0f;
        }
    } else {
      require_finite(xp, batch);
    }
    std::vector<std::int8_t> xq(batch * padded, 0);
    std::vector<float> x_scales(batch);
    for (std::size_t b = 0; b < batch; ++b) {
      x_scales[b] =
          lowbit::detail::quantize_int8_row(std::span<const float>(xp.data() + b * padded, cols),
                                            std::span<std::int8_t>(xq.data() + b * padded, cols));
      for (std::size_t c = 0; c < cols; ++c)
        sums[b * groups + c / weights_.group] += static_cast<float>(xq[b * padded + c]);
    }
    cpu::Int8GemmArgs args{&weights_, xq.data(), x_scales.data(), sums.data(),
                           batch,     y.data,    y.row_stride,    threads};
    int8_kernel_(args);
    if (outliers.empty()) return;
    // The float part: w[o, k] = s_o u + bias_o (int8 per channel: one group per row).
    for (std::size_t b = 0; b < batch; ++b)
      for (std::size_t o = 0; o < weights_.rows; ++o) {
        const std::uint8_t* u = weights_.row_codes(o);
        const float s = weights_.scales[o * groups], bias = weights_.biases[o * groups];
        float sum = 0.0f;
        for (std::size_t j = 0; j < outliers.size(); ++j)
          sum += outlier_values[b * outliers.size() + j] *
                 (s * static_cast<float>(u[outliers[j]]) + bias);
        y(b, o) += sum;
      }
  }

  void require_finite(const std::vector<float>& xp, std::size_t batch) const {
    lowbit::detail::require_finite_input(
        MatrixView<const float>(xp.data(), batch, source().cols(), weights_.padded_cols), "gemm");
  }

  cpu::PackedWeights weights_;
  Kernel kernel_;
  Int8Kernel int8_kernel_;
};

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(Isa isa) : isa_(isa) {}
  std::string name() const override { return std::string("cpu/") + lowbit::to_string(isa_); }
  bool supports(const Scheme& scheme, const PrepareOptions& options) const override {
    return cpu_kernel_runs(scheme, options);
  }
  std::unique_ptr<PreparedMatrix> prepare(std::shared_ptr<const QuantizedMatrix> w,
                                          const PrepareOptions& options) const override {
    if (!w) throw invalid_argument("prepare: no matrix");
    detail::check_activation_mode(*w, options);
    if (!supports(w->scheme(), options) || has_undecodable_codes(*w))  // the reference runs it
      return std::make_unique<ReferencePrepared>(std::move(w), options, *this, true);
    return std::make_unique<CpuPrepared>(std::move(w), options, *this, isa_);
  }
  void gemm(const PreparedMatrix& w, MatrixView<const float> x,
            MatrixView<float> y) const override {
    if (&w.backend() != this)
      throw invalid_argument("gemm: the matrix was prepared by the " + w.backend().name() +
                             " backend, not " + name());
    if (w.fallback())
      static_cast<const ReferencePrepared&>(w).gemm(x, y);
    else
      static_cast<const CpuPrepared&>(w).gemm(x, y);
  }

 private:
  Isa isa_;
};

}  // namespace

const Backend& cpu_backend(Isa isa) {
  if (!supports(cpu_features(), isa))
    throw unsupported(std::string("this CPU cannot run the ") + lowbit::to_string(isa) +
                      " kernels");
  static const CpuBackend backends[] = {CpuBackend(Isa::scalar), CpuBackend(Isa::avx2),
                                        CpuBackend(Isa::avx512)};
  static_assert(std::size(backends) == std::size(isa_table));
  return backends[static_cast<std::size_t>(isa)];
}

const Backend& cpu_backend() {
  static const Backend& chosen = cpu_backend(selected_isa());
  return chosen;
}

}  // namespace lowbit::kernels
