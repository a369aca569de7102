// The N:M sparse attention kernel body (DFSS), written once and compiled per ISA after
// attention-inl.h. Q·Kᵀ stays dense (the survivors are chosen from all scores); the
// pruning runs in its epilogue, exp only on the kept entries, and P·V gathers only the
// kept rows of V. Needs, besides the vector operations, a `select_row_fast` that may
// handle some patterns in registers (returning false leaves the row to the generic code).

namespace dfss::kernels::DFSS_KERNEL_NS {

// x = fma(s, scale, bias) for one row of a span of keys, in place: keys outside
// [begin, end) (causal, window, or absent: their q·k may be NaN) and past `existing` (no
// packed data) become -inf, before the selection.
inline void span_scores_row(float* row, const float* bias, float scale, int64_t span_keys,
                            int64_t existing, int64_t begin, int64_t end) {
  const Reg scale_v = vset1(scale);
  for (int64_t c = 0; c < existing; c += kLanes)
    vstore(row + c, vfmadd(vload(row + c), scale_v, vload(bias + c)));
  std::fill(row, row + begin, kNegInf);
  std::fill(row + std::min(end, existing), row + span_keys, kNegInf);
}

// The kept entries of one row of a span, in increasing column order: their scores and an
// index per entry, min(column, index.limit) * index.scale (the column itself, or the
// element offset of its row of V, where padding columns past the keys read V's zero row).
inline void select_row_generic(const float* row, int64_t span_keys, int n, int m, int64_t key0,
                               KeptIndex index, float* kept_values, int32_t* kept_columns) {
  int kept[8];
  int64_t out = 0;
  for (int64_t g = 0; g < span_keys; g += m) {
    sparse::select_group(row + g, m, n, m, kept);
    for (int t = 0; t < n; ++t) {
      kept_values[out] = row[g + kept[t]];
      kept_columns[out] =
          static_cast<int32_t>(std::min<int64_t>(key0 + g + kept[t], index.limit) * index.scale);
      ++out;
    }
  }
}

inline void select_row(const float* row, int64_t span_keys, int n, int m, int64_t key0,
                       KeptIndex index, float* kept_values, int32_t* kept_columns) {
  if (!select_row_fast(row, span_keys, n, m, key0, index, kept_values, kept_columns))
    select_row_generic(row, span_keys, n, m, key0, index, kept_values, kept_columns);
}

// Online softmax over the kept entries of R rows (scores in, p = e^(x - m) out in place).
inline void online_softmax_kept(float* kept_values, int64_t kept, float* m, float* l_lanes,
                                float* alpha) {
  for (int r = 0; r < R; ++r) {
    float* row = kept_values + r * kept;
    Reg row_max = vset1(kNegInf);
    for (int64_t c = 0; c < kept; c += kLanes) row_max = vmax(row_max, vload(row + c));
    const Reg shift = update_running_max(row_max, m[r], alpha[r]);
    Reg sum = vzero();
    for (int64_t c = 0; c < kept; c += kLanes) {
      const Reg p = exp_shifted(vload(row + c), shift);
      vstore(row + c, p);
      sum = vadd(sum, p);
    }
    update_running_sum(l_lanes + r * kLanes, alpha[r], sum);
  }
}

// Kept columns -> element offsets of their rows in packed V, in place; columns past the
// packed keys (padding of a partial group) point at V's zero row at lk_pad.
inline void columns_to_offsets(int32_t* columns, int64_t count, int64_t lk_pad, int64_t dv_pad) {
  for (int64_t i = 0; i < count; ++i)
    columns[i] = static_cast<int32_t>(std::min<int64_t>(columns[i], lk_pad) * dv_pad);
}

// o[G rows][C vectors] = o * alpha + Σ_j p[r][j] V[offset[r][j]]: one gathered row of V per
// kept entry. A loaded row of V serves one output row only (the dense P·V tile shares it
// across 6), so the loop is bound by loads; on AVX2 the 6 × 2-vector tile spent two more
// loads (the weight's broadcast and the offset) per 2 fmas, and ran at half the fma rate.
// Each row's fma chain is the same whatever G and C, and so are its bits.
template <int G, int C>
inline void pv_gather_rows(const float* p, const int32_t* offsets, int64_t stride, int64_t kept,
                           const float* v_cols, int64_t dv_pad, float* o, const float* alpha) {
  Reg acc[G][C];
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g) {
    const Reg scale = vset1(alpha ? alpha[g] : 1.0f);
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[g][c] = vmul(vload(o + g * dv_pad + c * kLanes), scale);
  }
  for (int64_t j = 0; j < kept; ++j) {
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
      const Reg weight = vbroadcast(p + g * stride + j);
      const float* value = v_cols + offsets[g * stride + j];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[g][c] = vfmadd(weight, vload(value + c * kLanes), acc[g][c]);
    }
  }
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) vstore(o + g * dv_pad + c * kLanes, acc[g][c]);
}

