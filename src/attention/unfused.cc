// Unfused attention, the shape of the usual baseline (bmm -> softmax -> bmm): per (batch,
// head) the whole score matrix is materialized, then normalized, then multiplied by V.
// With an N:M pattern the score GEMM prunes in its epilogue and the matrix is stored
// compressed (kept values and their columns), as the DFSS reference does.
// Heads run one after another; each phase is split over the threads by row tiles. K and V
// are packed once per (batch, key/value head), for all the query heads of its group.
#include "attention/unfused.h"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "attention/packing.h"
#include "attention/problem.h"
#include "core/debug_assert.h"
#include "dfss/errors.h"

namespace dfss::detail {

using kernels::kTileRows;

int64_t compressed_row_stride(const SparsityPattern& pattern, int64_t lk_pad) {
  const int64_t span = kernels::sparse_span_keys(pattern.n, pattern.m);
  return (lk_pad + span - 1) / span * (span / pattern.m * pattern.n);
}

namespace {

// a * b, or INT64_MAX when it does not fit (both non-negative).
int64_t saturating_product(int64_t a, int64_t b) {
  int64_t product = 0;
  return __builtin_mul_overflow(a, b, &product) ? INT64_MAX : product;
}

std::string gigabytes(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GB", static_cast<double>(bytes) * 1e-9);
  return text;
}

void check_score_buffer_size(const AttentionProblem& p, int64_t rows_pad, int64_t lk_pad,
                             int64_t kept_stride, bool exporting) {
  const bool sparse = !p.pattern.dense();
  const bool row_bias = p.score_mask.data != nullptr && p.score_mask.stride[2] != 0;
  const int64_t matrix = saturating_product(saturating_product(rows_pad, lk_pad), 4);
  const int64_t kept = saturating_product(saturating_product(rows_pad, kept_stride), 8);
  int64_t bytes = sparse ? kept : matrix;
  if (row_bias && __builtin_add_overflow(bytes, matrix, &bytes)) bytes = INT64_MAX;
  if (bytes <= kMaxUnfusedScoreBytes) return;
  const std::string what = "Lq x Lk = " + std::to_string(p.lq) + " x " + std::to_string(p.lk) +
                           (sparse ? " N:M-compressed" : "") + " scores" +
                           (row_bias ? " and score-mask rows" : "") + " of one head (" +
                           gigabytes(bytes) + "), more than the limit of " +
                           gigabytes(kMaxUnfusedScoreBytes) + " (kMaxUnfusedScoreBytes)";
  if (exporting) {
    throw InvalidArgument("compressed scores: the export materializes the " + what +
                          "; expected fewer query rows or keys per call");
  }
  throw InvalidArgument("options.impl: unfused materializes the " + what +
                        "; expected impl = fused for this size (same results, O(tile) memory)");
}

// The padded sizes run_unfused_heads allocates by.
struct ScoreGeometry {
  const kernels::AttentionKernels* kernels;
  PackedGeometry packed;
  int64_t tiles, rows_pad, kept_stride;
};

ScoreGeometry score_geometry(const AttentionProblem& p) {
  const bool sparse = !p.pattern.dense();
  ScoreGeometry s;
  s.kernels = &kernels::attention_kernels(p.isa, p.dtype, sparse);
  s.packed = packed_geometry(p, s.kernels->format);
  s.tiles = (p.lq + kTileRows - 1) / kTileRows;
  s.rows_pad = s.tiles * kTileRows;
  s.kept_stride = sparse ? compressed_row_stride(p.pattern, s.packed.lk_pad) : 0;
  return s;
}

}  // namespace

void check_unfused_memory(const AttentionProblem& p, bool exporting) {
  const ScoreGeometry s = score_geometry(p);
  check_score_buffer_size(p, s.rows_pad, s.packed.lk_pad, s.kept_stride, exporting);
}

void run_unfused_heads(const AttentionProblem& p, const HeadVisitor& visit_head) {
  const bool sparse = !p.pattern.dense();
  const ScoreGeometry geometry = score_geometry(p);
  const kernels::AttentionKernels& kernels = *geometry.kernels;
  const PackedGeometry& g = geometry.packed;
  const int64_t tiles = geometry.tiles, rows_pad = geometry.rows_pad;
  const int64_t kept_stride = geometry.kept_stride;
  check_score_buffer_size(p, rows_pad, g.lk_pad, kept_stride, bool(visit_head.compressed));

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
    DFSS_DEBUG_ASSERT(omp_get_thread_num() < static_cast<int>(thread_scratch.size()));
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
        DFSS_DEBUG_ASSERT(local.lk >= 0 && local.lk <= p.lk && p.lk <= g.lk_pad);
        // The compressed rows hold every kept entry of the padded keys.
        DFSS_DEBUG_ASSERT(!sparse || kept_stride * p.pattern.m >= g.lk_pad * p.pattern.n);
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
