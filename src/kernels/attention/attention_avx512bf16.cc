// AVX512-BF16 attention kernels: Q·Kᵀ and P·V on vdpbf16ps, which multiplies two bf16
// pairs per fp32 lane, so K is packed in pairs along d and V in pairs along the keys; the
// probabilities are rounded to bf16 for P·V, accumulation stays fp32.
#include <immintrin.h>

#include <cstring>

#include "kernels/attention/attention_common.h"

#define DFSS_KERNEL_NS avx512bf16
#include "kernels/simd/vec_avx512-inl.h"
// clang-format off
#include "kernels/attention/attention-inl.h"
#include "kernels/attention/decode-inl.h"
// clang-format on

namespace dfss::kernels::avx512bf16 {
namespace {

inline __m512bh load_pairs(const uint16_t* p) {
  return reinterpret_cast<__m512bh>(_mm512_loadu_si512(p));
}
inline __m512bh broadcast_pair(const uint16_t* p) {
  uint32_t pair;
  std::memcpy(&pair, p, sizeof pair);
  return reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(pair)));
}

// acc[R][4] over 64 keys of a block: one dot product of 2 d-elements per lane.
inline void qk_tile_bf16(const uint16_t* q_tile, const uint16_t* k_cols, int64_t d, float* s,
                         int64_t s_stride) {
  __m512 acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < 4; ++c) acc[r][c] = _mm512_setzero_ps();
  const int64_t pairs = (d + 1) / 2;
  for (int64_t k2 = 0; k2 < pairs; ++k2) {
    __m512bh key[4];
    for (int c = 0; c < 4; ++c) key[c] = load_pairs(k_cols + (k2 * KB + c * 16) * 2);
    for (int r = 0; r < R; ++r) {
      const __m512bh q = broadcast_pair(q_tile + (k2 * R + r) * 2);
      for (int c = 0; c < 4; ++c) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], q, key[c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < 4; ++c) _mm512_storeu_ps(s + r * s_stride + c * 16, acc[r][c]);
}

template <int C>
inline void pv_tile_bf16(const uint16_t* p_pairs, const uint16_t* v_cols, int64_t dv_pad, float* o,
                         const float* alpha) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r) {
    const __m512 scale = _mm512_set1_ps(alpha ? alpha[r] : 1.0f);
    for (int c = 0; c < C; ++c)
      acc[r][c] = _mm512_mul_ps(_mm512_loadu_ps(o + r * dv_pad + c * 16), scale);
  }
  for (int j2 = 0; j2 < KB / 2; ++j2) {
    __m512bh value[C];
    for (int c = 0; c < C; ++c) value[c] = load_pairs(v_cols + (j2 * dv_pad + c * 16) * 2);
    for (int r = 0; r < R; ++r) {
      const __m512bh weight = broadcast_pair(p_pairs + (r * KB + j2 * 2));
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], weight, value[c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(o + r * dv_pad + c * 16, acc[r][c]);
}

// Operands packed in PackFormat::bf16_pairs.
struct Bf16PairTile {
  static constexpr PackFormat kFormat = PackFormat::bf16_pairs;
  static int64_t q_tile_elems(int64_t d) { return (d + 1) / 2 * R * 2; }
  static int64_t k_block_elems(int64_t d) { return (d + 1) / 2 * KB * 2; }
  static int64_t v_block_elems(int64_t dv_pad) { return KB * dv_pad; }
  using Elem = uint16_t;

  static void scores(const uint16_t* q_tile, const uint16_t* k_block, int64_t d, float* s,
                     int64_t s_stride) {
    for (int col = 0; col < KB; col += 64)
      qk_tile_bf16(q_tile, k_block + col * 2, d, s + col, s_stride);
  }
  // p (fp32, [R][p_stride]) is rounded to bf16 into scratch, then multiplied with V.
  static void values(const float* p, int64_t p_stride, const uint16_t* v_block, int64_t dv_pad,
                     float* o, const float* alpha, float* scratch) {
    auto* p_bf16 = reinterpret_cast<uint16_t*>(scratch);
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < KB; c += 32) {
        const __m512bh packed = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(p + r * p_stride + c + 16),
                                                    _mm512_loadu_ps(p + r * p_stride + c));
        _mm512_storeu_si512(p_bf16 + r * KB + c, reinterpret_cast<__m512i>(packed));
      }
    for_each_value_tile(dv_pad, [&](int64_t col, auto vecs) {
      pv_tile_bf16<decltype(vecs)::value>(p_bf16, v_block + col * 2, dv_pad, o + col, alpha);
    });
  }
};

