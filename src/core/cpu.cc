#include "dfss/cpu.h"

#include <cpuid.h>

#include <cstdlib>
#include <string>

#include "dfss/errors.h"

namespace dfss {
namespace {

struct CpuFeatures {
  bool avx2_fma = false;
  bool avx512 = false;
  bool avx512_bf16 = false;
};

// XGETBV without -mxsave: the OS must have enabled the register state we use.
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFeatures probe_cpu() {
  CpuFeatures features;
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return features;
  const bool fma = ecx & (1u << 12);
  const bool osxsave = ecx & (1u << 27);
  const bool avx = ecx & (1u << 28);
  if (!osxsave || !avx) return features;
  const uint64_t xcr0 = read_xcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;
  const bool os_zmm = (xcr0 & 0xE6) == 0xE6;
  if (__get_cpuid_max(0, nullptr) < 7) return features;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool avx2 = ebx & (1u << 5);
  const bool avx512f = ebx & (1u << 16);
  const bool avx512dq = ebx & (1u << 17);
  const bool avx512bw = ebx & (1u << 30);
  const bool avx512vl = ebx & (1u << 31);
  features.avx2_fma = os_ymm && avx2 && fma;
  features.avx512 = features.avx2_fma && os_zmm && avx512f && avx512dq && avx512bw && avx512vl;
  __cpuid_count(7, 1, eax, ebx, ecx, edx);
  features.avx512_bf16 = features.avx512 && (eax & (1u << 5));
  return features;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = probe_cpu();
  return features;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::automatic: return "auto";
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::avx512_bf16: return "avx512_bf16";
  }
  return "unknown";
}

Isa parse_isa(const std::string& text, const std::string& argument_name) {
  for (Isa isa : {Isa::automatic, Isa::scalar, Isa::avx2, Isa::avx512, Isa::avx512_bf16}) {
    if (text == isa_name(isa)) return isa;
  }
  throw InvalidArgument(argument_name + ": expected one of auto, scalar, avx2, avx512, avx512_bf16; got '" +
                        text + "'");
}

bool isa_supported(Isa isa) {
  const CpuFeatures& features = cpu_features();
  switch (isa) {
    case Isa::automatic:
    case Isa::scalar: return true;
    case Isa::avx2: return features.avx2_fma;
    case Isa::avx512: return features.avx512;
    case Isa::avx512_bf16: return features.avx512_bf16;
  }
  return false;
}

Isa detected_isa() {
  for (Isa isa : {Isa::avx512_bf16, Isa::avx512, Isa::avx2}) {
    if (isa_supported(isa)) return isa;
  }
  return Isa::scalar;
}

Isa default_isa() {
  const char* forced = std::getenv("DFSS_ISA");
  if (forced == nullptr || *forced == '\0') return detected_isa();
  const Isa isa = parse_isa(forced, "DFSS_ISA");
  if (isa == Isa::automatic) return detected_isa();
  if (!isa_supported(isa)) {
    throw Unsupported(std::string("DFSS_ISA=") + forced + ": this CPU supports at most " +
                      isa_name(detected_isa()));
  }
  return isa;
}

Isa resolve_isa(Isa requested) {
  if (requested == Isa::automatic) return default_isa();
  if (!isa_supported(requested)) {
    throw Unsupported(std::string("isa: '") + isa_name(requested) +
                      "' is not supported by this CPU (best: " + isa_name(detected_isa()) + ")");
  }
  return requested;
}

}  // namespace dfss
