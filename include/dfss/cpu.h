// Instruction-set selection. dfss ships one binary for every x86-64 CPU and picks the
// kernels at run time; the choice can be forced with DFSS_ISA or per call.
#pragma once

#include <string>

namespace dfss {

enum class Isa {
  automatic,    // best the CPU and OS support (or DFSS_ISA when set)
  scalar,       // portable C++, no intrinsics
  avx2,         // AVX2 + FMA
  avx512,       // AVX-512 F/BW/DQ/VL
  avx512_bf16,  // AVX-512 plus the BF16 dot-product instructions
};

const char* isa_name(Isa isa);

// Parses "auto", "scalar", "avx2", "avx512", "avx512_bf16"; throws InvalidArgument naming
// `argument_name` and the accepted values otherwise.
Isa parse_isa(const std::string& text, const std::string& argument_name);

// The best ISA this CPU and operating system support (CPUID + XGETBV).
Isa detected_isa();

// Whether `isa` can run here.
bool isa_supported(Isa isa);

// What Isa::automatic means in this process: DFSS_ISA if set (validated once), else
// detected_isa(). Throws Unsupported if DFSS_ISA names an ISA the CPU lacks.
Isa default_isa();

// Resolves `requested` (automatic -> default_isa()) and throws Unsupported if the CPU
// cannot run it.
Isa resolve_isa(Isa requested);

}  // namespace dfss
