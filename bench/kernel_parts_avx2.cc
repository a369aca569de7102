// The kernel-part benchmarks (kernel_parts-inl.h) on AVX2 + FMA; skipped on CPUs without it.
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include "dfss/cpu.h"
#include "kernels/attention/attention_common.h"
#include "sparse/nm_selection.h"

#define DFSS_KERNEL_NS bench_avx2
#define DFSS_PARTS_ISA dfss::Isa::avx2
#include "kernels/simd/vec_avx2-inl.h"
// clang-format off
#include "kernels/attention/attention-inl.h"
#include "kernels/simd/nm_prune_avx2-inl.h"
#include "kernels/simd/nm_select_avx2-inl.h"
#include "kernels/attention/sparse_attention-inl.h"
// clang-format on

#include "kernel_parts-inl.h"

namespace kernel_parts {
PartList parts_avx2() {
  return {kParts, sizeof kParts / sizeof kParts[0]};
}
}  // namespace kernel_parts
