// The attention kernel body, written once and compiled per ISA: each attention_<isa>.cc
// defines DFSS_KERNEL_NS, includes its vec_<isa>-inl.h and then this file, so every
// helper here lives in that ISA's namespace and can never leak into another ISA's code.
// Needs: Reg, kLanes, vzero, vset1, vload, vstore, vbroadcast, vfmadd, vmul, vadd, vsub,
// vmax, vreduce_max, vreduce_add, vallreduce_max, vfirst, vexp2.

#include "core/debug_assert.h"

namespace dfss::kernels::DFSS_KERNEL_NS {

inline constexpr int R = kTileRows;
inline constexpr int KB = kKeyBlock;
// Register tile: 6 rows x (4 zmm | 2 ymm | 2 x 8 floats) accumulators, which fits the
// register file with room for the operand loads and the broadcast.
inline constexpr int kTileVecs = kLanes == 16 ? 4 : 2;
inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Row stride of the score tile in the fused kernel. (Padding it to stagger L1 banks was
// measured: no difference on Zen 5.)
inline constexpr int64_t kScoreStride = KB;

// acc[R][C] = Q tile (packed [d][R]) x K block columns (packed [d][KB], C vectors wide).
// The register-tile loops are unrolled up front: where a tile is not inlined into a larger
// kernel (unfused_scores, unfused_values), GCC 12 otherwise kept acc on the stack.
template <int C>
inline void qk_tile_f32(const float* q_tile, const float* k_cols, int64_t d, float* s,
                        int64_t s_stride) {
  Reg acc[R][C];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[r][c] = vzero();
  for (int64_t k = 0; k < d; ++k) {
    Reg key[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) key[c] = vload(k_cols + k * KB + c * kLanes);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const Reg q = vbroadcast(q_tile + k * R + r);
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[r][c] = vfmadd(q, key[c], acc[r][c]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) vstore(s + r * s_stride + c * kLanes, acc[r][c]);
}

// o[R][C vectors] = o * alpha (per row; alpha null means 1) + p[R][KB] x V block columns.
template <int C>
inline void pv_tile_f32(const float* p, int64_t p_stride, const float* v_cols, int64_t dv_pad,
                        float* o, const float* alpha) {
  Reg acc[R][C];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const Reg scale = vset1(alpha ? alpha[r] : 1.0f);
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[r][c] = vmul(vload(o + r * dv_pad + c * kLanes), scale);
  }
  for (int j = 0; j < KB; ++j) {
    Reg value[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) value[c] = vload(v_cols + j * dv_pad + c * kLanes);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const Reg weight = vbroadcast(p + r * p_stride + j);
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[r][c] = vfmadd(weight, value[c], acc[r][c]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) vstore(o + r * dv_pad + c * kLanes, acc[r][c]);
}

// The single-row tile (a query block of one row: decode), where the 6-row register tile
// would spend 5/6 of its work on zero rows. Each row's arithmetic is that of the 6-row
// tile (same fma chains in the same order), so its results are bit-identical to it; the
// register tile runs along the keys (scores) or the value columns instead of the rows.
inline constexpr int kRowVecs = KB / kLanes < 8 ? KB / kLanes : 8;

// s[0][KB] = row 0 of the Q tile (packed [d][R]) x the K block (packed [d][KB]).
inline void qk_row_f32(const float* q_tile, const float* k_block, int64_t d, float* s) {
  for (int col = 0; col < KB; col += kRowVecs * kLanes) {
    Reg acc[kRowVecs];
    for (int c = 0; c < kRowVecs; ++c) acc[c] = vzero();
    for (int64_t k = 0; k < d; ++k) {
      const Reg q = vbroadcast(q_tile + k * R);
      for (int c = 0; c < kRowVecs; ++c)
        acc[c] = vfmadd(q, vload(k_block + k * KB + col + c * kLanes), acc[c]);
    }
    for (int c = 0; c < kRowVecs; ++c) vstore(s + col + c * kLanes, acc[c]);
  }
}

// o[C vectors] = o * alpha + p[KB] x V block columns, for one row.
template <int C>
inline void pv_row_f32(const float* p, const float* v_cols, int64_t dv_pad, float* o, float alpha) {
  Reg acc[C];
  const Reg scale = vset1(alpha);
  for (int c = 0; c < C; ++c) acc[c] = vmul(vload(o + c * kLanes), scale);
  for (int j = 0; j < KB; ++j) {
    const Reg weight = vbroadcast(p + j);
    for (int c = 0; c < C; ++c)
      acc[c] = vfmadd(weight, vload(v_cols + j * dv_pad + c * kLanes), acc[c]);
  }
  for (int c = 0; c < C; ++c) vstore(o + c * kLanes, acc[c]);
}

// The last `vecs` (< kRowVecs) vectors of the value columns in one register tile.
template <int C = 1>
inline void pv_row_f32_rest(int64_t vecs, const float* p, const float* v_cols, int64_t dv_pad,
                            float* o, float alpha) {
  if constexpr (C < kRowVecs) {
    if (vecs == C) return pv_row_f32<C>(p, v_cols, dv_pad, o, alpha);
    pv_row_f32_rest<C + 1>(vecs, p, v_cols, dv_pad, o, alpha);
  }
}

inline void pv_row_f32_all(const float* p, const float* v_block, int64_t dv_pad, float* o,
                           float alpha) {
  int64_t col = 0;
  for (; col + kRowVecs * kLanes <= dv_pad; col += kRowVecs * kLanes)
    pv_row_f32<kRowVecs>(p, v_block + col, dv_pad, o + col, alpha);
  pv_row_f32_rest((dv_pad - col) / kLanes, p, v_block + col, dv_pad, o + col, alpha);
}

// Splits the value columns into register tiles of at most kTileVecs vectors.
template <typename TileFn>
inline void for_each_value_tile(int64_t dv_pad, TileFn&& tile) {
  int64_t col = 0;
  for (; col + kTileVecs * kLanes <= dv_pad; col += kTileVecs * kLanes)
    tile(col, std::integral_constant<int, kTileVecs>{});
  switch ((dv_pad - col) / kLanes) {
    case 1: tile(col, std::integral_constant<int, 1>{}); break;
    case 2:
      if constexpr (kTileVecs > 2) tile(col, std::integral_constant<int, 2>{});
      break;
    case 3:
      if constexpr (kTileVecs > 3) tile(col, std::integral_constant<int, 3>{});
      break;
    default: break;
  }
}

// Operands packed in PackFormat::f32.
struct F32Tile {
  static constexpr PackFormat kFormat = PackFormat::f32;
  static int64_t q_tile_elems(int64_t d) { return d * R; }
  static int64_t k_block_elems(int64_t d) { return d * KB; }
  static int64_t v_block_elems(int64_t dv_pad) { return KB * dv_pad; }
  using Elem = float;

  static void scores(const float* q_tile, const float* k_block, int64_t d, float* s,
                     int64_t s_stride) {
    for (int col = 0; col < KB; col += kTileVecs * kLanes)
      qk_tile_f32<kTileVecs>(q_tile, k_block + col, d, s + col, s_stride);
  }
  static void values(const float* p, int64_t p_stride, const float* v_block, int64_t dv_pad,
                     float* o, const float* alpha, float* /*scratch*/) {
    for_each_value_tile(dv_pad, [&](int64_t col, auto vecs) {
      pv_tile_f32<decltype(vecs)::value>(p, p_stride, v_block + col, dv_pad, o + col, alpha);
    });
  }
};

inline constexpr float kLog2e = 1.44269504088896341f;

// e^(x - shift) as 2^((x - shift)·log2e): the difference is taken in natural units first,
// so huge finite scores neither overflow nor lose their order in the conversion.
inline Reg exp_shifted(Reg x, Reg shift) {
  return vexp2(vmul(vsub(x, shift), vset1(kLog2e)));
}

// Folds a block's scores (their lane-wise max) into a row's running max m: returns the
// shift for this block's exponentials and sets alpha, the factor that rescales what was
// accumulated before (exactly 1 when the max did not move, the common case).
inline Reg update_running_max(Reg block_lane_max, float& m, float& alpha) {
  const float block_max = vfirst(vallreduce_max(block_lane_max));
  const float m_old = m;
  m = block_max > m_old ? block_max : m_old;
  // With every score so far -inf, shift by 0 so that e^-inf = 0 and NaN stays NaN.
  const Reg shift = vset1(m == kNegInf ? 0.0f : m);
  // In-register exp: a libm call here costs as much as a 16-key block of scores.
  alpha = m == m_old ? 1.0f : vfirst(exp_shifted(vset1(m_old), shift));
  return shift;
}

// l = l * alpha + sum, per lane (reduced once at the end of the row).
inline void update_running_sum(float* l_lanes, float alpha, Reg sum) {
  vstore(l_lanes, vfmadd(vload(l_lanes), vset1(alpha), sum));
}

// The keys [begin, end) of a block (relative to its first key) that each row of a tile
// sees: the causal limit, the keys present and the sliding window.
struct TileKeys {
  int64_t begin[R];
  int64_t end[R];
  bool partial(int r, int64_t block) const { return begin[r] > 0 || end[r] < block; }
};

// One online-softmax step for the R rows of a score tile s[R][KB] (raw Q·Kᵀ):
// x = scale*s + bias (row r's at bias + r * bias_stride), keys outside
// [keys.begin[r], keys.end[r]) masked (causal, window, or absent), and p = e^(x - m_new)
// overwrites s. Updates the running max m, the per-lane running sums l_lanes[R][kLanes],
// and returns in alpha the factor that rescales the rows' previous accumulators (exactly 1
// when the max did not move, the common case).
inline void online_softmax_tile(float* s, const float* bias, int64_t bias_stride, float scale,
                                const TileKeys& keys, float* m, float* l_lanes, float* alpha,
                                int rows = R) {
  constexpr int kVecs = KB / kLanes;
  const Reg scale_v = vset1(scale);
  for (int r = 0; r < rows; ++r) {
    float* row = s + r * kScoreStride;
    const float* row_bias = bias + r * bias_stride;
    Reg x[kVecs];
    Reg row_max = vset1(kNegInf);
    for (int c = 0; c < kVecs; ++c) {
      x[c] = vfmadd(vload(row + c * kLanes), scale_v, vload(row_bias + c * kLanes));
      row_max = vmax(row_max, x[c]);
    }
    // Causal diagonal, window edge or the last keys: rare, so through memory. Hidden keys
    // are set to -inf rather than biased, since their q·k may be NaN (inf · 0).
    if (keys.partial(r, KB)) {
      for (int c = 0; c < kVecs; ++c) vstore(row + c * kLanes, x[c]);
      std::fill(row, row + std::min<int64_t>(keys.begin[r], KB), kNegInf);
      for (int64_t j = std::max<int64_t>(keys.end[r], 0); j < KB; ++j) row[j] = kNegInf;
      row_max = vset1(kNegInf);
      for (int c = 0; c < kVecs; ++c) {
        x[c] = vload(row + c * kLanes);
        row_max = vmax(row_max, x[c]);
      }
    }
    const Reg shift = update_running_max(row_max, m[r], alpha[r]);
    Reg sum = vzero();
    for (int c = 0; c < kVecs; ++c) {
      const Reg p = exp_shifted(x[c], shift);
      vstore(row + c * kLanes, p);
      sum = vadd(sum, p);
    }
    update_running_sum(l_lanes + r * kLanes, alpha[r], sum);
  }
}

// First key that row `row` may see under the sliding window (0 without one).
inline int64_t window_first_key(int64_t window, int64_t row, int64_t causal_offset) {
  return window > 0 ? std::max<int64_t>(0, row + causal_offset - window + 1) : 0;
}

// Keys [begin, end) of the block [key0, key0 + block) that row `row` may see: causal limit,
// sliding window and the keys present; clamped to [0, block] relative to key0.
template <class Args>
inline void keys_in_block(const Args& a, int64_t row, int64_t key0, int64_t block, int64_t* begin,
                          int64_t* end) {
  int64_t last = a.lk;
  if (a.causal) last = std::min(last, row + a.causal_offset + 1);
  *end = std::clamp<int64_t>(last - key0, 0, block);
  *begin = std::clamp<int64_t>(window_first_key(a.window, row, a.causal_offset) - key0, 0, block);
}

// Resets a query block's running max, sums and output accumulators; returns the end of
// the keys that any of its rows sees, and in key_begin the first such key (window).
inline int64_t start_query_block(const FlashBlockArgs& a, int64_t tiles, int64_t* key_begin) {
  const int64_t rows_pad = tiles * R;
  std::fill(a.row_max, a.row_max + rows_pad, kNegInf);
  std::fill(a.row_sum_lanes, a.row_sum_lanes + rows_pad * kLanes, 0.0f);
  std::fill(a.o, a.o + rows_pad * a.dv_pad, 0.0f);
  const int64_t last_row = a.first_row + a.rows - 1;
  // The first row has the smallest first key.
  *key_begin = window_first_key(a.window, a.first_row, a.causal_offset);
  return a.causal ? std::min(a.lk, last_row + a.causal_offset + 1) : a.lk;
}

// The row sums, reduced from their per-lane partials.
inline void finish_query_block(const FlashBlockArgs& a, int64_t tiles) {
  for (int64_t i = 0; i < tiles * R; ++i)
    a.row_sum[i] = vreduce_add(vload(a.row_sum_lanes + i * kLanes));
}

// The keys of [key0, key0 + block) that the rows of the tile starting at row0 see; false
// when the causal rule or the window hides the whole block from every real row of the
// tile (it is skipped, not masked).
template <class Args>
inline bool tile_visible_keys(const Args& a, int64_t row0, int64_t last_row, int64_t key0,
                              int64_t block, TileKeys& keys) {
  if (a.causal && key0 > std::min(row0 + R - 1, last_row) + a.causal_offset) return false;
  // The tile's first row has the smallest first key.
  if (key0 + block <= window_first_key(a.window, row0, a.causal_offset)) return false;
  for (int r = 0; r < R; ++r) keys_in_block(a, row0 + r, key0, block, &keys.begin[r], &keys.end[r]);
  return true;
}

// Streams the key blocks [first_block, key_blocks) past every 6-row tile of the query block.
template <class Tile>
void fused_key_blocks(const FlashBlockArgs& a, int64_t tiles, int64_t last_row, int64_t first_block,
                      int64_t key_blocks) {
  using Elem = typename Tile::Elem;
  const auto* q = static_cast<const Elem*>(a.q_packed);
  const auto* k = static_cast<const Elem*>(a.k_packed);
  const auto* v = static_cast<const Elem*>(a.v_packed);
  float* s = a.scratch;
  float* tile_scratch = a.scratch + R * kScoreStride;
  float alpha[R];
  TileKeys keys;
  for (int64_t kb = first_block; kb < key_blocks; ++kb) {
    const int64_t key0 = kb * KB;
    for (int64_t t = 0; t < tiles; ++t) {
      if (!tile_visible_keys(a, a.first_row + t * R, last_row, key0, KB, keys)) continue;
      if constexpr (Tile::kFormat == PackFormat::f32) {
        if (a.rows - t * R == 1) {  // a tile of one real row (decode)
          qk_row_f32(q + t * Tile::q_tile_elems(a.d), k + kb * Tile::k_block_elems(a.d), a.d, s);
          online_softmax_tile(s, a.key_bias + t * R * a.bias_row_stride + key0, a.bias_row_stride,
                              a.scale, keys, a.row_max + t * R, a.row_sum_lanes + t * R * kLanes,
                              alpha, 1);
          pv_row_f32_all(s, v + kb * Tile::v_block_elems(a.dv_pad), a.dv_pad,
                         a.o + t * R * a.dv_pad, alpha[0]);
          continue;
        }
      }
      Tile::scores(q + t * Tile::q_tile_elems(a.d), k + kb * Tile::k_block_elems(a.d), a.d, s,
                   kScoreStride);
      online_softmax_tile(s, a.key_bias + t * R * a.bias_row_stride + key0, a.bias_row_stride,
                          a.scale, keys, a.row_max + t * R, a.row_sum_lanes + t * R * kLanes,
                          alpha);
      Tile::values(s, kScoreStride, v + kb * Tile::v_block_elems(a.dv_pad), a.dv_pad,
                   a.o + t * R * a.dv_pad, alpha, tile_scratch);
    }
  }
}

template <class Tile>
void fused_block(const FlashBlockArgs& a) {
  // What the drivers promise: whole key blocks, keys within them, scratch for a score tile
  // plus the values' conversion area, 64-byte aligned.
  DFSS_DEBUG_ASSERT(a.rows > 0 && a.lk_pad % KB == 0 && a.lk >= 0 && a.lk <= a.lk_pad);
  DFSS_DEBUG_ASSERT(R * kScoreStride + R * KB <= kFlashScratchFloats);
  DFSS_DEBUG_ASSERT(reinterpret_cast<uintptr_t>(a.scratch) % 64 == 0);
  const int64_t tiles = (a.rows + R - 1) / R;
  const int64_t last_row = a.first_row + a.rows - 1;
  int64_t key_begin = 0;
  const int64_t key_end = start_query_block(a, tiles, &key_begin);
  if (key_end > key_begin)
    fused_key_blocks<Tile>(a, tiles, last_row, key_begin / KB, (key_end + KB - 1) / KB);
  finish_query_block(a, tiles);
}

template <class Tile>
void unfused_scores(const UnfusedArgs& a, int64_t tile_begin, int64_t tile_end) {
  DFSS_DEBUG_ASSERT(a.lk_pad % KB == 0 && tile_begin >= 0 && tile_begin <= tile_end);
  DFSS_DEBUG_ASSERT(tile_end * R < a.rows + R);  // the score matrix has rows_pad rows
  using Elem = typename Tile::Elem;
  const auto* q = static_cast<const Elem*>(a.q_packed);
  const auto* k = static_cast<const Elem*>(a.k_packed);
  for (int64_t t = tile_begin; t < tile_end; ++t)
    for (int64_t kb = 0; kb < a.lk_pad / KB; ++kb)
      Tile::scores(q + t * Tile::q_tile_elems(a.d), k + kb * Tile::k_block_elems(a.d), a.d,
                   a.scores + t * R * a.lk_pad + kb * KB, a.lk_pad);
}

// Row softmax over the whole materialized score row, normalized in place.
template <class Tile>
void unfused_softmax(const UnfusedArgs& a, int64_t tile_begin, int64_t tile_end) {
  const Reg scale_v = vset1(a.scale);
  for (int64_t i = tile_begin * R; i < tile_end * R; ++i) {
    float* row = a.scores + i * a.lk_pad;
    const float* bias = a.key_bias + i * a.bias_row_stride;
    Reg row_max = vset1(kNegInf);
    for (int64_t c = 0; c < a.lk_pad; c += kLanes) {
      const Reg x = vfmadd(vload(row + c), scale_v, vload(bias + c));
      vstore(row + c, x);
      row_max = vmax(row_max, x);
    }
    float max = vreduce_max(row_max);
    int64_t begin = 0, end = 0;
    keys_in_block(a, a.first_row + i, 0, a.lk_pad, &begin, &end);
    if (begin > 0 || end < a.lk_pad) {  // hidden or absent keys: -inf, whatever their q·k
      std::fill(row, row + begin, kNegInf);
      std::fill(row + end, row + a.lk_pad, kNegInf);
      row_max = vset1(kNegInf);
      for (int64_t c = 0; c < a.lk_pad; c += kLanes) row_max = vmax(row_max, vload(row + c));
      max = vreduce_max(row_max);
    }
    const Reg shift_v = vset1(max == kNegInf ? 0.0f : max);
    Reg sum_v = vzero();
    for (int64_t c = 0; c < a.lk_pad; c += kLanes) {
      const Reg p = exp_shifted(vload(row + c), shift_v);
      vstore(row + c, p);
      sum_v = vadd(sum_v, p);
    }
    const float sum = vreduce_add(sum_v);
    if (a.row_max) a.row_max[i] = max, a.row_sum[i] = sum;
    const Reg inv = vset1(sum == 0.0f ? 0.0f : 1.0f / sum);  // all masked: zeros
    for (int64_t c = 0; c < a.lk_pad; c += kLanes) vstore(row + c, vmul(vload(row + c), inv));
  }
}

template <class Tile>
void unfused_values(const UnfusedArgs& a, int64_t tile_begin, int64_t tile_end) {
  using Elem = typename Tile::Elem;
  const auto* v = static_cast<const Elem*>(a.v_packed);
  for (int64_t t = tile_begin; t < tile_end; ++t) {
    float* o = a.o + t * R * a.dv_pad;
    std::fill(o, o + R * a.dv_pad, 0.0f);
    for (int64_t kb = 0; kb < a.lk_pad / KB; ++kb)
      Tile::values(a.scores + t * R * a.lk_pad + kb * KB, a.lk_pad,
                   v + kb * Tile::v_block_elems(a.dv_pad), a.dv_pad, o, nullptr, a.scratch);
  }
}

template <class Tile>
AttentionKernels make_kernels(const char* fused_name, const char* unfused_name) {
  AttentionKernels kernels{};
  kernels.fused_name = fused_name;
  kernels.unfused_name = unfused_name;
  kernels.format = Tile::kFormat;
  kernels.fused_block = &fused_block<Tile>;
  kernels.unfused_scores = &unfused_scores<Tile>;
  kernels.unfused_softmax = &unfused_softmax<Tile>;
  kernels.unfused_values = &unfused_values<Tile>;
  return kernels;
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
