// Unfused attention, the shape of the usual baseline (bmm -> softmax -> bmm): per (batch,
// head) the whole score matrix is materialized, then normalized, then multiplied by V.
// With an N:M pattern the score GEMM prunes in its epilogue and the matrix is stored
// compressed (kept values and their columns), as the DFSS reference does.
// Heads run one after another; each phase is split over the threads by row tiles. K and V
// are packed once per (batch, key/value head), for all the query heads of its group.
#include "attention/unfused.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "attention/packing.h"
#include "attention/problem.h"

namespace dfss::detail {

using kernels::kTileRows;

int64_t compressed_row_stride(const SparsityPattern& pattern, int64_t lk_pad) {
  const int64_t span = kernels::sparse_span_keys(pattern.n, pattern.m);
  return (lk_pad + span - 1) / span * (span / pattern.m * pattern.n);
}

void run_unfused_heads(const AttentionProblem& p, const HeadVisitor& visit_head) {
  const bool sparse = !p.pattern.dense();
  const kernels::AttentionKernels& kernels = kernels::attention_kernels(p.isa, p.dtype, sparse);
  const PackedGeometry g = packed_geometry(p, kernels.format);
  const int64_t tiles = (p.lq + kTileRows - 1) / kTileRows;
  const int64_t rows_pad = tiles * kTileRows;
  const int64_t kept_stride = sparse ? compressed_row_stride(p.pattern, g.lk_pad) : 0;

  AlignedBuffer keys = allocate_aligned(g.k_elems * g.elem_bytes);
  AlignedBuffer values = allocate_aligned(g.v_elems * g.elem_bytes);
  AlignedBuffer queries = allocate_aligned(tiles * g.q_tile_elems * g.elem_bytes);
  AlignedBuffer key_bias = allocate_aligned(g.lk_pad * 4);
  const bool score_mask = p.score_mask.data != nullptr;
  // With a score mask, the bias of every row of a head (what the score matrix costs).
  AlignedBuffer row_bias = allocate_aligned(score_mask ? rows_pad * g.lk_pad * 4 : 64);
  const bool lse = p.log_sum_exp != nullptr;
  AlignedBuffer row_max = allocate_aligned(lse ? rows_pad * 4 : 64);
  AlignedBuffer row_sum = allocate_aligned(lse ? rows_pad * 4 : 64);
  AlignedBuffer scores = allocate_aligned(sparse ? 64 : rows_pad * g.lk_pad * 4);
  AlignedBuffer kept_values = allocate_aligned(rows_pad * kept_stride * 4);
  AlignedBuffer kept_columns = allocate_aligned(rows_pad * kept_stride * 4);
  AlignedBuffer o = allocate_aligned(rows_pad * g.dv_pad * 4);

  kernels::UnfusedArgs args;
  args.q_packed = queries.get();
  args.rows = p.lq;
  args.first_row = 0;
  args.k_packed = keys.get();
  args.v_packed = values.get();
  args.key_bias = key_bias.get();
  args.lk_pad = g.lk_pad;
  args.d = p.d;
  args.dv_pad = g.dv_pad;
  args.scale = p.scale;
  args.causal = p.causal;
  args.causal_offset = p.lk - p.lq;
  args.window = p.window;
  if (lse) {
    args.row_max = row_max.get();
    args.row_sum = row_sum.get();
  }
  args.pattern_n = p.pattern.n;
  args.pattern_m = p.pattern.m;
  args.scores = scores.get();
  args.kept_values = kept_values.get();
  args.kept_columns = reinterpret_cast<int32_t*>(kept_columns.get());
  args.kept_stride = kept_stride;
  args.o = o.get();
  const auto score_phase = sparse ? kernels.sparse_unfused_scores : kernels.unfused_scores;
  const auto softmax_phase = sparse ? kernels.sparse_unfused_softmax : kernels.unfused_softmax;
  const auto value_phase = sparse ? kernels.sparse_unfused_values : kernels.unfused_values;

  // Allocated before the parallel region: a bad_alloc must reach the caller.
  std::vector<AlignedBuffer> thread_scratch(static_cast<size_t>(p.threads));
  for (AlignedBuffer& scratch : thread_scratch)
    scratch = allocate_aligned(kernels::kFlashScratchFloats * 4);

#pragma omp parallel num_threads(p.threads)
  {
    kernels::UnfusedArgs local = args;
    local.scratch = thread_scratch[static_cast<size_t>(omp_get_thread_num())].get();
    for (int64_t b = 0; b < p.batch; ++b) {
      for (int64_t h = 0; h < p.heads; ++h) {
        const bool new_kv = h == 0 || p.kv_head(h) != p.kv_head(h - 1);
#pragma omp single
        {
          if (h == 0) build_key_bias(p, g, b, key_bias.get());
          if (new_kv) {
            pack_keys(p, g, b, p.kv_head(h), keys.get());
            pack_values(p, g, b, p.kv_head(h), values.get());
          }
          pack_queries(p, g, b, h, 0, p.lq, queries.get());
          // A row-broadcast score mask gives one row: built here, as the key bias is.
          if (score_mask && p.score_mask.stride[2] == 0)
            build_score_bias(p, g, b, h, 0, 1, 1, row_bias.get());
        }
        local.lk = keys_present(p, b);
        if (score_mask && p.score_mask.stride[2] != 0) {
#pragma omp for schedule(static)
          for (int64_t t = 0; t < tiles; ++t) {
            const int64_t row0 = t * kTileRows;
            build_score_bias(p, g, b, h, row0, std::min<int64_t>(kTileRows, p.lq - row0), kTileRows,
                             row_bias.get() + row0 * g.lk_pad);
          }
        }
        if (score_mask) {
          local.key_bias = row_bias.get();
          local.bias_row_stride = p.score_mask.stride[2] == 0 ? 0 : g.lk_pad;
        }
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; ++t) score_phase(local, t, t + 1);
        if (visit_head.compressed) {
#pragma omp single
          visit_head.compressed(b, h, local);
          continue;
        }
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; ++t) {
          softmax_phase(local, t, t + 1);
          const int64_t row0 = t * kTileRows;
          if (lse)
            store_log_sum_exp(p, b, h, row0, std::min<int64_t>(kTileRows, p.lq - row0),
                              row_max.get() + row0, row_sum.get() + row0);
        }
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; ++t) {
          value_phase(local, t, t + 1);
          const int64_t row0 = t * kTileRows;
          store_rows(p, b, h, row0, std::min<int64_t>(kTileRows, p.lq - row0),
                     o.get() + row0 * g.dv_pad, g.dv_pad, nullptr);
        }
      }
    }
  }
}

void run_unfused(const AttentionProblem& p) {
  if (p.batch == 0 || p.heads == 0 || p.lq == 0) return;
  if (p.lk == 0) return store_zeros(p);
  run_unfused_heads(p, HeadVisitor{});
}

}  // namespace dfss::detail
