// The method table's checks and the Quantizer's dispatch (algo/methods.hpp).
#include "lowbit/algo/methods.hpp"

#include <string_view>
#include <utility>

#include "lowbit/algo/higgs.hpp"
#include "lowbit/algo/hqq.hpp"
#include "lowbit/algo/incoherence.hpp"
#include "lowbit/detail/enum_table.hpp"
#include "lowbit/error.hpp"
#include "lowbit/quant/codebook.hpp"
#include "lowbit/quant/fp8.hpp"
#include "lowbit/quant/ggml.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quant/microscaling.hpp"
#include "lowbit/quant/nf4.hpp"

namespace lowbit {

const MethodTraits& method_traits(const std::string& name) {
  if (const MethodTraits* row = detail::row_named(method_table, name)) return *row;
  throw invalid_argument("unknown quantization method '" + name + "' (" +
                         detail::names_of(method_table) + ")");
}

void check_method_options(const MethodOptions& options) {
  const MethodTraits& m = method_traits(options.method);
  const MethodOptions defaults;
  struct Field {
    unsigned bit;
    const char* name;
    bool set;
  };
  const Field fields[] = {
      {method_option::bits, "bits", options.bits.has_value()},
      {method_option::group, "group", options.group.has_value()},
      {method_option::symmetric, "symmetric", options.symmetric},
      {method_option::scale_format, "scale_format", options.scale_format.has_value()},
      {method_option::mse_clip, "mse_clip", options.mse_clip},
      {method_option::double_quant, "double_quant", options.double_quant},
      {method_option::higgs_dimension, "higgs_dimension",
       options.higgs_dimension != defaults.higgs_dimension},
      {method_option::seed, "seed", options.seed != defaults.seed},
  };
  std::string reads;
  for (const Field& f : fields)
    if (m.reads & f.bit) reads.append(reads.empty() ? "" : ", ").append(f.name);
  for (const Field& f : fields)
    if (f.set && !(m.reads & f.bit))
      throw invalid_argument(std::string(m.name) + " does not use the option '" + f.name +
                             "' (it reads: " + (reads.empty() ? "nothing" : reads) + ")");
  if (options.bits && (*options.bits < m.min_bits || *options.bits > m.max_bits)) {
    const std::string widths =
        m.min_bits == m.max_bits ? "only " + std::to_string(m.min_bits)
                                 : std::to_string(m.min_bits) + " to " + std::to_string(m.max_bits);
    throw invalid_argument(std::string(m.name) + " cannot store " + std::to_string(*options.bits) +
                           "-bit codes (" + widths + ")");
  }
}

namespace {

/// A method's options with its defaults filled in from its table row.
struct MethodSetup {
  const MethodOptions& o;
  const MethodTraits& m;

  int bits() const { return o.bits.value_or(m.default_bits); }
  long group() const { return o.group.value_or(m.default_group); }
  ScalarFormat scale_format() const { return o.scale_format.value_or(m.default_scale); }
  /// llama.cpp's block type of a ggml method ("q4_0", ...), if this is one.
  std::optional<GgmlType> ggml_type() const {
    for (const GgmlTypeTraits& row : ggml_type_table)
      if (std::string_view(row.layout_name).substr(5) == o.method) return row.value;
    return std::nullopt;
  }
  Fp8Options fp8_options(const std::string& tensor_name = {}) const {
    Fp8Options options;
    options.granularity = granularity();
    options.scale_format = scale_format();
    options.tensor_name = tensor_name;
    return options;
  }
  Granularity granularity() const {
    const long g = group();
    return g == 0  ? Granularity::per_channel()
           : g < 0 ? Granularity::per_tensor()
                   : Granularity::per_group(static_cast<std::size_t>(g));
  }
  std::size_t positive_group(const char* method) const {
    const long g = group();
    if (g <= 0)
      throw invalid_argument(std::string(method) + " works in groups: give a group size above 0");
    return static_cast<std::size_t>(g);
  }

