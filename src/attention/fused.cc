// Fused (flash-style) attention: blocks of query rows stream over blocks of keys with an
// online softmax; no Lq x Lk matrix exists. K and V are packed once per (batch, key/value
// head), a group of them at a time, so scratch memory stays bounded for any sequence
// length, and every query head of a grouped-query group reads the same packed copy.
// With an N:M pattern the same driver runs the sparse kernel (pruning in the Q·Kᵀ
// epilogue, exp and P·V on the kept entries only).
#include <omp.h>

#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#include "attention/packing.h"
#include "attention/problem.h"
#include "dfss/errors.h"
#include "kernels/attention/flash_kernels.h"

namespace dfss::detail {
namespace {

using kernels::kTileRows;

// Query rows per task: 8 register tiles, so a block of K and V is reused by 48 rows while
// it is in L1/L2.
constexpr int64_t kBlockRows = 8 * kTileRows;
// Packed K and V of one head group stay within this many bytes.
constexpr int64_t kGroupBytes = 32 << 20;

}  // namespace

void run_fused(const AttentionProblem& p) {
  if (p.batch == 0 || p.heads == 0 || p.lq == 0) return;
  if (p.lk == 0) return store_zeros(p);
  const bool sparse = !p.pattern.dense();
  // With log_sum_exp (training) the N:M kernels are the fp32 ones: the backward recomputes
  // the scores with the fp32 fma chain, and the kept set must be bit-identical to this
  // one, which the bf16 pair-combo kernels (vdpbf16ps sums) do not guarantee.
  const kernels::AttentionKernels& kernels =
      !sparse                    ? kernels::attention_kernels(p.isa, p.dtype)
      : p.log_sum_exp != nullptr ? kernels::attention_kernels(p.isa, p.dtype, true)
                                 : kernels::sparse_fused_kernels(p.isa, p.dtype, p.pattern);
  const auto block_kernel = sparse ? kernels.sparse_fused_block : kernels.fused_block;
  const PackedGeometry g = packed_geometry(p, kernels.format);
  // The fp32 N:M kernels address rows of V by 32-bit element offsets (the pair-combo
  // kernels by offsets within a span).
  if (sparse && g.format == kernels::PackFormat::f32 && (g.lk_pad + 1) * g.dv_pad > INT32_MAX) {
    throw InvalidArgument("k: Lk = " + std::to_string(p.lk) + " with dv = " + std::to_string(p.dv) +
                          " is too long for the fused N:M kernels (Lk * dv must stay below 2^31)");
  }
  const int64_t head_bytes = (g.k_elems + g.v_elems) * g.elem_bytes;
  // Slots are (batch, key/value head) pairs; each serves heads / kv_heads query heads.
  const int64_t total_slots = p.batch * p.kv_heads;
  const int64_t group_slots = std::clamp<int64_t>(kGroupBytes / head_bytes, 1, total_slots);
  const int64_t heads_per_slot = p.heads / p.kv_heads;
  const int64_t row_blocks = (p.lq + kBlockRows - 1) / kBlockRows;
  const int64_t tasks_per_slot = heads_per_slot * row_blocks;
  const bool score_mask = p.score_mask.data != nullptr;

  AlignedBuffer packed = allocate_aligned(group_slots * head_bytes);
  AlignedBuffer key_bias = allocate_aligned(p.batch * g.lk_pad * 4);
  auto head_keys = [&](int64_t slot) {
    return reinterpret_cast<char*>(packed.get()) + slot * head_bytes;
  };
  auto head_values = [&](int64_t slot) { return head_keys(slot) + g.k_elems * g.elem_bytes; };

  // Per-thread scratch, allocated here so that a bad_alloc reaches the caller instead of
  // terminating inside the parallel region.
  struct ThreadScratch {
    AlignedBuffer q_packed, o, row_max, row_sum, row_sum_lanes, scratch, bias;
  };
  std::vector<ThreadScratch> thread_scratch(static_cast<size_t>(p.threads));
  for (ThreadScratch& t : thread_scratch) {
    t.q_packed = allocate_aligned(kBlockRows / kTileRows * g.q_tile_elems * g.elem_bytes);
    t.o = allocate_aligned(kBlockRows * g.dv_pad * 4);
    t.row_max = allocate_aligned(kBlockRows * 4);
    t.row_sum = allocate_aligned(kBlockRows * 4);
    t.row_sum_lanes = allocate_aligned(kBlockRows * 16 * 4);
    t.scratch = allocate_aligned(kernels::kFlashScratchFloats * 4);
    // The per-row bias of a block of rows, built per task (only with a score mask).
    if (score_mask) t.bias = allocate_aligned(kBlockRows * g.lk_pad * 4);
  }

#pragma omp parallel num_threads(p.threads)
  {
    ThreadScratch& mine = thread_scratch[static_cast<size_t>(omp_get_thread_num())];
    const AlignedBuffer &q_packed = mine.q_packed, &o = mine.o, &row_max = mine.row_max,
                        &row_sum = mine.row_sum, &row_sum_lanes = mine.row_sum_lanes,
                        &scratch = mine.scratch, &bias = mine.bias;

#pragma omp for schedule(static)
    for (int64_t b = 0; b < p.batch; ++b) build_key_bias(p, g, b, key_bias.get() + b * g.lk_pad);

    for (int64_t group0 = 0; group0 < total_slots; group0 += group_slots) {
      const int64_t group_size = std::min(group_slots, total_slots - group0);
#pragma omp for schedule(static)
      for (int64_t job = 0; job < 2 * group_size; ++job) {
        const int64_t bkv = group0 + job / 2;
        if (job % 2 == 0) {
          pack_keys(p, g, bkv / p.kv_heads, bkv % p.kv_heads, head_keys(job / 2));
        } else {
          pack_values(p, g, bkv / p.kv_heads, bkv % p.kv_heads, head_values(job / 2));
        }
      }
      // Tasks (slot, query head of its group, row block) are independent, so any schedule
      // gives the same bits.
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < group_size * tasks_per_slot; ++task) {
        const int64_t slot = task / tasks_per_slot;
        const int64_t bkv = group0 + slot;
        const int64_t b = bkv / p.kv_heads;
        const int64_t h = bkv % p.kv_heads * heads_per_slot + task % tasks_per_slot / row_blocks;
        const int64_t row0 = (task % row_blocks) * kBlockRows;
        const int64_t rows = std::min(kBlockRows, p.lq - row0);
        pack_queries(p, g, b, h, row0, rows, q_packed.get());
        kernels::FlashBlockArgs args;
        args.q_packed = q_packed.get();
        args.rows = rows;
        args.first_row = row0;
        args.k_packed = head_keys(slot);
        args.v_packed = head_values(slot);
        if (score_mask) {
          args.bias_row_stride =
              build_score_bias(p, g, b, h, row0, rows, round_up(rows, kTileRows), bias.get());
          args.key_bias = bias.get();
        } else {
          args.key_bias = key_bias.get() + b * g.lk_pad;
        }
        args.lk = keys_present(p, b);
        args.lk_pad = g.lk_pad;
        args.d = p.d;
        args.dv_pad = g.dv_pad;
        args.scale = p.scale;
        args.causal = p.causal;
        args.causal_offset = p.lk - p.lq;
        args.window = p.window;
        args.pattern_n = p.pattern.n;
        args.pattern_m = p.pattern.m;
        args.o = o.get();
        args.row_max = row_max.get();
        args.row_sum = row_sum.get();
        args.row_sum_lanes = row_sum_lanes.get();
        args.scratch = scratch.get();
        block_kernel(args);
        store_rows(p, b, h, row0, rows, o.get(), g.dv_pad, row_sum.get());
        store_log_sum_exp(p, b, h, row0, rows, row_max.get(), row_sum.get());
      }
    }
  }
}

}  // namespace dfss::detail