// Value columns per strip and rows per tile. With 16 registers (8-lane ISAs) the strip is
// up to 8 vectors wide and holds only as many rows as 8 to 12 fma chains need; AVX-512
// keeps its 6-row × 4-vector tile, which its 32 registers hold.
inline constexpr int kGatherVecs = kLanes == 16 ? kTileVecs : kRowVecs;
template <int C>
inline constexpr int kGatherRows = kLanes == 16 ? R
                                   : C >= 6     ? 1
                                   : C >= 4     ? 2
                                   : C == 3     ? 3
                                                : R;

// All R rows over one strip of C vectors of value columns. Not inlined: inside the fused
// kernel's loop nest GCC kept the gather loop's pointers on the stack, and their
// store-to-load chain, not the fmas, set the loop's pace.
template <int C>
[[gnu::noinline]] void pv_gather_strip(const float* p, const int32_t* offsets, int64_t stride,
                                       int64_t kept, const float* v_cols, int64_t dv_pad, float* o,
                                       const float* alpha) {
  constexpr int G = kGatherRows<C>;
  for (int r = 0; r < R; r += G)
    pv_gather_rows<G, C>(p + r * stride, offsets + r * stride, stride, kept, v_cols, dv_pad,
                         o + r * dv_pad, alpha ? alpha + r : nullptr);
}

// The strip of `vecs` (1 .. kGatherVecs) vectors, its width found at run time.
template <int C = 1>
inline void pv_gather_strip_of(int64_t vecs, const float* p, const int32_t* offsets, int64_t stride,
                               int64_t kept, const float* v_cols, int64_t dv_pad, float* o,
                               const float* alpha) {
  if constexpr (C <= kGatherVecs) {
    if (vecs == C) return pv_gather_strip<C>(p, offsets, stride, kept, v_cols, dv_pad, o, alpha);
    pv_gather_strip_of<C + 1>(vecs, p, offsets, stride, kept, v_cols, dv_pad, o, alpha);
  }
}

inline void pv_gather(const float* p, const int32_t* offsets, int64_t stride, int64_t kept,
                      const float* v, int64_t dv_pad, float* o, const float* alpha) {
  for (int64_t col = 0; col < dv_pad; col += kGatherVecs * kLanes) {
    const int64_t vecs = std::min<int64_t>(kGatherVecs, (dv_pad - col) / kLanes);
    pv_gather_strip_of(vecs, p, offsets, stride, kept, v + col, dv_pad, o + col, alpha);
  }
}

// Scores of the 6-row tile starting at local row `tile_row` over the span starting at
// key0, pruned: kept values and columns [R][kept_span]. keys limits the keys of each row
// (causal, window, present).
inline void score_and_select_span(const FlashBlockArgs& a, const float* q_tile, int64_t tile_row,
                                  int64_t key0, int64_t span, const TileKeys& keys, KeptIndex index,
                                  float* s, float* kept_values, int32_t* kept_columns) {
  const auto* k = static_cast<const float*>(a.k_packed);
  const int64_t existing = std::min(span, a.lk_pad - key0);
  // Register tiles of columns; spans start on a multiple of 64 keys, so none straddles a block.
  constexpr int64_t kTileCols = kTileVecs * kLanes;
  static_assert(kSparseSpanUnit % kTileCols == 0);
  for (int64_t col = 0; col < existing; col += kTileCols) {
    const int64_t key = key0 + col;
    qk_tile_f32<kTileVecs>(q_tile, k + key / KB * F32Tile::k_block_elems(a.d) + key % KB, a.d,
                           s + col, span);
  }
  const int64_t kept_span = span / a.pattern_m * a.pattern_n;
  for (int r = 0; r < R; ++r) {
    float* row = s + r * span;
    span_scores_row(row, a.key_bias + (tile_row + r) * a.bias_row_stride + key0, a.scale, span,
                    existing, keys.begin[r], keys.end[r]);
    select_row(row, span, a.pattern_n, a.pattern_m, key0, index, kept_values + r * kept_span,
               kept_columns + r * kept_span);
  }
}

inline void sparse_fused_block(const FlashBlockArgs& a) {
  const int64_t tiles = (a.rows + R - 1) / R;
  const int64_t last_row = a.first_row + a.rows - 1;
  int64_t key_begin = 0;
  const int64_t key_end = start_query_block(a, tiles, &key_begin);
  const int64_t span = sparse_span_keys(a.pattern_n, a.pattern_m);
  const int64_t kept_span = span / a.pattern_m * a.pattern_n;
  const auto* q = static_cast<const float*>(a.q_packed);
  const auto* v = static_cast<const float*>(a.v_packed);
  float* s = a.scratch;
  float* kept_values = s + R * span;
  auto* kept_columns = reinterpret_cast<int32_t*>(kept_values + R * kept_span);
  float alpha[R];
  TileKeys keys;
  // Spans wholly before the window of every row are skipped (their groups would keep only
  // -inf entries, which weigh nothing).
  for (int64_t key0 = key_begin / span * span; key0 < key_end; key0 += span) {
    for (int64_t t = 0; t < tiles; ++t) {
      if (!tile_visible_keys(a, a.first_row + t * R, last_row, key0, span, keys)) continue;
      score_and_select_span(a, q + t * F32Tile::q_tile_elems(a.d), t * R, key0, span, keys,
                            KeptIndex::offsets_in_v(a.lk_pad, a.dv_pad), s, kept_values,
                            kept_columns);
      online_softmax_kept(kept_values, kept_span, a.row_max + t * R,
                          a.row_sum_lanes + t * R * kLanes, alpha);
      pv_gather(kept_values, kept_columns, kept_span, kept_span, v, a.dv_pad,
                a.o + t * R * a.dv_pad, alpha);
    }
  }
  finish_query_block(a, tiles);
}

