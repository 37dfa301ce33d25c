// Every calibration-free quantization method behind one configured object, chosen by name: what
// the `lowbit` program, the quality tables and the benchmarks use, and a user who picks the method
// at run time. A Quantizer knows, before it sees any data, the Scheme and input rotation it will
// produce for a matrix shape, so a checkpoint writer can lay out its file first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/format/hadamard.hpp"
#include "lowbit/algo/higgs.hpp"
#include "lowbit/algo/hqq.hpp"
#include "lowbit/algo/incoherence.hpp"
#include "lowbit/error.hpp"
#include "lowbit/quant/codebook.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quant/microscaling.hpp"
#include "lowbit/quant/nf4.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

struct MethodOptions {
  /// rtn, hadamard-rtn, hqq, kmeans, nf4, mxfp4, mxfp8, nvfp4, higgs.
  std::string method = "rtn";
  /// Bits per weight code (HIGGS: per weight, so its grid has 2^(bits * dimension) points).
  /// NF4, MXFP4 and NVFP4 are 4-bit and MXFP8 8-bit whatever this says.
  int bits = 4;
  /// Elements per group along a row; 0 = per output channel, -1 = per tensor; unset = the
  /// method's own default (rtn 128, hqq 64, nf4 64, higgs 512, kmeans per channel).
  std::optional<long> group;
  bool symmetric = false;  // rtn, hadamard-rtn
  ScalarFormat scale_format = ScalarFormat::f16;
  bool mse_clip = false;      // rtn, hadamard-rtn
  bool double_quant = false;  // nf4
  int higgs_dimension = 2;    // higgs: p
  std::uint64_t seed = 0;     // random Hadamard signs, k-means seeding
};

class Quantizer {
 public:
  explicit Quantizer(MethodOptions options) : options_(std::move(options)) {
    bool known = false;
    for (const std::string& name : method_names()) known |= name == options_.method;
    if (!known) {
      std::string list;
      for (const std::string& name : method_names())
        list.append(list.empty() ? "" : ", ").append(name);
      throw invalid_argument("unknown quantization method '" + options_.method + "' (" + list +
                             ")");
    }
  }

  static std::vector<std::string> method_names() {
    return {"rtn", "hadamard-rtn", "hqq", "kmeans", "nf4", "mxfp4", "mxfp8", "nvfp4", "higgs"};
  }

  const MethodOptions& options() const noexcept { return options_; }

  /// The Scheme a [rows, cols] matrix is stored with.
  Scheme scheme(std::size_t rows, std::size_t cols) const {
    (void)rows;
    const std::string& m = options_.method;
    if (m == "rtn" || m == "hadamard-rtn") return linear_scheme();
    if (m == "hqq") return hqq_scheme(options_.bits, hqq_options());
    if (m == "kmeans") return kmeans_scheme();
    if (m == "nf4") return nf4_scheme(nf4_options());
    if (m == "mxfp4") return mx_scheme(ElementFormat::fp4_e2m1);
    if (m == "mxfp8") return mx_scheme(ElementFormat::fp8_e4m3);
    if (m == "nvfp4") return nvfp4_scheme();
    return higgs_scheme(higgs_options(), cols);
  }

  /// The input rotation a matrix of `cols` columns gets (hadamard-rtn and higgs rotate).
  std::optional<HadamardRotation> rotation(std::size_t cols) const {
    if (options_.method == "hadamard-rtn") return incoherence_rotation(cols, incoherence_options());
    if (options_.method == "higgs")
      return incoherence_rotation(cols, {higgs_options().block, options_.seed, true});
    return std::nullopt;
  }

  QuantizedMatrix quantize(MatrixView<const float> weights,
                           const std::string& tensor_name = {}) const {
    const std::string& m = options_.method;
    if (m == "rtn") return quantize_linear(weights, linear_scheme(), linear_options(tensor_name));
    if (m == "hadamard-rtn") {
      detail::require_finite(weights, tensor_name);
      return quantize_incoherent(
          weights, incoherence_options(), [&](MatrixView<const float> rotated) {
            return quantize_linear(rotated, linear_scheme(), linear_options(tensor_name));
          });
    }
    if (m == "hqq") {
      HqqOptions options = hqq_options();
      options.tensor_name = tensor_name;
      return quantize_hqq(weights, options_.bits, options);
    }
    if (m == "kmeans") {
      CodebookOptions options;
      options.seed = options_.seed;
      options.tensor_name = tensor_name;
      return quantize_codebook(weights, kmeans_scheme(), options);
    }
    if (m == "nf4") return quantize_nf4(weights, nf4_options());
    if (m == "mxfp4") return quantize_mxfp4(weights);
    if (m == "mxfp8") return quantize_mxfp8(weights);
    if (m == "nvfp4") return quantize_nvfp4(weights);
    HiggsOptions options = higgs_options();
    options.tensor_name = tensor_name;
    return quantize_higgs(weights, options);
  }

