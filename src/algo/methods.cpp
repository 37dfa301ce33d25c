// The method table's checks and the Quantizer's dispatch (algo/methods.hpp).
#include "lowbit/algo/methods.hpp"

#include <utility>

#include "lowbit/algo/higgs.hpp"
#include "lowbit/algo/hqq.hpp"
#include "lowbit/algo/incoherence.hpp"
#include "lowbit/algo/rtn.hpp"
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
  RtnOptions rtn_options(const std::string& tensor_name) const {
    RtnOptions options;
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

/// What each calibration-free method of method_table does, by name: its Scheme for a matrix of
/// `cols` columns, its input rotation (none when null), and the quantizer itself.
struct MethodImplementation {
  const char* name;
  Scheme (*scheme)(const MethodSetup& s, std::size_t cols);
  std::optional<HadamardRotation> (*rotation)(const MethodSetup& s, std::size_t cols);
  QuantizedMatrix (*quantize)(const MethodSetup& s, MatrixView<const float> w,
                              const std::string& tensor);
};

Scheme linear(const MethodSetup& s, std::size_t) { return s.linear_scheme(); }

template <GgmlType Type>
constexpr MethodImplementation ggml_method(const char* name) {
  return {name, [](const MethodSetup&, std::size_t) { return ggml_scheme(Type); }, nullptr,
          [](const MethodSetup&, MatrixView<const float> w, const std::string&) {
            return quantize_ggml(w, Type);
          }};
}

const MethodImplementation method_implementations[] = {
    {"rtn", linear, nullptr,
     [](const MethodSetup& s, MatrixView<const float> w, const std::string& tensor) {
       return quantize_rtn(w, s.linear_scheme(), s.rtn_options(tensor));
     }},
    {"hadamard-rtn", linear,
     [](const MethodSetup& s, std::size_t cols) -> std::optional<HadamardRotation> {
       return incoherence_rotation(cols, s.incoherence_options());
     },
     [](const MethodSetup& s, MatrixView<const float> w, const std::string& tensor) {
       detail::require_finite(w, tensor);
       return quantize_incoherent(w, s.incoherence_options(), [&](MatrixView<const float> r) {
         return quantize_rtn(r, s.linear_scheme(), s.rtn_options(tensor));
       });
     }},
    {"hqq", [](const MethodSetup& s, std::size_t) { return hqq_scheme(s.bits(), s.hqq_options()); },
     nullptr,
     [](const MethodSetup& s, MatrixView<const float> w, const std::string& tensor) {
       HqqOptions options = s.hqq_options();
       options.tensor_name = tensor;
       return quantize_hqq(w, s.bits(), options);
     }},
    {"kmeans", [](const MethodSetup& s, std::size_t) { return s.kmeans_scheme(); }, nullptr,
     [](const MethodSetup& s, MatrixView<const float> w, const std::string& tensor) {
       CodebookOptions options;
       options.seed = s.o.seed;
       options.tensor_name = tensor;
       return quantize_codebook(w, s.kmeans_scheme(), options);
     }},
    {"nf4", [](const MethodSetup& s, std::size_t) { return nf4_scheme(s.nf4_options()); }, nullptr,
     [](const MethodSetup& s, MatrixView<const float> w, const std::string&) {
       return quantize_nf4(w, s.nf4_options());
     }},
    {"mxfp4", [](const MethodSetup&, std::size_t) { return mx_scheme(ElementFormat::fp4_e2m1); },
     nullptr,
     [](const MethodSetup&, MatrixView<const float> w, const std::string&) {
       return quantize_mxfp4(w);
     }},
    {"mxfp8", [](const MethodSetup&, std::size_t) { return mx_scheme(ElementFormat::fp8_e4m3); },
     nullptr,
     [](const MethodSetup&, MatrixView<const float> w, const std::string&) {
       return quantize_mxfp8(w);
     }},
    {"nvfp4", [](const MethodSetup&, std::size_t) { return nvfp4_scheme(); }, nullptr,
     [](const MethodSetup&, MatrixView<const float> w, const std::string&) {
       return quantize_nvfp4(w);
     }},
    {"fp8", [](const MethodSetup& s, std::size_t) { return fp8_scheme(s.fp8_options()); }, nullptr,
     [](const MethodSetup& s, MatrixView<const float> w, const std::string& tensor) {
       return quantize_fp8(w, s.fp8_options(tensor));
     }},
    ggml_method<GgmlType::q4_0>("q4_0"),
    ggml_method<GgmlType::q8_0>("q8_0"),
    ggml_method<GgmlType::q4_k>("q4_k"),
    {"higgs",
     [](const MethodSetup& s, std::size_t cols) { return higgs_scheme(s.higgs_options(), cols); },
     [](const MethodSetup& s, std::size_t cols) -> std::optional<HadamardRotation> {
       return incoherence_rotation(cols, {s.higgs_options().block, s.o.seed, true});
     },
     [](const MethodSetup& s, MatrixView<const float> w, const std::string& tensor) {
       HiggsOptions options = s.higgs_options();
       options.tensor_name = tensor;
       return quantize_higgs(w, options);
     }},
};

const MethodImplementation& implementation_of(const std::string& name) {
  for (const MethodImplementation& row : method_implementations)
    if (name == row.name) return row;
  throw unsupported("method '" + name + "' has a table row but no implementation");
}

}  // namespace

Quantizer::Quantizer(MethodOptions options)
    : options_(std::move(options)), traits_(&method_traits(options_.method)) {
  if (traits_->calibrated)
    throw invalid_argument(options_.method +
                           " needs calibration data: run it over a model (pipeline/gptq.hpp, "
                           "pipeline/awq.hpp), not through a Quantizer");
  check_method_options(options_);
  (void)implementation_of(options_.method);  // a row without one fails here, not at first use
}

std::vector<std::string> Quantizer::method_names() {
  std::vector<std::string> names;
  for (const MethodTraits& row : method_table)
    if (!row.calibrated) names.emplace_back(row.name);
  return names;
}

Scheme Quantizer::scheme(std::size_t rows, std::size_t cols) const {
  (void)rows;
  return implementation_of(options_.method).scheme(MethodSetup{options_, *traits_}, cols);
}

std::optional<HadamardRotation> Quantizer::rotation(std::size_t cols) const {
  const MethodImplementation& method = implementation_of(options_.method);
  if (method.rotation == nullptr) return std::nullopt;
  return method.rotation(MethodSetup{options_, *traits_}, cols);
}

QuantizedMatrix Quantizer::quantize(MatrixView<const float> weights,
                                    const std::string& tensor_name) const {
  // Every method's errors name the tensor, whatever layer raised them.
  return detail::in_tensor(tensor_name, weights, [&] {
    return implementation_of(options_.method)
        .quantize(MethodSetup{options_, *traits_}, weights, tensor_name);
  });
}

std::string Quantizer::describe() const {
  const MethodSetup s{options_, *traits_};
  const std::string& m = options_.method;
  if (m == "nf4")
    return options_.double_quant ? "nf4 g" + std::to_string(s.nf4_options().block) + " dq"
                                 : "nf4 g" + std::to_string(s.nf4_options().block);
  // A method that takes nothing but its one code width is named by its name alone.
  if (traits_->reads == method_option::bits && traits_->min_bits == traits_->max_bits) return m;
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