// ---------------------------------------------------------------------------------------
// Fused N:M attention for 2:4 and 1:2 on vdpbf16ps (PackFormat::bf16_pair_combos). Both
// keep exactly 2 keys of every quad of keys, and V holds, per quad, the pair row of each
// pair of keys that can be kept: P·V is one vdpbf16ps per (row, quad, 16 columns) with the
// row's two kept probabilities as the bf16 pair, half the products of dense bf16 P·V.
// Q·Kᵀ is the dense bf16 register tile (6 rows x 64 keys). K's columns are permuted so
// that vector c of a row holds keys 4i + c in lane i: the 4 scores of quad i share lane i,
// and the selection, the choice of the pair row and the kept pair are vertical operations
// (no compress); the softmax of the kept entries and their rounding to bf16 run in
// registers.

inline constexpr int kPairSpan = 64;              // keys per span: one Q·Kᵀ register tile
inline constexpr int kSpanQuads = kPairSpan / 4;  // kept pairs per row and span

// 2:4 by rank count, for quads whose threshold ties: member c is kept when fewer than 2
// members outrank it (larger, or equal at a lower column). keys: NaN already +inf.
inline void keep_2of4_ranked(const __m512 (&keys)[4], __mmask16 (&keep)[4]) {
  for (int c = 0; c < 4; ++c) {
    __m512i outranked = _mm512_setzero_si512();
    for (int e = 0; e < 4; ++e) {
      if (e == c) continue;
      const __mmask16 beats = e < c ? _mm512_cmp_ps_mask(keys[e], keys[c], _CMP_GE_OQ)
                                    : _mm512_cmp_ps_mask(keys[e], keys[c], _CMP_GT_OQ);
      outranked = _mm512_mask_add_epi32(outranked, beats, outranked, _mm512_set1_epi32(1));
    }
    keep[c] = _mm512_cmplt_epi32_mask(outranked, _mm512_set1_epi32(2));
  }
}

