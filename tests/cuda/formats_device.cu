// Compile-only check (CI has nvcc but no GPU): the element formats and packing helpers are usable
// in device code through LOWBIT_HOST_DEVICE.
#include "lowbit/format/half.hpp"
#include "lowbit/format/intn.hpp"
#include "lowbit/format/minifloat.hpp"
#include "lowbit/format/nf4.hpp"
#include "lowbit/format/packing.hpp"

__global__ void round_trip_formats(const float* in, float* out, std::uint32_t* words, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float x = in[i];
  float acc = 0.0f;
  acc += lowbit::float8_e4m3::from_bits(lowbit::float8_e4m3::encode(x).code).to_float();
  acc += lowbit::float8_e5m2::from_bits(
             lowbit::float8_e5m2::encode(x, lowbit::Overflow::to_nonfinite).code)
             .to_float();
  acc += lowbit::float4_e2m1::from_bits(lowbit::float4_e2m1::encode(x).code).to_float();
  acc += lowbit::float4_e1m2<>::from_bits(lowbit::float4_e1m2<>::encode(x).code).to_float();
  acc += lowbit::float4_e3m0<>::from_bits(lowbit::float4_e3m0<>::encode(x).code).to_float();
  acc += lowbit::float8_e8m0::from_bits(lowbit::float8_e8m0::encode(x).code).to_float();
  acc += lowbit::float16::from_bits(lowbit::float16::encode(x).code).to_float();
  acc += lowbit::bfloat16::from_bits(lowbit::bfloat16::encode(x).code).to_float();
  acc += lowbit::nf4::encode_nearest(x).to_float();
  acc += static_cast<float>(lowbit::from_code(lowbit::to_code(i % 8 - 4, 4), 4, true));
  // One word per thread, so that threads never write the same word.
  const auto slot = static_cast<std::size_t>(i % 8);
  lowbit::set_code(words + i, slot, 4, lowbit::PackOrder::awq_interleaved,
                   static_cast<std::uint8_t>(i & 15));
  acc +=
      static_cast<float>(lowbit::get_code(words + i, slot, 4, lowbit::PackOrder::awq_interleaved));
  out[i] = acc;
}
