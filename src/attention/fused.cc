// Fused (flash-style) attention: blocks of query rows stream over blocks of keys with an
// online softmax; no Lq x Lk matrix exists. K and V are packed once per (batch, key/value
// head), a group of them at a time, so scratch memory stays bounded for any sequence
// length, and every query head of a grouped-query group reads the same packed copy.
// With an N:M pattern the same driver runs the sparse kernel (pruning in the Q·Kᵀ
// epilogue, exp and P·V on the kept entries only).
#include <omp.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "attention/packing.h"
#include "attention/problem.h"
#include "core/debug_assert.h"
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

// Direct decode: with at most this many query rows per key/value head, packing K and V
// costs as much as the attention, so the kernel reads them in place instead.
constexpr int64_t kDecodeMaxRows = 8;
// Keys per decode task. Fixed (not derived from the thread count) so that the segments,
// and hence the bits of their merge, are the same for any thread count; small enough that
// one (batch, key/value head) of a 4096-key cache still feeds 8 threads.
constexpr int64_t kDecodeSegmentKeys = 512;
// Multiply-adds a decode thread gets at least (≈ 10 µs on one Zen 3 core): below, waking a
// thread team costs more than it saves (a step against a short cache took 22 µs with 2
// threads). Safe to vary: the results do not depend on the thread count.
constexpr int64_t kDecodeMinWorkPerThread = 1 << 16;

bool decode_direct_applies(const AttentionProblem& p, const kernels::AttentionKernels& kernels) {
  return p.pattern.dense() && kernels.decode_segment != nullptr &&
         p.lq * (p.heads / p.kv_heads) <= kDecodeMaxRows && p.k.stride[3] == 1 &&
         p.v.stride[3] == 1;
}

float load_float(const ConstTensorView& t, int64_t offset) {
  if (t.dtype == DType::f32) return static_cast<const float*>(t.data)[offset];
  return std::bit_cast<float>(uint32_t{static_cast<const uint16_t*>(t.data)[offset]} << 16);
}

// Row r of a (batch, key/value head) task is query head kv * ratio + r / Lq, query row
// r % Lq. Each task scores one segment of keys; the segments of a row are then merged in
// key order: m = max m_s, o = Σ o_s e^(m_s - m), l = Σ l_s e^(m_s - m).
void run_decode_direct(const AttentionProblem& p, const kernels::AttentionKernels& kernels) {
  const int64_t ratio = p.heads / p.kv_heads;
  const int64_t rows = p.lq * ratio;
  const int64_t segments = (p.lk + kDecodeSegmentKeys - 1) / kDecodeSegmentKeys;
  const int64_t slots = p.batch * p.kv_heads;
  const int64_t part_floats = rows * (p.dv + 2);
  const bool score_mask = p.score_mask.data != nullptr;
  AlignedBuffer partial = allocate_aligned(slots * segments * part_floats * 4);
  struct ThreadScratch {
    AlignedBuffer q, bias, chunk, merged;
    std::vector<int64_t> begin, end;
  };
  const double work = double(slots) * double(rows) * double(p.lk) * double(p.d + p.dv);
  const int threads = static_cast<int>(
      std::clamp<double>(std::floor(work / kDecodeMinWorkPerThread), 1, p.threads));
  std::vector<ThreadScratch> thread_scratch(static_cast<size_t>(threads));
  for (ThreadScratch& t : thread_scratch) {
    t.q = allocate_aligned(rows * p.d * 4);
    if (score_mask) t.bias = allocate_aligned(rows * kDecodeSegmentKeys * 4);
    t.chunk = allocate_aligned(kernels::kDecodeChunkKeys * (1 + p.d + p.dv) * 4);
    t.merged = allocate_aligned(rows * (p.dv + 2) * 4);
    t.begin.resize(static_cast<size_t>(rows));
    t.end.resize(static_cast<size_t>(rows));
  }

#pragma omp parallel num_threads(threads)
  {
    DFSS_DEBUG_ASSERT(omp_get_thread_num() < static_cast<int>(thread_scratch.size()));
    ThreadScratch& mine = thread_scratch[static_cast<size_t>(omp_get_thread_num())];
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < slots * segments; ++task) {
      const int64_t slot = task / segments, b = slot / p.kv_heads, kv = slot % p.kv_heads;
      const int64_t present = keys_present(p, b);
      const int64_t key_begin = task % segments * kDecodeSegmentKeys;
      const int64_t key_end = std::min(p.lk, key_begin + kDecodeSegmentKeys);
      // The score-mask bias rows hold one segment of keys.
      DFSS_DEBUG_ASSERT(key_begin < key_end && key_end - key_begin <= kDecodeSegmentKeys);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t h = kv * ratio + r / p.lq, i = r % p.lq;
        const int64_t q0 = b * p.q.stride[0] + h * p.q.stride[1] + i * p.q.stride[2];
        for (int64_t x = 0; x < p.d; ++x)
          mine.q.get()[r * p.d + x] = load_float(p.q, q0 + x * p.q.stride[3]);
        mine.begin[static_cast<size_t>(r)] = p.first_key(i);
        mine.end[static_cast<size_t>(r)] =
            std::min(present, p.causal ? p.causal_last_key(i) + 1 : p.lk);
        if (score_mask) {
          float* row = mine.bias.get() + r * kDecodeSegmentKeys;
          for (int64_t j = key_begin; j < std::min(key_end, present); ++j)
            row[j - key_begin] = p.bias(b, h, i, j);
        }
      }
      kernels::DecodeArgs args;
      args.q = mine.q.get();
      args.rows = rows;
      args.bf16 = p.dtype == DType::bf16;
      const int64_t elem = args.bf16 ? 2 : 4;
      args.k = static_cast<const char*>(p.k.data) + (b * p.k.stride[0] + kv * p.k.stride[1]) * elem;
      args.v = static_cast<const char*>(p.v.data) + (b * p.v.stride[0] + kv * p.v.stride[1]) * elem;
      args.k_stride = p.k.stride[2];
      args.v_stride = p.v.stride[2];
      args.d = p.d;
      args.dv = p.dv;
      args.key_begin = key_begin;
      args.key_end = key_end;
      args.row_begin = mine.begin.data();
      args.row_end = mine.end.data();
      if (score_mask) {
        args.bias = mine.bias.get();
        args.bias_row_stride = kDecodeSegmentKeys;
      } else if (p.mask_additive != nullptr) {
        args.bias = p.mask_additive + b * p.mask_stride + key_begin;  // shared by every row
      }
      args.scale = p.scale;
      args.o = partial.get() + task * part_floats;
      args.row_max = args.o + rows * p.dv;
      args.row_sum = args.row_max + rows;
      args.scratch = mine.chunk.get();
      kernels.decode_segment(args);
    }