// The tile's scores over a span, x[R][4] (raw q·k, vector c lane i = key 4i + c) -> per
// row, the bf16 pairs of the kept probabilities p = e^(x - m_new) (pair i = quad i, lower
// column first) and the element offset of each quad's kept pair row in the span's packed V;
// updates m, l, alpha. bias[r * bias_step][c] is row r's additive mask over the span in
// the same order (bias_step 0: one mask for every row). In phases over all rows, so that
// the rows' dependency chains (max, exp) overlap.
template <int N, int M>
inline void pair_tile_epilogue(__m512 (&x)[R][4], const __m512 (*bias)[4], int bias_step,
                               __m512 scale, const TileKeys& keys, __m512i lut, __m512i quad_base,
                               float* m, float* l_lanes, float* alpha, uint32_t* p_pairs,
                               int32_t* offsets) {
  const __m512i lane4 =
      _mm512_slli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 2);
  __m512 lo[R], hi[R];  // the kept scores of each quad, in column order
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < 4; ++c) x[r][c] = _mm512_fmadd_ps(x[r][c], scale, bias[r * bias_step][c]);
    if (keys.partial(r, kPairSpan)) {  // causal diagonal, window edge or the last keys
      const __m512i begin = _mm512_set1_epi32(static_cast<int>(keys.begin[r]));
      const __m512i end = _mm512_set1_epi32(static_cast<int>(keys.end[r]));
      for (int c = 0; c < 4; ++c) {
        const __m512i key = _mm512_add_epi32(lane4, _mm512_set1_epi32(c));
        const __mmask16 hidden =
            _mm512_cmpge_epi32_mask(key, end) | _mm512_cmplt_epi32_mask(key, begin);
        x[r][c] = _mm512_mask_mov_ps(x[r][c], hidden, vset1(kNegInf));
      }
    }
    // The selection keys, NaN as +inf: vminps returns its second operand when the first is NaN.
    __m512 keys[4];
    for (int c = 0; c < 4; ++c) keys[c] = _mm512_min_ps(x[r][c], vset1(INFINITY));
    __mmask16 keep[4];
    if constexpr (M == 4) {
      // Each quad's second-largest key; the two largest always pass, so 32 passing lanes
      // means exactly two per quad; more means a tie at the threshold.
      const __m512 hi01 = _mm512_max_ps(keys[0], keys[1]), lo01 = _mm512_min_ps(keys[0], keys[1]);
      const __m512 hi23 = _mm512_max_ps(keys[2], keys[3]), lo23 = _mm512_min_ps(keys[2], keys[3]);
      const __m512 second = _mm512_max_ps(_mm512_min_ps(hi01, hi23), _mm512_max_ps(lo01, lo23));
      int passing = 0;
      for (int c = 0; c < 4; ++c) {
        keep[c] = _mm512_cmp_ps_mask(keys[c], second, _CMP_GE_OQ);
        passing += std::popcount(static_cast<unsigned>(keep[c]));
      }
      if (passing != 32) keep_2of4_ranked(keys, keep);
      lo[r] = _mm512_mask_mov_ps(_mm512_mask_mov_ps(x[r][2], keep[1], x[r][1]), keep[0], x[r][0]);
      hi[r] = _mm512_mask_mov_ps(_mm512_mask_mov_ps(x[r][1], keep[2], x[r][2]), keep[3], x[r][3]);
    } else {
      // 1:2: groups (4i, 4i+1) and (4i+2, 4i+3); ties to the lower column.
      keep[0] = _mm512_cmp_ps_mask(keys[0], keys[1], _CMP_GE_OQ);
      keep[1] = static_cast<__mmask16>(~keep[0]);
      keep[2] = _mm512_cmp_ps_mask(keys[2], keys[3], _CMP_GE_OQ);
      keep[3] = static_cast<__mmask16>(~keep[2]);
      lo[r] = _mm512_mask_mov_ps(x[r][1], keep[0], x[r][0]);
      hi[r] = _mm512_mask_mov_ps(x[r][3], keep[2], x[r][2]);
    }
    // Quad i's kept members as 4 bits -> its combo's pair row.
    __m512i bits = _mm512_maskz_mov_epi32(keep[0], _mm512_set1_epi32(1));
    for (int c = 1; c < 4; ++c)
      bits = _mm512_mask_or_epi32(bits, keep[c], bits, _mm512_set1_epi32(1 << c));
    _mm512_storeu_si512(offsets + r * kSpanQuads,
                        _mm512_add_epi32(quad_base, _mm512_permutexvar_epi32(bits, lut)));
  }
  // As online_softmax_kept, on the kept scores.
  __m512 shift[R];
  for (int r = 0; r < R; ++r)
    shift[r] = update_running_max(vmax(vmax(vset1(kNegInf), lo[r]), hi[r]), m[r], alpha[r]);
  const __m512i interleave = _mm512_setr_epi32(  // words (lo_i, hi_i) from [lo0..15, hi0..15]
      16 << 16 | 0, 17 << 16 | 1, 18 << 16 | 2, 19 << 16 | 3, 20 << 16 | 4, 21 << 16 | 5,
      22 << 16 | 6, 23 << 16 | 7, 24 << 16 | 8, 25 << 16 | 9, 26 << 16 | 10, 27 << 16 | 11,
      28 << 16 | 12, 29 << 16 | 13, 30 << 16 | 14, 31 << 16 | 15);
  for (int r = 0; r < R; ++r) {
    const __m512 p_lo = exp_shifted(lo[r], shift[r]);
    const __m512 p_hi = exp_shifted(hi[r], shift[r]);
    update_running_sum(l_lanes + r * kLanes, alpha[r], vadd(vadd(vzero(), p_lo), p_hi));
    const __m512i halves = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(p_hi, p_lo));
    _mm512_storeu_si512(p_pairs + r * kSpanQuads, _mm512_permutexvar_epi16(interleave, halves));
  }
}

