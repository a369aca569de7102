// Fused attention backward (flash-attention-2 style): no Lq x Lk buffer. The score tiles
// are recomputed from Q, K and the forward's log-sum-exp. With enough key/value heads to
// keep the threads busy, one pass: a task owns a key/value head, walks its key blocks and,
// per tile, adds to dV, dK and to a per-thread dQ accumulator of the head's query rows.
// Otherwise two passes, which compute every tile twice but split finer: pass 1 owns a key
// block and sums dK and dV over every query row of the heads that read it; pass 2 owns a
// block of query rows and sums dQ over the key blocks. Both schedules run the same
// micro-GEMM calls on the same accumulators in the same order (dK, dV: heads, then query
// blocks ascending; dQ: key blocks ascending), so they give the same bits, whatever the
// thread count, with no atomics.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "attention/backward_packing.h"
#include "attention/backward_problem.h"
#include "attention/packing.h"
#include "core/debug_assert.h"
#include "kernels/attention_backward/backward_kernels.h"

namespace dfss::detail {
namespace {

using kernels::kBackwardRows;
using kernels::kBackwardStride;
using kernels::kKeyBlock;
using kernels::kTileRows;

// Packed operands of a chunk of key/value heads (with their query heads) stay within
// this many bytes.
constexpr int64_t kChunkBytes = 64 << 20;
// The single pass's dQ accumulators ([query heads per key/value head][Lq][d] per thread)
// stay within this many bytes for all threads together; beyond, two passes.
constexpr int64_t kSinglePassBytes = 32 << 20;

struct ThreadScratch {
  AlignedBuffer p, ds, dk, dv, dq;
  AlignedBuffer dq_heads;  // single pass: [group][lq_pad][d_pad]
};

// Whether query rows [row0, row0 + rows) attend any key of the block at key0 (causal,
// window and keys present): the one test both schedules use to skip a tile, so that they
// run the same micro-GEMM calls.
bool tile_visible(const AttentionProblem& p, const BackwardGeometry& g, int64_t present,
                  int64_t key0, int64_t row0, int64_t rows) {
  const int64_t key_end = std::min(key0 + g.block_keys, present);
  if (key_end <= key0) return false;
  const int64_t offset = p.lk - p.lq;
  // The last row sees the most keys to the left, the first row the most to the right.
  if (p.causal && row0 + rows - 1 + offset < key0) return false;
  if (p.window > 0 && row0 + offset - p.window + 1 >= key_end) return false;
  return true;
}

// Arguments common to both passes for query head h of batch b over key block `block`.
kernels::BackwardTileArgs tile_args(const BackwardProblem& problem, const BackwardGeometry& g,
                                    int64_t b, int64_t h, const PackedKeyHead& keys,
                                    const PackedQueryHead& queries, const float* key_bias,
                                    int64_t block, int64_t row0, const ThreadScratch& t) {
  const AttentionProblem& p = problem.forward;
  kernels::BackwardTileArgs a;
  a.q_tiles = queries.q_tiles + row0 * g.d;
  a.do_tiles = queries.do_tiles + row0 * g.dv;
  a.lse = queries.lse + row0;
  a.delta = queries.delta + row0;
  a.k_block = keys.k_blocks + block * g.d * kKeyBlock;
  a.v_block = keys.v_blocks + block * g.dv * kKeyBlock;
  a.key_bias = key_bias + block * kKeyBlock;
  a.key0 = block * g.block_keys;
  if (p.score_mask.data) {
    a.score_mask =
        static_cast<const float*>(p.score_mask.data) + p.score_mask_offset(b, h, row0, a.key0);
    a.score_mask_row_stride = p.score_mask.stride[2];
    a.score_mask_col_stride = p.score_mask.stride[3];
  }
  a.rows = std::min(kBackwardRows, p.lq - row0);
  a.first_row = row0;
  a.block_keys = g.block_keys;
  a.keys_present = keys_present(p, b);
  a.lk = p.lk;
  a.d = p.d;
  a.dv = p.dv;
  a.scale = p.scale;
  a.causal = p.causal;
  a.causal_offset = p.lk - p.lq;
  a.window = p.window;
  a.pattern_n = p.pattern.n;
  a.pattern_m = p.pattern.m;
  a.p = t.p.get();
  a.ds = t.ds.get();
  return a;
}

int64_t rows_padded(int64_t rows) {
  return (rows + kTileRows - 1) / kTileRows * kTileRows;
}

}  // namespace

void run_backward_fused(const BackwardProblem& problem, BackwardSchedule schedule) {
  const AttentionProblem& p = problem.forward;
  if (p.batch == 0 || p.kv_heads == 0) return;
  const kernels::BackwardKernels& kernels = kernels::backward_kernels(p.isa);
  const BackwardGeometry g = backward_geometry(p);
  const int64_t group = p.heads / p.kv_heads;  // query heads per key/value head
  const int64_t query_blocks = (p.lq + kBackwardRows - 1) / kBackwardRows;
  const int64_t total_kv = p.batch * p.kv_heads;
  const int64_t kv_bytes = (g.kv_floats + group * g.head_floats) * 4;
  const int64_t chunk_kv =
      std::clamp<int64_t>(kChunkBytes / std::max<int64_t>(kv_bytes, 1), 1, total_kv);

  AlignedBuffer packed_keys = allocate_aligned(chunk_kv * g.kv_floats * 4);
  AlignedBuffer packed_queries = allocate_aligned(chunk_kv * group * g.head_floats * 4);
  AlignedBuffer key_bias = allocate_aligned(p.batch * g.key_blocks * kKeyBlock * 4);
  auto keys_of = [&](int64_t slot) {
    return key_head_at(g, packed_keys.get() + slot * g.kv_floats);
  };
  auto queries_of = [&](int64_t slot) {
    return query_head_at(g, packed_queries.get() + slot * g.head_floats);
  };
  const int64_t dq_heads_bytes = group * g.lq_pad * g.d_pad * 4;
  const bool single_pass_fits =
      schedule == BackwardSchedule::single_pass ||
      (schedule == BackwardSchedule::automatic && p.threads * dq_heads_bytes <= kSinglePassBytes);
  // Per-thread scratch, allocated here so that a bad_alloc reaches the caller.
  std::vector<ThreadScratch> scratch(static_cast<size_t>(p.threads));
  for (ThreadScratch& t : scratch) {
    t.p = allocate_aligned(kBackwardRows * kBackwardStride * 4);
    t.ds = allocate_aligned(kBackwardRows * kBackwardStride * 4);
    t.dk = allocate_aligned(kBackwardStride * g.d_pad * 4);
    t.dv = allocate_aligned(kBackwardStride * g.dv_pad * 4);
    t.dq = allocate_aligned(kBackwardRows * g.d_pad * 4);
    if (single_pass_fits) t.dq_heads = allocate_aligned(dq_heads_bytes);
  }
  // One task per key/value head does 10 of the 14 L²d units of two passes; it pays while
  // the heads split evenly enough over the threads (ceil(chunk / threads) * 10 against
  // chunk * 14 / threads).
  auto single_pass = [&](int64_t chunk) {
    if (schedule != BackwardSchedule::automatic) return schedule == BackwardSchedule::single_pass;
    const int64_t rounds = (chunk + p.threads - 1) / p.threads;
    return single_pass_fits && 5 * rounds * p.threads <= 7 * chunk;
  };
  auto visible = [&](int64_t b, int64_t block, int64_t row0) {
    return tile_visible(p, g, keys_present(p, b), block * g.block_keys, row0,
                        std::min(kBackwardRows, p.lq - row0));
  };
  // The tile of query rows row0.. of head h against key block `block`; dV += Pᵀ dO and
  // dK += dSᵀ Q when key_grads, dq += dS K when dq is given (dK and dQ times the scale
  // when stored).
  auto tile_step = [&](const ThreadScratch& t, int64_t slot, int64_t b, int64_t h, int64_t block,
                       int64_t row0, bool key_grads, float* dq) {
    const int64_t kvh = h / group;
    const PackedKeyHead keys = keys_of(slot);
    const PackedQueryHead queries = queries_of(slot * group + h - kvh * group);
    const float* bias = key_bias.get() + b * g.key_blocks * kKeyBlock;
    // Slots index the packed chunk; tiles stay inside the padded rows and key blocks.
    DFSS_DEBUG_ASSERT(slot < chunk_kv && h - kvh * group < group);
    DFSS_DEBUG_ASSERT(block < g.key_blocks && row0 < p.lq && row0 % kBackwardRows == 0);
    const kernels::BackwardTileArgs a =
        tile_args(problem, g, b, h, keys, queries, bias, block, row0, t);
    DFSS_DEBUG_ASSERT(a.rows > 0 && a.rows <= kBackwardRows);
    kernels.tiles(a);
    kernels::BackwardGemmArgs gemm;
    if (key_grads) {
      gemm.a = t.p.get();
      gemm.a_row_stride = 1;  // rows of C are keys: columns of P
      gemm.a_k_stride = kBackwardStride;
      gemm.b = queries.do_rows + row0 * g.dv_pad;
      gemm.ldb = g.dv_pad;
      gemm.c = t.dv.get();
      gemm.ldc = g.dv_pad;
      gemm.rows = kBackwardStride;
      gemm.cols = g.dv_pad;
      gemm.depth = rows_padded(a.rows);
      kernels.gemm(gemm);  // dV += Pᵀ dO
      gemm.a = t.ds.get();
      gemm.b = queries.q_rows + row0 * g.d_pad;
      gemm.ldb = g.d_pad;
      gemm.c = t.dk.get();
      gemm.ldc = g.d_pad;
      gemm.cols = g.d_pad;
      kernels.gemm(gemm);  // dK += dSᵀ Q
    }
    if (dq) {
      gemm.a = t.ds.get();
      gemm.a_row_stride = kBackwardStride;
      gemm.a_k_stride = 1;
      gemm.b = keys.k_rows + block * kKeyBlock * g.d_pad;
      gemm.ldb = g.d_pad;
      gemm.c = dq;
      gemm.ldc = g.d_pad;
      gemm.rows = rows_padded(a.rows);
      gemm.cols = g.d_pad;
      gemm.depth = g.block_keys;
      kernels.gemm(gemm);  // dQ += dS K
    }
  };

#pragma omp parallel num_threads(p.threads)
  {
    DFSS_DEBUG_ASSERT(omp_get_thread_num() < static_cast<int>(scratch.size()));
    const ThreadScratch& mine = scratch[static_cast<size_t>(omp_get_thread_num())];
#pragma omp for schedule(static)
    for (int64_t b = 0; b < p.batch; ++b)
      build_backward_key_bias(p, g, b, key_bias.get() + b * g.key_blocks * kKeyBlock);

    for (int64_t chunk0 = 0; chunk0 < total_kv; chunk0 += chunk_kv) {
      const int64_t chunk = std::min(chunk_kv, total_kv - chunk0);
      // Packing: one job per key/value head, one per query head.
#pragma omp for schedule(dynamic, 1)
      for (int64_t job = 0; job < chunk * (1 + group); ++job) {
        const int64_t slot = job / (1 + group), part = job % (1 + group);
        const int64_t b = (chunk0 + slot) / p.kv_heads, kvh = (chunk0 + slot) % p.kv_heads;
        if (part == 0) {
          pack_key_head(problem, g, b, kvh, keys_of(slot));
        } else {
          pack_query_head(problem, g, b, kvh * group + part - 1,
                          queries_of(slot * group + part - 1));
        }
      }

      if (single_pass(chunk)) {
        // One task per key/value head: every tile once.
#pragma omp for schedule(dynamic, 1)
        for (int64_t slot = 0; slot < chunk; ++slot) {
          const int64_t b = (chunk0 + slot) / p.kv_heads, kvh = (chunk0 + slot) % p.kv_heads;
          float* dq_heads = mine.dq_heads.get();
          DFSS_DEBUG_ASSERT(dq_heads != nullptr);  // allocated when single_pass_fits
          std::fill(dq_heads, dq_heads + group * g.lq_pad * g.d_pad, 0.0f);
          for (int64_t block = 0; block < g.key_blocks; ++block) {
            std::fill(mine.dk.get(), mine.dk.get() + kBackwardStride * g.d_pad, 0.0f);
            std::fill(mine.dv.get(), mine.dv.get() + kBackwardStride * g.dv_pad, 0.0f);
            for (int64_t hs = 0; hs < group; ++hs) {
              for (int64_t row0 = 0; row0 < p.lq; row0 += kBackwardRows) {
                if (!visible(b, block, row0)) continue;
                tile_step(mine, slot, b, kvh * group + hs, block, row0, true,
                          dq_heads + (hs * g.lq_pad + row0) * g.d_pad);
              }
            }
            store_key_gradients(problem, g, b, kvh, block * g.block_keys, mine.dk.get(),
                                mine.dv.get());
          }
          for (int64_t hs = 0; hs < group; ++hs)
            for (int64_t row0 = 0; row0 < p.lq; row0 += kBackwardRows)
              store_query_gradients(problem, g, b, kvh * group + hs, row0,
                                    std::min(kBackwardRows, p.lq - row0),
                                    dq_heads + (hs * g.lq_pad + row0) * g.d_pad);
        }
        continue;
      }

      // Pass 1: dK and dV of one key block.
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < chunk * g.key_blocks; ++task) {
        const int64_t slot = task / g.key_blocks, block = task % g.key_blocks;
        const int64_t b = (chunk0 + slot) / p.kv_heads, kvh = (chunk0 + slot) % p.kv_heads;
        std::fill(mine.dk.get(), mine.dk.get() + kBackwardStride * g.d_pad, 0.0f);
        std::fill(mine.dv.get(), mine.dv.get() + kBackwardStride * g.dv_pad, 0.0f);
        for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
          for (int64_t row0 = 0; row0 < p.lq; row0 += kBackwardRows) {
            if (visible(b, block, row0)) tile_step(mine, slot, b, h, block, row0, true, nullptr);
          }
        }
        store_key_gradients(problem, g, b, kvh, block * g.block_keys, mine.dk.get(), mine.dv.get());
      }

      // Pass 2: dQ of one block of query rows.
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < chunk * group * query_blocks; ++task) {
        const int64_t head_slot = task / query_blocks;
        const int64_t slot = head_slot / group;
        const int64_t b = (chunk0 + slot) / p.kv_heads, kvh = (chunk0 + slot) % p.kv_heads;
        const int64_t h = kvh * group + head_slot % group;
        const int64_t row0 = task % query_blocks * kBackwardRows;
        std::fill(mine.dq.get(), mine.dq.get() + kBackwardRows * g.d_pad, 0.0f);
        for (int64_t block = 0; block < g.key_blocks; ++block) {
          if (visible(b, block, row0))
            tile_step(mine, slot, b, h, block, row0, false, mine.dq.get());
        }
        store_query_gradients(problem, g, b, h, row0, std::min(kBackwardRows, p.lq - row0),
                              mine.dq.get());
      }
    }
  }
}

}  // namespace dfss::detail
