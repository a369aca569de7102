// Per-ISA multiply-add throughput loops behind measure_fma_peak_gflops. Each lives in its
// own namespace and file, compiled with that ISA's flags, so no AVX-512 code can leak into
// the scalar path. Each runs `iterations` rounds of independent multiply-adds held in
// registers, stores a value derived from every accumulator in `*sink` (so the compiler
// must compute them) and returns the FLOPs performed.
#pragma once

#include <cstdint>

namespace dfss::kernels {
namespace scalar {
double fma_peak_loop_f32(int64_t iterations, float* sink);
}
namespace avx2 {
double fma_peak_loop_f32(int64_t iterations, float* sink);
}
namespace avx512 {
double fma_peak_loop_f32(int64_t iterations, float* sink);
}
namespace avx512_bf16 {
double fma_peak_loop_bf16(int64_t iterations, float* sink);
}
}  // namespace dfss::kernels