// o[R][C vectors] = o * alpha + Σ_quads p_pair[r][q] · V[pair row of (r, q)].
template <int C>
inline void pv_pairs_tile(const uint32_t* p_pairs, const int32_t* offsets, const uint16_t* v_cols,
                          int64_t dv_pad, float* o, const float* alpha) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r) {
    const __m512 scale = _mm512_set1_ps(alpha[r]);
    for (int c = 0; c < C; ++c)
      acc[r][c] = _mm512_mul_ps(_mm512_loadu_ps(o + r * dv_pad + c * 16), scale);
  }
  for (int q = 0; q < kSpanQuads; ++q) {
    for (int r = 0; r < R; ++r) {
      const __m512bh weight = reinterpret_cast<__m512bh>(
          _mm512_set1_epi32(static_cast<int>(p_pairs[r * kSpanQuads + q])));
      const uint16_t* value = v_cols + offsets[r * kSpanQuads + q];
      for (int c = 0; c < C; ++c)
        acc[r][c] = _mm512_dpbf16_ps(acc[r][c], weight, load_pairs(value + c * 32));
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(o + r * dv_pad + c * 16, acc[r][c]);
}

template <int N, int M>
void pair_combos_fused_block(const FlashBlockArgs& a) {
  const PairCombos& combos = *pair_combos(N, M);
  const int64_t tiles = (a.rows + R - 1) / R;
  const int64_t last_row = a.first_row + a.rows - 1;
  int64_t key_begin = 0;
  const int64_t key_end = start_query_block(a, tiles, &key_begin);
  const int64_t pair_row = a.dv_pad * 2;  // elements of one pair row of V
  const int64_t quad_elems = combos.count * pair_row;
  alignas(64) int32_t lut[16] = {};
  for (int c = 0; c < combos.count; ++c)
    lut[(1 << combos.keys[c][0]) | (1 << combos.keys[c][1])] = static_cast<int32_t>(c * pair_row);
  const __m512i lut_v = _mm512_load_si512(lut);
  const __m512i quad_base =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int>(quad_elems)));
  const auto* q = static_cast<const uint16_t*>(a.q_packed);
  const auto* k = static_cast<const uint16_t*>(a.k_packed);
  const auto* v = static_cast<const uint16_t*>(a.v_packed);
  auto* p_pairs = reinterpret_cast<uint32_t*>(a.scratch);                  // [R][16]
  auto* offsets = reinterpret_cast<int32_t*>(a.scratch + R * kSpanQuads);  // [R][16]
  const __m512i quad_keys =
      _mm512_slli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 2);
  const int64_t q_tile_elems = Bf16PairTile::q_tile_elems(a.d);
  const int64_t d_pairs = (a.d + 1) / 2;
  const __m512 scale = _mm512_set1_ps(a.scale);
  const int64_t span_bytes = kSpanQuads * quad_elems * 2;
  const int64_t prefetch_slice = (span_bytes + tiles * 64 - 1) / (tiles * 64) * 64;
  float alpha[R];
  TileKeys keys;
  // The mask in the order of the scores (vector c, lane i = key 4i + c) of row r of the
  // rows starting at `row` of the block.
  auto gather_bias = [&](int64_t row, int rows, int64_t key0, __m512(*bias)[4]) {
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < 4; ++c)
        bias[r][c] = _mm512_i32gather_ps(_mm512_add_epi32(quad_keys, _mm512_set1_epi32(c)),
                                         a.key_bias + (row + r) * a.bias_row_stride + key0, 4);
  };
  __m512 bias[R][4];
  const bool per_row_bias = a.bias_row_stride != 0;
  // Spans wholly before every row's window are skipped.
  for (int64_t key0 = key_begin / kPairSpan * kPairSpan; key0 < key_end; key0 += kPairSpan) {
    const uint16_t* k_cols = k + key0 / KB * Bf16PairTile::k_block_elems(a.d) + key0 % KB * 2;
    const uint16_t* v_span = v + key0 / 4 * quad_elems;
    if (!per_row_bias) gather_bias(0, 1, key0, bias);  // one shared row: once per span
    for (int64_t t = 0; t < tiles; ++t) {
      if (!tile_visible_keys(a, a.first_row + t * R, last_row, key0, kPairSpan, keys)) continue;
      if (per_row_bias) gather_bias(t * R, R, key0, bias);
      if (key0 + kPairSpan < key_end) {
        // The next span's pair rows (read in a data-dependent order the hardware
        // prefetchers do not follow) into L2, a slice per tile: +2-3 % at L = 4096, where
        // the 3x V of 2:4 no longer fits L2.
        const char* next = reinterpret_cast<const char*>(v_span + kSpanQuads * quad_elems);
        for (int64_t b = t * prefetch_slice; b < std::min((t + 1) * prefetch_slice, span_bytes);
             b += 64)
          _mm_prefetch(next + b, _MM_HINT_T1);
      }
      const uint16_t* q_tile = q + t * q_tile_elems;
      __m512 acc[R][4];
      for (int r = 0; r < R; ++r)
        for (int c = 0; c < 4; ++c) acc[r][c] = _mm512_setzero_ps();
      for (int64_t k2 = 0; k2 < d_pairs; ++k2) {
        __m512bh key[4];
        for (int c = 0; c < 4; ++c) key[c] = load_pairs(k_cols + (k2 * KB + c * 16) * 2);
        for (int r = 0; r < R; ++r) {
          const __m512bh qp = broadcast_pair(q_tile + (k2 * R + r) * 2);
          for (int c = 0; c < 4; ++c) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], qp, key[c]);
        }
      }
      pair_tile_epilogue<N, M>(acc, bias, per_row_bias ? 1 : 0, scale, keys, lut_v, quad_base,
                               a.row_max + t * R, a.row_sum_lanes + t * R * kLanes, alpha, p_pairs,
                               offsets);
      for_each_value_tile(a.dv_pad, [&](int64_t col, auto vecs) {
        pv_pairs_tile<decltype(vecs)::value>(p_pairs, offsets, v_span + col * 2, a.dv_pad,
                                             a.o + t * R * a.dv_pad + col, alpha);
      });
    }
  }
  finish_query_block(a, tiles);
}

