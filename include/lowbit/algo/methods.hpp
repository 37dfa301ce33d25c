// Every quantization method behind one configured object, chosen by name: what the `lowbit`
// program, the quality tables and the benchmarks use, and a user who picks the method at run time.
// One table (method_table) says what each method is: its name, the code widths it can honour, its
// default group, and which MethodOptions it reads; an option a method does not read, or a width it
// cannot honour, is an error rather than silently ignored. A Quantizer knows, before it sees any
// data, the Scheme and input rotation it will produce for a matrix shape, so a checkpoint writer
// can lay out its file first. GPTQ and AWQ are in the table (their grid is the Scheme's make_grid)
// but need calibration data, so they run over a model (pipeline/gptq.hpp, pipeline/awq.hpp), not
// through a Quantizer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/format/hadamard.hpp"
#include "lowbit/format/scalar_format.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"

namespace lowbit {

struct MethodOptions {
  /// A method_table name: rtn, hadamard-rtn, hqq, kmeans, nf4, mxfp4, mxfp8, nvfp4, higgs (and the
  /// calibrated gptq, awq).
  std::string method = "rtn";
  /// Bits per weight code (HIGGS: per weight, so its grid has 2^(bits * dimension) points); unset =
  /// the method's default. NF4, MXFP4 and NVFP4 take only 4, MXFP8 only 8.
  std::optional<int> bits;
  /// Elements per group along a row; 0 = per output channel, -1 = per tensor; unset = the
  /// method's own default (rtn 128, hqq 64, nf4 64, higgs 512, kmeans per channel).
  std::optional<long> group;
  bool symmetric = false;                    // rtn, hadamard-rtn, gptq, awq
  std::optional<ScalarFormat> scale_format;  // unset = the method's default (f16; fp8: f32)
  bool mse_clip = false;                     // rtn, hadamard-rtn
  bool double_quant = false;                 // nf4
  int higgs_dimension = 2;                   // higgs: p
  std::uint64_t seed = 0;                    // random Hadamard signs, k-means seeding
};

/// The MethodOptions fields (besides `method`) a method reads, one bit each.
namespace method_option {
inline constexpr unsigned bits = 1u << 0;
inline constexpr unsigned group = 1u << 1;
inline constexpr unsigned symmetric = 1u << 2;
inline constexpr unsigned scale_format = 1u << 3;
inline constexpr unsigned mse_clip = 1u << 4;
inline constexpr unsigned double_quant = 1u << 5;
inline constexpr unsigned higgs_dimension = 1u << 6;
inline constexpr unsigned seed = 1u << 7;
/// What an integer grid with round-to-nearest's parameters reads (rtn, gptq, awq).
inline constexpr unsigned integer_grid = bits | group | symmetric | scale_format;
}  // namespace method_option

struct MethodTraits {
  const char* name;
  const char* summary;
  int min_bits, max_bits, default_bits;  // the code widths it can honour
  long default_group;                    // as MethodOptions::group; read only with `group`
  ScalarFormat default_scale;            // read only with `scale_format`
  unsigned reads;                        // method_option bits
  bool calibrated;                       // needs calibration data (GPTQ, AWQ)
};

inline constexpr MethodTraits method_table[] = {
    {"rtn", "round to nearest on an integer grid", 1, 8, 4, 128, ScalarFormat::f16,
     method_option::integer_grid | method_option::mse_clip, false},
    {"hadamard-rtn", "randomized Hadamard rotation, then round to nearest", 1, 8, 4, 128,
     ScalarFormat::f16, method_option::integer_grid | method_option::mse_clip | method_option::seed,
     false},
    {"hqq", "half-quadratic optimized zero points (hqq 0.2.8)", 1, 8, 4, 64, ScalarFormat::f16,
     method_option::bits | method_option::group | method_option::scale_format, false},
    {"kmeans", "a k-means codebook per output channel or group", 1, 8, 4, 0, ScalarFormat::f16,
     method_option::bits | method_option::group | method_option::seed, false},
    {"nf4", "NormalFloat4 with absmax blocks (QLoRA)", 4, 4, 4, 64, ScalarFormat::f16,
     method_option::bits | method_option::group | method_option::double_quant, false},
    {"mxfp4", "OCP MXFP4: E2M1 with an E8M0 scale per 32", 4, 4, 4, 32, ScalarFormat::f16,
     method_option::bits, false},
    {"mxfp8", "OCP MXFP8: E4M3 with an E8M0 scale per 32", 8, 8, 8, 32, ScalarFormat::f16,
     method_option::bits, false},
    {"nvfp4", "NVFP4: E2M1 with an E4M3 scale per 16 and a tensor scale", 4, 4, 4, 16,
     ScalarFormat::f16, method_option::bits, false},
    {"fp8", "FP8 E4M3 with a float scale per channel, group or tensor", 8, 8, 8, 0,
     ScalarFormat::f32, method_option::bits | method_option::group | method_option::scale_format,
     false},
    {"q4_0", "llama.cpp's Q4_0 blocks (32 weights, an fp16 scale)", 4, 4, 4, 32, ScalarFormat::f16,
     method_option::bits, false},
    {"q8_0", "llama.cpp's Q8_0 blocks (32 weights, an fp16 scale)", 8, 8, 8, 32, ScalarFormat::f16,
     method_option::bits, false},
    {"q4_k", "llama.cpp's Q4_K super-blocks (256 weights, 6-bit scales and mins)", 4, 4, 4, 256,
     ScalarFormat::f16, method_option::bits, false},
    {"higgs", "HIGGS: Hadamard rotation, then the MSE-optimal Gaussian grid", 1, 8, 4, 512,
     ScalarFormat::f16,
     method_option::bits | method_option::group | method_option::scale_format |
         method_option::higgs_dimension | method_option::seed,
     false},
    {"gptq", "GPTQ: column by column, errors compensated through the Hessian", 1, 8, 4, 128,
     ScalarFormat::f16, method_option::integer_grid, true},
    {"awq", "AWQ: activation-aware channel scales and clipping, then round to nearest", 1, 8, 4,
     128, ScalarFormat::f16, method_option::integer_grid, true},
};

/// The row of method `name`; invalid_argument listing the methods for an unknown one.
const MethodTraits& method_traits(const std::string& name);

/// Throws invalid_argument when `options` sets a field its method does not read (bits outside
/// the widths it can honour, a group for a format whose blocks are fixed, symmetric for HQQ, ...),
/// naming the field and what the method reads.
void check_method_options(const MethodOptions& options);

class Quantizer {
 public:
  /// A calibration-free method (check_method_options first; calibrated methods are refused).
  explicit Quantizer(MethodOptions options);

  /// The calibration-free methods' names, in table order.
  static std::vector<std::string> method_names();

  const MethodOptions& options() const noexcept { return options_; }
  const MethodTraits& traits() const noexcept { return *traits_; }

  /// The Scheme a [rows, cols] matrix is stored with.
  Scheme scheme(std::size_t rows, std::size_t cols) const;

  /// The input rotation a matrix of `cols` columns gets (hadamard-rtn and higgs rotate).
  std::optional<HadamardRotation> rotation(std::size_t cols) const;

  QuantizedMatrix quantize(MatrixView<const float> weights,
                           const std::string& tensor_name = {}) const;

  /// e.g. "hqq 3-bit g64".
  std::string describe() const;

 private:
  MethodOptions options_;
  const MethodTraits* traits_;
};

}  // namespace lowbit
