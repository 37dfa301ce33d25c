// IEEE binary16 (fp16) and bfloat16, as instances of the generic minifloat: the same bit-exact,
// constexpr conversions as the narrow formats (round to nearest even, subnormals, Inf and NaN),
// agreeing with Eigen::half and Eigen::bfloat16 on every non-NaN input. Compiles for CUDA devices.
#pragma once

#include "lowbit/format/minifloat.hpp"

namespace lowbit {

/// IEEE 754 binary16: max 65504, smallest subnormal 2^-24.
using float16 = minifloat<5, 10, 15, NonFinite::ieee>;
/// bfloat16: float32's exponent range with 7 mantissa bits.
using bfloat16 = minifloat<8, 7, 127, NonFinite::ieee>;

}  // namespace lowbit
