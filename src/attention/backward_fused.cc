// Fused attention backward (flash-attention-2 style): no Lq x Lk buffer. The score tiles
// are recomputed from Q, K and the forward's log-sum-exp, twice: pass 1 owns a key block
// of one key/value head and sums dK and dV over every query row of the heads that read it;
// pass 2 owns a block of query rows and sums dQ over the key blocks. Each gradient element
// is summed by one task in a fixed order, so results do not depend on the thread count,
// and no atomics are needed.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "attention/backward_packing.h"
#include "attention/backward_problem.h"
#include "attention/packing.h"
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

struct ThreadScratch {
  AlignedBuffer p, ds, dk, dv, dq;
};

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
  a.keys_present = backward_keys_present(p, b);
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

void run_backward_fused(const BackwardProblem& problem) {
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
  // Per-thread scratch, allocated here so that a bad_alloc reaches the caller.
  std::vector<ThreadScratch> scratch(static_cast<size_t>(p.threads));
  for (ThreadScratch& t : scratch) {
    t.p = allocate_aligned(kBackwardRows * kBackwardStride * 4);
    t.ds = allocate_aligned(kBackwardRows * kBackwardStride * 4);
    t.dk = allocate_aligned(kBackwardStride * g.d_pad * 4);
    t.dv = allocate_aligned(kBackwardStride * g.dv_pad * 4);
    t.dq = allocate_aligned(kBackwardRows * g.d_pad * 4);
  }

#pragma omp parallel num_threads(p.threads)
  {
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

      // Pass 1: dK and dV of one key block.
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < chunk * g.key_blocks; ++task) {
        const int64_t slot = task / g.key_blocks, block = task % g.key_blocks;
        const int64_t b = (chunk0 + slot) / p.kv_heads, kvh = (chunk0 + slot) % p.kv_heads;
        const int64_t key0 = block * g.block_keys;
        std::fill(mine.dk.get(), mine.dk.get() + kBackwardStride * g.d_pad, 0.0f);
        std::fill(mine.dv.get(), mine.dv.get() + kBackwardStride * g.dv_pad, 0.0f);
        // The query rows that see any key of the block (causal and window limits).
        const int64_t key_end = std::min(key0 + g.block_keys, backward_keys_present(p, b));
        int64_t row_begin = 0, row_end = key_end > key0 ? p.lq : 0;
        if (p.causal) row_begin = std::max<int64_t>(0, key0 - (p.lk - p.lq));
        if (p.window > 0) row_end = std::min(row_end, key_end - 1 - (p.lk - p.lq) + p.window);
        const float* bias = key_bias.get() + b * g.key_blocks * kKeyBlock;
        for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
          const PackedQueryHead queries = queries_of(slot * group + h - kvh * group);
          for (int64_t row0 = std::max<int64_t>(row_begin, 0) / kBackwardRows * kBackwardRows;
               row0 < row_end; row0 += kBackwardRows) {
            const kernels::BackwardTileArgs a =
                tile_args(problem, g, b, h, keys_of(slot), queries, bias, block, row0, mine);
            kernels.tiles(a);
            kernels::BackwardGemmArgs gemm;
            gemm.a = mine.p.get();
            gemm.a_row_stride = 1;  // rows of C are keys: columns of P
            gemm.a_k_stride = kBackwardStride;
            gemm.b = queries.do_rows + row0 * g.dv_pad;
            gemm.ldb = g.dv_pad;
            gemm.c = mine.dv.get();
            gemm.ldc = g.dv_pad;
            gemm.rows = kBackwardStride;
            gemm.cols = g.dv_pad;
            gemm.depth = rows_padded(a.rows);
            kernels.gemm(gemm);  // dV += Pᵀ dO
            gemm.a = mine.ds.get();
            gemm.b = queries.q_rows + row0 * g.d_pad;
            gemm.ldb = g.d_pad;
            gemm.c = mine.dk.get();
            gemm.ldc = g.d_pad;
            gemm.cols = g.d_pad;
            kernels.gemm(gemm);  // dK += dSᵀ Q (times scale when stored)
          }
        }
        store_key_gradients(problem, g, b, kvh, key0, mine.dk.get(), mine.dv.get());
      }

      // Pass 2: dQ of one block of query rows.
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < chunk * group * query_blocks; ++task) {
        const int64_t head_slot = task / query_blocks;
        const int64_t slot = head_slot / group;
        const int64_t b = (chunk0 + slot) / p.kv_heads, kvh = (chunk0 + slot) % p.kv_heads;
        const int64_t h = kvh * group + head_slot % group;
        const int64_t row0 = task % query_blocks * kBackwardRows;
        const int64_t rows = std::min(kBackwardRows, p.lq - row0);
        std::fill(mine.dq.get(), mine.dq.get() + kBackwardRows * g.d_pad, 0.0f);
        // The keys any row of the block sees.
        int64_t key_begin = 0, key_end = backward_keys_present(p, b);
        if (p.causal) key_end = std::min(key_end, row0 + rows + (p.lk - p.lq));
        if (p.window > 0) key_begin = std::max<int64_t>(0, row0 + (p.lk - p.lq) - p.window + 1);
        const float* bias = key_bias.get() + b * g.key_blocks * kKeyBlock;
        const PackedKeyHead keys = keys_of(slot);
        for (int64_t block = key_begin / g.block_keys; block * g.block_keys < key_end; ++block) {
          const kernels::BackwardTileArgs a =
              tile_args(problem, g, b, h, keys, queries_of(head_slot), bias, block, row0, mine);
          kernels.tiles(a);
          kernels::BackwardGemmArgs gemm;
          gemm.a = mine.ds.get();
          gemm.a_row_stride = kBackwardStride;
          gemm.a_k_stride = 1;
          gemm.b = keys.k_rows + block * kKeyBlock * g.d_pad;
          gemm.ldb = g.d_pad;
          gemm.c = mine.dq.get();
          gemm.ldc = g.d_pad;
          gemm.rows = rows_padded(rows);
          gemm.cols = g.d_pad;
          gemm.depth = g.block_keys;
          kernels.gemm(gemm);  // dQ += dS K (times scale when stored)
        }
        store_query_gradients(problem, g, b, h, row0, rows, mine.dq.get());
      }
    }
  }
}

}  // namespace dfss::detail