// Unfused phase 1: the score GEMM with the N:M pruning in its epilogue; writes the
// compressed rows (natural units) to kept_values / kept_columns.
inline void sparse_unfused_scores(const UnfusedArgs& u, int64_t tile_begin, int64_t tile_end) {
  FlashBlockArgs a;
  a.k_packed = u.k_packed;
  a.key_bias = u.key_bias;
  a.bias_row_stride = u.bias_row_stride;
  a.lk = u.lk;
  a.lk_pad = u.lk_pad;
  a.d = u.d;
  a.scale = u.scale;
  a.pattern_n = u.pattern_n;
  a.pattern_m = u.pattern_m;
  const int64_t span = sparse_span_keys(u.pattern_n, u.pattern_m);
  const int64_t kept_span = span / u.pattern_m * u.pattern_n;
  const auto* q = static_cast<const float*>(u.q_packed);
  float* s = u.scratch;
  float* kept_values = s + R * span;
  auto* kept_columns = reinterpret_cast<int32_t*>(kept_values + R * kept_span);
  TileKeys keys;
  for (int64_t t = tile_begin; t < tile_end; ++t) {
    for (int64_t key0 = 0, slot = 0; key0 < u.lk_pad; key0 += span, slot += kept_span) {
      for (int r = 0; r < R; ++r)
        keys_in_block(u, u.first_row + t * R + r, key0, span, &keys.begin[r], &keys.end[r]);
      score_and_select_span(a, q + t * F32Tile::q_tile_elems(u.d), t * R, key0, span, keys,
                            KeptIndex::columns(), s, kept_values, kept_columns);
      for (int r = 0; r < R; ++r) {
        const int64_t at = (t * R + r) * u.kept_stride + slot;
        std::copy(kept_values + r * kept_span, kept_values + (r + 1) * kept_span,
                  u.kept_values + at);
        std::copy(kept_columns + r * kept_span, kept_columns + (r + 1) * kept_span,
                  u.kept_columns + at);
      }
    }
  }
}

// Unfused phase 2: softmax of each compressed row, normalized in place.
inline void sparse_unfused_softmax(const UnfusedArgs& u, int64_t tile_begin, int64_t tile_end) {
  for (int64_t i = tile_begin * R; i < tile_end * R; ++i) {
    float* row = u.kept_values + i * u.kept_stride;
    Reg row_max = vset1(kNegInf);
    for (int64_t c = 0; c < u.kept_stride; c += kLanes) row_max = vmax(row_max, vload(row + c));
    const float max = vfirst(vallreduce_max(row_max));
    const Reg shift_v = vset1(max == kNegInf ? 0.0f : max);
    Reg sum_v = vzero();
    for (int64_t c = 0; c < u.kept_stride; c += kLanes) {
      const Reg p = exp_shifted(vload(row + c), shift_v);
      vstore(row + c, p);
      sum_v = vadd(sum_v, p);
    }
    const float sum = vreduce_add(sum_v);
    if (u.row_max) u.row_max[i] = max, u.row_sum[i] = sum;
    const Reg inv = vset1(sum == 0.0f ? 0.0f : 1.0f / sum);
    for (int64_t c = 0; c < u.kept_stride; c += kLanes) vstore(row + c, vmul(vload(row + c), inv));
  }
}

// Unfused phase 3: sparse (compressed P) x dense V.
inline void sparse_unfused_values(const UnfusedArgs& u, int64_t tile_begin, int64_t tile_end) {
  const auto* v = static_cast<const float*>(u.v_packed);
  for (int64_t t = tile_begin; t < tile_end; ++t) {
    float* o = u.o + t * R * u.dv_pad;
    std::fill(o, o + R * u.dv_pad, 0.0f);
    int32_t* columns = u.kept_columns + t * R * u.kept_stride;
    columns_to_offsets(columns, R * u.kept_stride, u.lk_pad, u.dv_pad);
    pv_gather(u.kept_values + t * R * u.kept_stride, columns, u.kept_stride, u.kept_stride, v,
              u.dv_pad, o, nullptr);
  }
}

inline AttentionKernels make_sparse_kernels(AttentionKernels dense, const char* fused_name,
                                            const char* unfused_name) {
  dense.sparse_fused_name = fused_name;
  dense.sparse_unfused_name = unfused_name;
  dense.sparse_fused_block = &sparse_fused_block;
  dense.sparse_unfused_scores = &sparse_unfused_scores;
  dense.sparse_unfused_softmax = &sparse_unfused_softmax;
  dense.sparse_unfused_values = &sparse_unfused_values;
  return dense;
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
