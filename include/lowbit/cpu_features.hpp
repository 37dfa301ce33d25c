// What the CPU this process runs on can execute, read once from CPUID, and which instruction set
// lowbit's CPU kernels use. LOWBIT_ISA=scalar|avx2|avx512 in the environment forces a choice
// (for tests and benchmarks of the slower paths).
#pragma once

#include <optional>
#include <string_view>

namespace lowbit {

struct CpuFeatures {
  bool sse4_1 = false;
  bool avx = false;  // instructions present and their registers saved by the OS
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool bmi2 = false;
  bool avx_vnni = false;
  bool avx512f = false;  // AVX-512 instructions present and their state saved by the OS
  bool avx512bw = false;
  bool avx512dq = false;
  bool avx512vl = false;
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
};

/// The features of this CPU, detected on first use.
const CpuFeatures& cpu_features() noexcept;

/// The instruction-set levels lowbit compiles kernels for.
enum class Isa { scalar, avx2, avx512 };

struct IsaTraits {
  Isa value;
  const char* name;                              // LOWBIT_ISA's spelling
  bool (*runs_on)(const CpuFeatures&) noexcept;  // the features its kernels are compiled for
};

/// Every level, from the most widely runnable to the fastest.
extern const IsaTraits isa_table[3];

const char* to_string(Isa isa) noexcept;
std::optional<Isa> parse_isa(std::string_view name) noexcept;

/// True when `features` can run kernels built for `isa` (AVX2 means AVX2+FMA+F16C; AVX-512
/// means F+BW+DQ+VL, as Skylake-X and later have).
bool supports(const CpuFeatures& features, Isa isa) noexcept;

/// The best level this CPU runs.
Isa best_isa() noexcept;

/// The level kernels use: LOWBIT_ISA when set, else best_isa(). Throws lowbit::unsupported when
/// LOWBIT_ISA names an unknown level or one this CPU cannot run.
Isa selected_isa();

}  // namespace lowbit
