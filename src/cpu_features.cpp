#include "lowbit/cpu_features.hpp"

#include "lowbit/detail/enum_table.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

#include "lowbit/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define LOWBIT_X86 1
#endif

namespace lowbit {
namespace {

#ifdef LOWBIT_X86
struct CpuidRegisters {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
};

CpuidRegisters cpuid(unsigned leaf, unsigned subleaf) noexcept {
  CpuidRegisters r;
  if (!__get_cpuid_count(leaf, subleaf, &r.eax, &r.ebx, &r.ecx, &r.edx)) return {};
  return r;
}

// Which register states the OS saves on a context switch (XCR0). Read with inline assembly so that
// this file needs no -mxsave.
std::uint64_t os_saved_state() noexcept {
  std::uint32_t low = 0, high = 0;
  __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
  return (static_cast<std::uint64_t>(high) << 32) | low;
}

constexpr bool bit(unsigned value, int index) noexcept { return ((value >> index) & 1u) != 0; }

CpuFeatures detect() noexcept {
  CpuFeatures f;
  const CpuidRegisters leaf1 = cpuid(1, 0);
  f.sse4_1 = bit(leaf1.ecx, 19);
  const bool osxsave = bit(leaf1.ecx, 27);
  const std::uint64_t xcr0 = osxsave ? os_saved_state() : 0;
  const bool ymm_saved = (xcr0 & 0x6) == 0x6;                 // SSE and AVX state
  const bool zmm_saved = ymm_saved && (xcr0 & 0xE0) == 0xE0;  // opmask, ZMM0-15 upper, ZMM16-31

  f.avx = ymm_saved && bit(leaf1.ecx, 28);
  f.fma = f.avx && bit(leaf1.ecx, 12);
  f.f16c = f.avx && bit(leaf1.ecx, 29);

  const CpuidRegisters leaf7 = cpuid(7, 0);
  f.avx2 = f.avx && bit(leaf7.ebx, 5);
  f.bmi2 = bit(leaf7.ebx, 8);
  f.avx512f = zmm_saved && bit(leaf7.ebx, 16);
  f.avx512dq = f.avx512f && bit(leaf7.ebx, 17);
  f.avx512bw = f.avx512f && bit(leaf7.ebx, 30);
  f.avx512vl = f.avx512f && bit(leaf7.ebx, 31);
  f.avx512_vnni = f.avx512f && bit(leaf7.ecx, 11);

  const CpuidRegisters leaf7_1 = leaf7.eax >= 1 ? cpuid(7, 1) : CpuidRegisters{};
  f.avx_vnni = f.avx && bit(leaf7_1.eax, 4);
  f.avx512_bf16 = f.avx512f && bit(leaf7_1.eax, 5);
  return f;
}
#else
CpuFeatures detect() noexcept { return {}; }
#endif

}  // namespace

const CpuFeatures& cpu_features() noexcept {
  static const CpuFeatures features = detect();
  return features;
}

namespace {

bool runs_scalar(const CpuFeatures&) noexcept { return true; }
bool runs_avx2(const CpuFeatures& f) noexcept { return f.avx2 && f.fma && f.f16c; }
bool runs_avx512(const CpuFeatures& f) noexcept {
  return runs_avx2(f) && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl;
}

}  // namespace

const IsaTraits isa_table[3] = {
    {Isa::scalar, "scalar", runs_scalar},
    {Isa::avx2, "avx2", runs_avx2},
    {Isa::avx512, "avx512", runs_avx512},
};

const char* to_string(Isa isa) noexcept { return detail::name_of(isa_table, isa); }

std::optional<Isa> parse_isa(std::string_view name) noexcept {
  return detail::value_named(isa_table, name);
}

bool supports(const CpuFeatures& f, Isa isa) noexcept {
  const IsaTraits* row = detail::row_of(isa_table, isa);
  return row != nullptr && row->runs_on(f);
}

Isa best_isa() noexcept {
  const CpuFeatures& f = cpu_features();
  Isa best = Isa::scalar;
  for (const IsaTraits& row : isa_table)  // ordered from the slowest level to the fastest
    if (row.runs_on(f)) best = row.value;
  return best;
}

Isa selected_isa() {
  const char* forced = std::getenv("LOWBIT_ISA");
  if (forced == nullptr || *forced == '\0') return best_isa();
  const std::optional<Isa> isa = parse_isa(forced);
  if (!isa)
    throw unsupported(std::string("LOWBIT_ISA=") + forced + " is not one of " +
                      detail::names_of(isa_table));
  if (!supports(cpu_features(), *isa))
    throw unsupported(std::string("LOWBIT_ISA=") + forced + ": this CPU cannot run it");
  return *isa;
}

}  // namespace lowbit