  /// e.g. "hqq 3-bit g64".
  std::string describe() const {
    const std::string& m = options_.method;
    if (m == "nf4")
      return options_.double_quant ? "nf4 g" + std::to_string(nf4_options().block) + " dq"
                                   : "nf4 g" + std::to_string(nf4_options().block);
    if (m == "mxfp4" || m == "mxfp8" || m == "nvfp4") return m;
    std::string text = m;
    if (m == "higgs") text.append(" p=").append(std::to_string(options_.higgs_dimension));
    text.append(" ").append(std::to_string(options_.bits)).append("-bit");
    const long g = group_or(default_group());
    text.append(g == 0 ? " channel" : g < 0 ? " tensor" : " g" + std::to_string(g));
    if ((m == "rtn" || m == "hadamard-rtn") && options_.symmetric) text.append(" sym");
    if (options_.mse_clip && (m == "rtn" || m == "hadamard-rtn")) text.append(" +clip");
    return text;
  }

 private:
  long default_group() const {
    const std::string& m = options_.method;
    if (m == "rtn" || m == "hadamard-rtn") return 128;
    if (m == "hqq" || m == "nf4") return 64;
    if (m == "higgs") return 512;
    return 0;  // kmeans: a codebook per channel
  }
  long group_or(long fallback) const { return options_.group.value_or(fallback); }
  Granularity granularity() const {
    const long g = group_or(default_group());
    return g == 0  ? Granularity::per_channel()
           : g < 0 ? Granularity::per_tensor()
                   : Granularity::per_group(static_cast<std::size_t>(g));
  }
  std::size_t positive_group(const char* method) const {
    const long g = group_or(default_group());
    if (g <= 0)
      throw invalid_argument(std::string(method) + " works in groups: give a group size above 0");
    return static_cast<std::size_t>(g);
  }

  Scheme linear_scheme() const {
    return options_.symmetric
               ? Scheme::symmetric_int(options_.bits, granularity(), options_.scale_format)
               : Scheme::asymmetric_int(options_.bits, granularity(), options_.scale_format);
  }
  LinearQuantizeOptions linear_options(const std::string& tensor_name) const {
    LinearQuantizeOptions options;
    if (options_.mse_clip) options.clip = ClipSearch::mse();
    options.tensor_name = tensor_name;
    return options;
  }
  IncoherenceOptions incoherence_options() const { return {0, options_.seed, true}; }
  HqqOptions hqq_options() const {
    HqqOptions options;
    options.group_size = positive_group("hqq");
    options.scale_format = options_.scale_format;
    return options;
  }
  Nf4Options nf4_options() const {
    Nf4Options options;
    options.block = positive_group("nf4");
    options.double_quant = options_.double_quant;
    return options;
  }
  HiggsOptions higgs_options() const {
    HiggsOptions options;
    options.dimension = options_.higgs_dimension;
    const int grid_bits = options_.bits * options_.higgs_dimension;
    if (grid_bits < 1 || grid_bits > 8)
      throw invalid_argument("higgs: " + std::to_string(options_.bits) + " bits in " +
                             std::to_string(options_.higgs_dimension) +
                             " dimensions needs a grid of more than 256 points");
    options.grid_size = 1 << grid_bits;
    options.block = positive_group("higgs");
    options.seed = options_.seed;
    options.scale_format = options_.scale_format;
    return options;
  }
  Scheme kmeans_scheme() const {
    Scheme scheme{.element = ElementFormat::codebook,
                  .bits = options_.bits,
                  .granularity = Granularity::none(),
                  .codebook_granularity = granularity(),
                  .codebook_format = ScalarFormat::f16};
    scheme.validate();
    return scheme;
  }

  MethodOptions options_;
};

}  // namespace lowbit
