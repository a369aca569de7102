// Unfused attention, the shape of the usual baseline (bmm -> softmax -> bmm): per (batch,
// head) the whole Lq x Lk score matrix is materialized, then normalized, then multiplied
// by V. Heads run one after another; each phase is split over the threads by row tiles.
#include <omp.h>

#include <algorithm>

#include "attention/packing.h"
#include "attention/problem.h"
#include "kernels/attention/flash_kernels.h"

namespace dfss::detail {

using kernels::kTileRows;

void run_unfused(const AttentionProblem& p) {
  if (p.batch == 0 || p.heads == 0 || p.lq == 0) return;
  if (p.lk == 0) return store_zeros(p);
  const kernels::AttentionKernels& kernels = kernels::attention_kernels(p.isa, p.dtype);
  const PackedGeometry g = packed_geometry(p, kernels.format);
  const int64_t tiles = (p.lq + kTileRows - 1) / kTileRows;
  const int64_t rows_pad = tiles * kTileRows;

  AlignedBuffer keys = allocate_aligned(g.k_elems * g.elem_bytes);
  AlignedBuffer values = allocate_aligned(g.v_elems * g.elem_bytes);
  AlignedBuffer queries = allocate_aligned(tiles * g.q_tile_elems * g.elem_bytes);
  AlignedBuffer key_bias = allocate_aligned(g.lk_pad * 4);
  AlignedBuffer scores = allocate_aligned(rows_pad * g.lk_pad * 4);
  AlignedBuffer o = allocate_aligned(rows_pad * g.dv_pad * 4);

  kernels::UnfusedArgs args;
  args.q_packed = queries.get();
  args.rows = p.lq;
  args.first_row = 0;
  args.k_packed = keys.get();
  args.v_packed = values.get();
  args.key_bias_log2 = key_bias.get();
  args.lk_pad = g.lk_pad;
  args.d = p.d;
  args.dv_pad = g.dv_pad;
  args.scale = p.scale;
  args.causal = p.causal;
  args.causal_offset = p.lk - p.lq;
  args.scores = scores.get();
  args.o = o.get();

#pragma omp parallel num_threads(p.threads)
  {
    AlignedBuffer scratch = allocate_aligned(kernels::kFlashScratchFloats * 4);
    kernels::UnfusedArgs local = args;
    local.scratch = scratch.get();
    for (int64_t b = 0; b < p.batch; ++b) {
      for (int64_t h = 0; h < p.heads; ++h) {
#pragma omp single
        {
          build_key_bias_log2(p, g, b, key_bias.get());
          pack_keys(p, g, b, h, keys.get());
          pack_values(p, g, b, h, values.get());
          pack_queries(p, g, b, h, 0, p.lq, queries.get());
        }
        local.lk = keys_present(p, b);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; ++t) kernels.unfused_scores(local, t, t + 1);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; ++t) kernels.unfused_softmax(local, t, t + 1);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; ++t) {
          kernels.unfused_values(local, t, t + 1);
          const int64_t row0 = t * kTileRows;
          store_rows(p, b, h, row0, std::min<int64_t>(kTileRows, p.lq - row0),
                     o.get() + row0 * g.dv_pad, g.dv_pad, nullptr);
        }
      }
    }
  }
}

}  // namespace dfss::detail