  Scheme linear_scheme() const {
    return o.symmetric ? Scheme::symmetric_int(bits(), granularity(), scale_format())
                       : Scheme::asymmetric_int(bits(), granularity(), scale_format());
  }
  LinearQuantizeOptions linear_options(const std::string& tensor_name) const {
    LinearQuantizeOptions options;
    if (o.mse_clip) options.clip = ClipSearch::mse();
    options.tensor_name = tensor_name;
    return options;
  }
  IncoherenceOptions incoherence_options() const { return {0, o.seed, true}; }
  HqqOptions hqq_options() const {
    HqqOptions options;
    options.group_size = positive_group("hqq");
    options.scale_format = scale_format();
    return options;
  }
  Nf4Options nf4_options() const {
    Nf4Options options;
    options.block = positive_group("nf4");
    options.double_quant = o.double_quant;
    return options;
  }
  HiggsOptions higgs_options() const {
    HiggsOptions options;
    options.dimension = o.higgs_dimension;
    const int grid_bits = bits() * o.higgs_dimension;
    if (grid_bits < 1 || grid_bits > 8)
      throw invalid_argument("higgs: " + std::to_string(bits()) + " bits in " +
                             std::to_string(o.higgs_dimension) +
                             " dimensions needs a grid of more than 256 points");
    options.grid_size = 1 << grid_bits;
    options.block = positive_group("higgs");
    options.seed = o.seed;
    options.scale_format = scale_format();
    return options;
  }
  Scheme kmeans_scheme() const {
    Scheme scheme{.element = ElementFormat::codebook,
                  .bits = bits(),
                  .granularity = Granularity::none(),
                  .codebook_granularity = granularity(),
                  .codebook_format = ScalarFormat::f16};
    scheme.validate();
    return scheme;
  }
};

}  // namespace

Quantizer::Quantizer(MethodOptions options)
    : options_(std::move(options)), traits_(&method_traits(options_.method)) {
  if (traits_->calibrated)
    throw invalid_argument(options_.method +
                           " needs calibration data: run it over a model (model/calibrate.hpp, "
                           "model/awq.hpp), not through a Quantizer");
  check_method_options(options_);
}

std::vector<std::string> Quantizer::method_names() {
  std::vector<std::string> names;
  for (const MethodTraits& row : method_table)
    if (!row.calibrated) names.emplace_back(row.name);
  return names;
}

Scheme Quantizer::scheme(std::size_t rows, std::size_t cols) const {
  (void)rows;
  const MethodSetup s{options_, *traits_};
  const std::string& m = options_.method;
  if (m == "rtn" || m == "hadamard-rtn") return s.linear_scheme();
  if (m == "hqq") return hqq_scheme(s.bits(), s.hqq_options());
  if (m == "kmeans") return s.kmeans_scheme();
  if (m == "nf4") return nf4_scheme(s.nf4_options());
  if (m == "mxfp4") return mx_scheme(ElementFormat::fp4_e2m1);
  if (m == "mxfp8") return mx_scheme(ElementFormat::fp8_e4m3);
  if (m == "nvfp4") return nvfp4_scheme();
  if (m == "fp8") return fp8_scheme(s.fp8_options());
  if (const auto type = s.ggml_type()) return ggml_scheme(*type);
  return higgs_scheme(s.higgs_options(), cols);
}

std::optional<HadamardRotation> Quantizer::rotation(std::size_t cols) const {
  const MethodSetup s{options_, *traits_};
  if (options_.method == "hadamard-rtn") return incoherence_rotation(cols, s.incoherence_options());
  if (options_.method == "higgs")
    return incoherence_rotation(cols, {s.higgs_options().block, options_.seed, true});
  return std::nullopt;
}

QuantizedMatrix Quantizer::quantize(MatrixView<const float> weights,
                                    const std::string& tensor_name) const {
  const MethodSetup s{options_, *traits_};
  const std::string& m = options_.method;
  if (m == "rtn") return quantize_linear(weights, s.linear_scheme(), s.linear_options(tensor_name));
  if (m == "hadamard-rtn") {
    detail::require_finite(weights, tensor_name);
    return quantize_incoherent(
        weights, s.incoherence_options(), [&](MatrixView<const float> rotated) {
          return quantize_linear(rotated, s.linear_scheme(), s.linear_options(tensor_name));
        });
  }
  if (m == "hqq") {
    HqqOptions options = s.hqq_options();
    options.tensor_name = tensor_name;
    return quantize_hqq(weights, s.bits(), options);
  }
  if (m == "kmeans") {
    CodebookOptions options;
    options.seed = options_.seed;
    options.tensor_name = tensor_name;
    return quantize_codebook(weights, s.kmeans_scheme(), options);
  }
  if (m == "nf4") return quantize_nf4(weights, s.nf4_options());
  if (m == "mxfp4") return quantize_mxfp4(weights);
  if (m == "mxfp8") return quantize_mxfp8(weights);
  if (m == "nvfp4") return quantize_nvfp4(weights);
  if (m == "fp8") return quantize_fp8(weights, s.fp8_options(tensor_name));
  if (const auto type = s.ggml_type()) return quantize_ggml(weights, *type);
  HiggsOptions options = s.higgs_options();
  options.tensor_name = tensor_name;
  return quantize_higgs(weights, options);
}

std::string Quantizer::describe() const {
  const MethodSetup s{options_, *traits_};
  const std::string& m = options_.method;
  if (m == "nf4")
    return options_.double_quant ? "nf4 g" + std::to_string(s.nf4_options().block) + " dq"
                                 : "nf4 g" + std::to_string(s.nf4_options().block);
  if (m == "mxfp4" || m == "mxfp8" || m == "nvfp4" || s.ggml_type()) return m;
  if (m == "fp8") {
    const long g = s.group();
    return std::string("fp8 e4m3 ") +
           (g == 0  ? "channel"
            : g < 0 ? "tensor"
                    : "g" + std::to_string(g)) +
           " scale=" + to_string(s.scale_format());
  }
  std::string text = m;
  if (m == "higgs") text.append(" p=").append(std::to_string(options_.higgs_dimension));
  text.append(" ").append(std::to_string(s.bits())).append("-bit");
  const long g = s.group();
  text.append(g == 0 ? " channel" : g < 0 ? " tensor" : " g" + std::to_string(g));
  if ((m == "rtn" || m == "hadamard-rtn") && options_.symmetric) text.append(" sym");
  if (options_.mse_clip && (m == "rtn" || m == "hadamard-rtn")) text.append(" +clip");
  return text;
}

}  // namespace lowbit