#pragma omp for schedule(static)
    for (int64_t slot = 0; slot < slots; ++slot) {
      float* o = mine.merged.get();
      float* m = o + rows * p.dv;
      float* l = m + rows;
      for (int64_t r = 0; r < rows; ++r) {
        const float* first = partial.get() + slot * segments * part_floats;
        float row_max = -std::numeric_limits<float>::infinity();
        for (int64_t s = 0; s < segments; ++s)
          row_max = std::max(row_max, first[s * part_floats + rows * p.dv + r]);
        std::fill(o + r * p.dv, o + (r + 1) * p.dv, 0.0f);
        l[r] = 0.0f;
        m[r] = row_max;
        for (int64_t s = 0; s < segments; ++s) {
          const float* part = first + s * part_floats;
          const float m_s = part[rows * p.dv + r], l_s = part[rows * p.dv + rows + r];
          // A segment the row does not see adds nothing (its o may hold 0 * inf from
          // values of keys that were masked by -inf). A NaN l_s still flows through.
          if (l_s == 0.0f) continue;
          const float factor =
              m_s == row_max ? 1.0f : static_cast<float>(std::exp(double{m_s} - double{row_max}));
          // Multiply, then add (not std::fma: this file is baseline x86-64 code, where
          // std::fma is a libm call per element, a quarter of a short decode call).
          l[r] += l_s * factor;
          float* out = o + r * p.dv;
          const float* in = part + r * p.dv;
          for (int64_t c = 0; c < p.dv; ++c) out[c] += in[c] * factor;
        }
      }
      const int64_t b = slot / p.kv_heads, kv = slot % p.kv_heads;
      for (int64_t g = 0; g < ratio; ++g) {
        store_rows(p, b, kv * ratio + g, 0, p.lq, o + g * p.lq * p.dv, p.dv, l + g * p.lq);
        store_log_sum_exp(p, b, kv * ratio + g, 0, p.lq, m + g * p.lq, l + g * p.lq);
      }
    }
  }
}

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
  if (decode_direct_applies(p, kernels)) return run_decode_direct(p, kernels);
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
    DFSS_DEBUG_ASSERT(omp_get_thread_num() < static_cast<int>(thread_scratch.size()));
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
        // Scratch is sized for one block of rows; packed K/V for group_slots heads.
        DFSS_DEBUG_ASSERT(rows > 0 && rows <= kBlockRows);
        DFSS_DEBUG_ASSERT(slot < group_size && group_size <= group_slots);
        DFSS_DEBUG_ASSERT(h < p.heads && h / heads_per_slot == bkv % p.kv_heads);
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
        DFSS_DEBUG_ASSERT(args.lk >= 0 && args.lk <= p.lk && p.lk <= g.lk_pad);
        DFSS_DEBUG_ASSERT(args.bias_row_stride == 0 || args.bias_row_stride == g.lk_pad);
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
