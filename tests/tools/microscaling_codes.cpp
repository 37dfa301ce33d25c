// Reads a little-endian float32 matrix ([rows, cols] after two uint64 dimensions) from argv[2] and
// writes, for the format argv[1] (mxfp4, mxfp8_e4m3, mxfp8_e5m2, nvfp4), one code byte per element,
// then one scale byte per block, then the float32 tensor scale, to stdout. For
// tests/python/check_microscaling.py.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "lowbit/quant/microscaling.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s mxfp4|mxfp8_e4m3|mxfp8_e5m2|nvfp4 matrix.bin\n", argv[0]);
    return 2;
  }
  std::FILE* in = std::fopen(argv[2], "rb");
  if (in == nullptr) return 2;
  std::uint64_t shape[2] = {0, 0};
  if (std::fread(shape, sizeof shape, 1, in) != 1) return 2;
  std::vector<float> w(shape[0] * shape[1]);
  if (std::fread(w.data(), sizeof(float), w.size(), in) != w.size()) return 2;
  std::fclose(in);
  const lowbit::MatrixView<const float> view(w.data(), shape[0], shape[1]);
  const std::string format = argv[1];
  lowbit::QuantizedMatrix q;
  if (format == "mxfp4")
    q = lowbit::quantize_mxfp4(view);
  else if (format == "mxfp8_e4m3")
    q = lowbit::quantize_mxfp8(view);
  else if (format == "mxfp8_e5m2")
    q = lowbit::quantize_mxfp8(view, lowbit::ElementFormat::fp8_e5m2);
  else if (format == "nvfp4")
    q = lowbit::quantize_nvfp4(view);
  else
    return 2;
  std::vector<std::uint8_t> out;
  for (std::size_t r = 0; r < q.rows(); ++r)
    for (std::size_t c = 0; c < q.cols(); ++c) out.push_back(q.code(r, c));
  for (std::uint8_t b : q.scale_bytes()) out.push_back(b);
  const float tensor_scale = q.tensor_scale();
  std::uint8_t bytes[4];
  std::memcpy(bytes, &tensor_scale, 4);
  out.insert(out.end(), bytes, bytes + 4);
  return std::fwrite(out.data(), 1, out.size(), stdout) == out.size() ? 0 : 1;
}