void pair_combos_fused(const FlashBlockArgs& a) {
  if (a.pattern_m == 4) {
    pair_combos_fused_block<2, 4>(a);
  } else {
    pair_combos_fused_block<1, 2>(a);
  }
}

}  // namespace
}  // namespace dfss::kernels::avx512bf16

namespace dfss::kernels {

const AttentionKernels& attention_kernels_avx512bf16() {
  static const AttentionKernels kernels =
      avx512bf16::with_decode(avx512bf16::make_kernels<avx512bf16::Bf16PairTile>(
          "bf16_attn_fused_r6k128__avx512bf16", "bf16_attn_unfused_r6k128__avx512bf16"));
  return kernels;
}

const AttentionKernels& attention_kernels_avx512bf16_pair_combos() {
  static const AttentionKernels kernels = [] {
    AttentionKernels table = attention_kernels_avx512bf16();
    table.format = PackFormat::bf16_pair_combos;
    table.fused_block = nullptr;  // fused N:M only
    table.unfused_scores = nullptr;
    table.unfused_softmax = nullptr;
    table.unfused_values = nullptr;
    table.sparse_fused_name = "bf16_attn_nm_pairs_fused_r6k64__avx512bf16";
    table.sparse_fused_block = &avx512bf16::pair_combos_fused;
    return table;
  }();
  return kernels;
}

}  // namespace dfss::kernels
