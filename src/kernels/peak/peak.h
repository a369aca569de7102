// Measured multiply-add throughput of this machine, the "100 %" that benchmarks compare
// attention kernels against.
#pragma once

#include "dfss/cpu.h"

namespace dfss::kernels {

// Runs a register-only multiply-add loop (best of three ~50 ms trials) on `threads` threads (0:
// OpenMP's default) using the instructions of `isa` (automatic: default_isa()) and returns the
// aggregate rate in GFLOP/s, counting a multiply-add as 2 FLOPs.
// bf16 = false: fp32 FMAs (vfmadd231ps zmm / ymm; mul + add on scalar).
// bf16 = true: vdpbf16ps zmm on avx512_bf16; other ISAs have no bf16 arithmetic (their
// kernels widen bf16 to fp32), so their fp32 rate is returned.
// Throws Unsupported if the CPU cannot run `isa`, InvalidArgument for threads > 1024.
double measure_fma_peak_gflops(Isa isa, bool bf16, int threads);

}  // namespace dfss::kernels
