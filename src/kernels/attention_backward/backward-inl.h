// The attention backward kernel body, written once and compiled per ISA after
// attention-inl.h, whose qk_tile_f32 (the forward's fp32 fma chain, so the scores and the
// N:M kept set are the forward's bits) and exp_shifted it reuses, and after the ISA's
// prune_row_fast (kernels/simd/nm_prune_*-inl.h).

namespace dfss::kernels::DFSS_KERNEL_NS {

inline constexpr int64_t kBS = kBackwardStride;

// Columns [begin, end) of the key block that row i attends to (the rules of
// detail::AttentionProblem: keys present, causal, sliding window).
inline void attended_columns(const BackwardTileArgs& a, int64_t i, int64_t& begin, int64_t& end) {
  int64_t last = a.keys_present;
  if (a.causal) last = std::min(last, i + a.causal_offset + 1);
  const int64_t first = a.window > 0 ? i + a.causal_offset - a.window + 1 : 0;
  begin = std::clamp<int64_t>(first - a.key0, 0, a.block_keys);
  end = std::clamp<int64_t>(last - a.key0, 0, a.block_keys);
  if (begin > end) begin = end;
}

// In-group positions of the block's columns, j % m, for prune_row.
inline void group_positions(int m, int32_t* pos) {
  for (int j = 0, t = 0; j < KB; ++j, t = t + 1 == m ? 0 : t + 1) pos[j] = t;
}

// Drops (to -inf) the entries of x[0, KB) that the N:M selection does not keep; columns
// past the block's whole groups must be -inf already. sparse::select_group's rule, for all
// columns at once: entry j is kept when fewer than n members of its group outrank it,
// counted against shifted copies of the row with branch-free loops that GCC vectorizes
// (the scalar per-group selection took as long as the tile's arithmetic).
inline void prune_row_generic(float* x, const int32_t* pos, int n, int m) {
  constexpr int kPad = 8;  // shifts reach at most 7 columns out
  alignas(64) float keys[kPad + KB + kPad];
  alignas(64) int32_t above[KB];
  std::fill(keys, keys + kPad, 0.0f);
  std::fill(keys + kPad + KB, keys + kPad + KB + kPad, 0.0f);
  float* key = keys + kPad;
  for (int j = 0; j < KB; ++j) {
    key[j] = std::isnan(x[j]) ? INFINITY : x[j];  // NaN ranks as +inf
    above[j] = 0;
  }
  for (int s = 1; s < m; ++s) {
    // The member s columns later outranks j when larger; s columns earlier, when not smaller.
    for (int j = 0; j < KB; ++j) {
      above[j] += static_cast<int32_t>((pos[j] + s < m) & (key[j + s] > key[j])) +
                  static_cast<int32_t>((pos[j] >= s) & (key[j - s] >= key[j]));
    }
  }
  for (int j = 0; j < KB; ++j) x[j] = above[j] < n ? x[j] : kNegInf;
}

// M = 2, 4, 8 in registers where the ISA can (prune_row_fast), any M otherwise.
inline void prune_row(float* x, const int32_t* pos, int n, int m) {
  if (!prune_row_fast(x, n, m)) prune_row_generic(x, pos, n, m);
}

// One row for the tests: x[0, KB) with whole groups up to backward_block_keys(m), -inf past.
inline void backward_prune(float* x, int n, int m) {
  alignas(64) int32_t pos[KB];
  group_positions(m, pos);
  prune_row(x, pos, n, m);
}

// P and dS of one 6-row tile (rows r0 .. r0 + 5 of the block).
inline void backward_tile(const BackwardTileArgs& a, int64_t r0, const int32_t* pos) {
  float* p = a.p + r0 * kBS;
  float* ds = a.ds + r0 * kBS;
  int64_t begin[R], end[R];
  bool any = false;
  for (int r = 0; r < R; ++r) {
    begin[r] = end[r] = 0;
    // A row that sees nothing (lse = -inf) or a padding row contributes nothing.
    if (r0 + r < a.rows && a.lse[r0 + r] != kNegInf)
      attended_columns(a, a.first_row + r0 + r, begin[r], end[r]);
    any |= begin[r] < end[r];
  }
  if (!any) {
    std::fill(p, p + R * kBS, 0.0f);
    std::fill(ds, ds + R * kBS, 0.0f);
    return;
  }
  for (int col = 0; col < KB; col += kTileVecs * kLanes) {
    qk_tile_f32<kTileVecs>(a.q_tiles + r0 * a.d, a.k_block + col, a.d, p + col, kBS);
    qk_tile_f32<kTileVecs>(a.do_tiles + r0 * a.dv, a.v_block + col, a.dv, ds + col, kBS);
  }
  alignas(64) float bias[KB];
  const Reg scale = vset1(a.scale);
  for (int r = 0; r < R; ++r) {
    float* x = p + r * kBS;
    float* g = ds + r * kBS;
    std::fill(x + KB, x + kBS, 0.0f);
    std::fill(g + KB, g + kBS, 0.0f);
    if (begin[r] == end[r]) {
      std::fill(x, x + KB, 0.0f);
      std::fill(g, g + KB, 0.0f);
      continue;
    }
    const float* row_bias = a.key_bias;
    if (a.score_mask) {
      // bias = score mask + key mask in fp32, read only where the row attends.
      const float* mask = a.score_mask + (r0 + r) * a.score_mask_row_stride;
      std::fill(bias, bias + KB, 0.0f);
      for (int64_t j = begin[r]; j < end[r]; ++j)
        bias[j] = mask[j * a.score_mask_col_stride] + a.key_bias[j];
      row_bias = bias;
    }
    for (int c = 0; c < KB; c += kLanes)
      vstore(x + c, vfmadd(vload(x + c), scale, vload(row_bias + c)));
    // Hidden keys are -inf, not biased: their q·k may be NaN.
    std::fill(x, x + begin[r], kNegInf);
    std::fill(x + end[r], x + KB, kNegInf);
    if (a.pattern_m > 0) prune_row(x, pos, a.pattern_n, a.pattern_m);
    const Reg lse = vset1(a.lse[r0 + r]);
    const Reg delta = vset1(a.delta[r0 + r]);
    for (int c = 0; c < KB; c += kLanes) {
      const Reg weight = exp_shifted(vload(x + c), lse);
      vstore(x + c, weight);
      vstore(g + c, vmul(weight, vsub(vload(g + c), delta)));
    }
  }
}

inline void backward_tiles(const BackwardTileArgs& a) {
  alignas(64) int32_t pos[KB];
  if (a.pattern_m > 0) group_positions(a.pattern_m, pos);
  for (int64_t r0 = 0; r0 < a.rows; r0 += R) backward_tile(a, r0, pos);
}

// C[R][C vectors] += Σ_k A(r, k) B[k][C vectors], with A(r, k) = a[k * a_stride + r] when
// kKeysAsRows (A is Pᵀ or dSᵀ: the rows of C are columns of the tile) and a[r * a_stride + k]
// otherwise. Plain arguments and a compile-time access pattern keep the accumulators in
// registers (GCC spilled them every step when the strides came from the argument struct).
template <int C, bool kKeysAsRows>
inline void gemm_tile(const float* a, int64_t a_stride, const float* b, int64_t ldb, float* c,
                      int64_t ldc, int64_t depth) {
  Reg acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < C; ++v) acc[r][v] = vload(c + r * ldc + v * kLanes);
  for (int64_t k = 0; k < depth; ++k) {
    Reg row[C];
    for (int v = 0; v < C; ++v) row[v] = vload(b + k * ldb + v * kLanes);
    for (int r = 0; r < R; ++r) {
      const Reg weight = vbroadcast(kKeysAsRows ? a + k * a_stride + r : a + r * a_stride + k);
      for (int v = 0; v < C; ++v) acc[r][v] = vfmadd(weight, row[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < C; ++v) vstore(c + r * ldc + v * kLanes, acc[r][v]);
}

template <bool kKeysAsRows>
inline void backward_gemm_rows(const BackwardGemmArgs& g) {
  const int64_t a_stride = kKeysAsRows ? g.a_k_stride : g.a_row_stride;
  const int64_t row_step = kKeysAsRows ? 1 : g.a_row_stride;
  for (int64_t r0 = 0; r0 < g.rows; r0 += R) {
    const float* a = g.a + r0 * row_step;
    float* c = g.c + r0 * g.ldc;
    for_each_value_tile(g.cols, [&](int64_t col, auto vecs) {
      gemm_tile<decltype(vecs)::value, kKeysAsRows>(a, a_stride, g.b + col, g.ldb, c + col, g.ldc,
                                                    g.depth);
    });
  }
}

inline void backward_gemm(const BackwardGemmArgs& g) {
  if (g.a_row_stride == 1) {
    backward_gemm_rows<true>(g);
  } else {
    backward_gemm_rows<false>(g);
  }
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
