// lowbit_format_codes FORMAT MODE
//
// Reads little-endian float32 values from stdin and writes, for each, lowbit's code in FORMAT as a
// little-endian uint16 to stdout; 0xFFFF where encode() is not ok (f16 and bf16 always encode, so
// there 0xFFFF is the code of a negative NaN). tests/python/check_formats.py compares these codes
// with ml_dtypes'.
//   FORMAT: e4m3 e5m2 e2m1 e2m3 e3m2 e8m0 f16 bf16
//   MODE:   saturate to_nonfinite
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

#include "lowbit/format/half.hpp"
#include "lowbit/format/minifloat.hpp"

namespace {

constexpr std::uint16_t not_ok_code = 0xFFFF;

std::vector<float> read_floats(std::FILE* in) {
  std::vector<unsigned char> bytes;
  unsigned char buffer[1 << 16];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, in)) > 0)
    bytes.insert(bytes.end(), buffer, buffer + got);
  std::vector<float> values(bytes.size() / 4);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::uint32_t bits = static_cast<std::uint32_t>(bytes[4 * i]) |
                               static_cast<std::uint32_t>(bytes[4 * i + 1]) << 8 |
                               static_cast<std::uint32_t>(bytes[4 * i + 2]) << 16 |
                               static_cast<std::uint32_t>(bytes[4 * i + 3]) << 24;
    std::memcpy(&values[i], &bits, sizeof bits);
  }
  return values;
}

template <class Format>
std::vector<unsigned char> encode_all(const std::vector<float>& values, lowbit::Overflow mode) {
  std::vector<unsigned char> out;
  out.reserve(2 * values.size());
  for (float x : values) {
    const auto result = Format::encode(x, mode);
    const std::uint16_t code = result.ok ? static_cast<std::uint16_t>(result.code) : not_ok_code;
    out.push_back(static_cast<unsigned char>(code & 0xFF));
    out.push_back(static_cast<unsigned char>(code >> 8));
  }
  return out;
}

int usage() {
  std::fputs(
      "usage: lowbit_format_codes FORMAT MODE < float32s > uint16s\n"
      "  FORMAT: e4m3 e5m2 e2m1 e2m3 e3m2 e8m0 f16 bf16\n"
      "  MODE:   saturate to_nonfinite\n",
      stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return usage();
  const std::string_view format = argv[1];
  const std::string_view mode_name = argv[2];
  lowbit::Overflow mode{};
  if (mode_name == "saturate")
    mode = lowbit::Overflow::saturate;
  else if (mode_name == "to_nonfinite")
    mode = lowbit::Overflow::to_nonfinite;
  else
    return usage();

  const std::vector<float> values = read_floats(stdin);
  std::vector<unsigned char> out;
  if (format == "e4m3")
    out = encode_all<lowbit::float8_e4m3>(values, mode);
  else if (format == "e5m2")
    out = encode_all<lowbit::float8_e5m2>(values, mode);
  else if (format == "e2m1")
    out = encode_all<lowbit::float4_e2m1>(values, mode);
  else if (format == "e2m3")
    out = encode_all<lowbit::float6_e2m3>(values, mode);
  else if (format == "e3m2")
    out = encode_all<lowbit::float6_e3m2>(values, mode);
  else if (format == "e8m0")
    out = encode_all<lowbit::float8_e8m0>(values, mode);
  else if (format == "f16")
    out = encode_all<lowbit::float16>(values, mode);
  else if (format == "bf16")
    out = encode_all<lowbit::bfloat16>(values, mode);
  else
    return usage();

  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
    std::perror("lowbit_format_codes: writing stdout");
    return 1;
  }
  return 0;
}
