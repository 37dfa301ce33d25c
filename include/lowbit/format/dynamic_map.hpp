// The signed 8-bit "dynamic" quantization map of bitsandbytes (Dettmers, "8-Bit Approximations for
// Parallelism in Deep Learning"): 256 values in [-1, 1] with a dynamic exponent, used by QLoRA's
// double quantization of NF4 block scales. Built as bitsandbytes' create_dynamic_map(signed=True,
// max_exponent_bits=7, total_bits=8) builds it, in float32 arithmetic as torch does.
//
// Verified: all 256 values agree bit for bit with a numpy float32 re-derivation of bitsandbytes'
// create_dynamic_map over torch's current CPU linspace kernel (the scalar loop: the first half
// counted up from start, the second down from end). Torch releases whose linspace kernel was still
// vectorized (Vectorized<float>::arange from each vector's first element) give up to 42 values
// that differ by an ulp or so, depending on the CPU's vector width; bitsandbytes checkpoints store
// the map they used (state2.code), so readers should take it from the file.
// tests/test_nf4_quant.cpp holds the full table.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace lowbit {

namespace detail {

/// torch.linspace(start, end, steps <= 65) in float32: the step in float, the first half counted up
/// from start and the second half down from end.
inline std::array<float, 65> linspace_f32(float start, float end, std::size_t steps) {
  std::array<float, 65> values{};
  const float step = (end - start) / static_cast<float>(steps - 1);
  const std::size_t half = steps / 2;
  for (std::size_t i = 0; i < steps; ++i)
    values[i] = i < half ? start + step * static_cast<float>(i)
                         : end - step * static_cast<float>(steps - i - 1);
  return values;
}

inline std::array<float, 256> make_dynamic_map_signed() {
  constexpr int max_exponent_bits = 7, non_sign_bits = 7;
  std::array<float, 256> data{};
  std::size_t n = 0;
  const auto add_level = [&](int exponent, std::size_t fraction_items) {
    const std::array<float, 65> boundaries = linspace_f32(0.1f, 1.0f, fraction_items);
    const double power = std::pow(10.0, exponent);  // Python's 10 ** exponent
    for (std::size_t j = 0; j + 1 < fraction_items; ++j) {
      const float mean = (boundaries[j] + boundaries[j + 1]) / 2.0f;
      data[n++] = static_cast<float>(power) * mean;
      data[n++] = -static_cast<float>(power) * mean;
    }
  };
  int i = 0;
  for (; i < max_exponent_bits; ++i)
    add_level(-(max_exponent_bits - 1) + i,
              (std::size_t{1} << (i + non_sign_bits - max_exponent_bits)) + 1);
  // additional_items = 2^(non_sign_bits - max_exponent_bits) - 1 = 0 here: nothing more.
  data[n++] = 0.0f;
  data[n++] = 1.0f;
  std::sort(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
  return data;
}

}  // namespace detail

/// The 256 values, ascending; code c stands for dynamic_map_signed()[c].
inline const std::array<float, 256>& dynamic_map_signed() {
  static const std::array<float, 256> map = detail::make_dynamic_map_signed();
  return map;
}

/// The code bitsandbytes' quantize_blockwise gives x (already divided by its block's absmax): its
/// dQuantize<0> binary search over the sorted table, whose ties between two neighbours go to the
/// one the search ends on. A NaN gives code 0, as there.
inline std::uint8_t dynamic_map_signed_encode(float x) noexcept {
  const std::array<float, 256>& code = dynamic_map_signed();
  int pivot = 127, upper_pivot = 255, lower_pivot = 0;
  float lower = -1.0f, upper = 1.0f;
  float value = code[127];
  for (int step = 64; step > 0; step >>= 1) {
    if (x > value) {
      lower_pivot = pivot;
      lower = value;
      pivot += step;
    } else {
      upper_pivot = pivot;
      upper = value;
      pivot -= step;
    }
    value = code[static_cast<std::size_t>(pivot)];
  }
  if (upper_pivot == 255) upper = code[255];
  if (lower_pivot == 0) lower = code[0];
  int result = pivot;
  if (x > value) {
    if (x > (upper + value) * 0.5f) result = upper_pivot;
  } else if (x < (lower + value) * 0.5f) {
    result = lower_pivot;
  }
  return static_cast<std::uint8_t>(result);
}

}  // namespace lowbit
