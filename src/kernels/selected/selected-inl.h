// The key-selecting attention kernels, written once and compiled per ISA (DFSS_KERNEL_NS
// and the vec_<isa>-inl.h operations, as for the attention kernels). Included after
// attention-inl.h, whose fp32 Q·Kᵀ tile (F32Tile::scores) it reuses, so that scores are the
// same fma chain as every other path's.

namespace dfss::kernels::DFSS_KERNEL_NS {

inline constexpr float kSelectedLog2e = 1.44269504088896341f;

// Key block outer, query tiles inner: a packed K block (32 KiB at d = 64) is read once from
// memory for all the tiles of the block of rows. Flattened: GCC 12 kept the accumulators of
// an out-of-line qk_tile_f32 on the stack (measured: Q·Kᵀ at half the fused kernel's rate).
[[gnu::flatten]] inline void selected_score_tiles(const float* q_tiles, int64_t tiles,
                                                  const float* k_packed, int64_t d,
                                                  int64_t key_blocks, float* scores,
                                                  int64_t stride) {
  for (int64_t kb = 0; kb < key_blocks; ++kb)
    for (int64_t t = 0; t < tiles; ++t)
      F32Tile::scores(q_tiles + t * F32Tile::q_tile_elems(d),
                      k_packed + kb * F32Tile::k_block_elems(d), d,
                      scores + t * R * stride + kb * KB, stride);
}

inline void selected_finish_scores(float* row, const float* bias, float scale, int64_t begin,
                                   int64_t end, int64_t length) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  std::fill(row, row + begin, kNegInf);
  const Reg scale_v = vset1(scale);
  int64_t j = begin;
  for (; j + kLanes <= end; j += kLanes)
    vstore(row + j, vfmadd(vload(row + j), scale_v, vload(bias + j)));
  for (; j < end; ++j) row[j] = std::fma(row[j], scale, bias[j]);
  std::fill(row + std::max(begin, end), row + length, kNegInf);
}

// dst[t] = fma(src[t], scale, bias[t]): the kept keys' scores from their dot products.
inline void selected_scale_add_bias(const float* src, const float* bias, float scale, int64_t count,
                                    float* dst) {
  const Reg scale_v = vset1(scale);
  int64_t t = 0;
  for (; t + kLanes <= count; t += kLanes)
    vstore(dst + t, vfmadd(vload(src + t), scale_v, vload(bias + t)));
  for (; t < count; ++t) dst[t] = std::fma(src[t], scale, bias[t]);
}

// Keys per group of the dsa layout (key_dots): 16 on every ISA, the default block.
inline constexpr int kGroupKeys = 16;
inline constexpr int kGroupVectors = kGroupKeys / kLanes;

// One group of keys against N query rows (a run of pairs that share the group): each load
// of K serves N rows, and the N * kGroupVectors fma chains hide the fma latency.
template <int N>
inline void selected_group_rows_dots(const float* const* q, int64_t q_stride, const float* column,
                                     int64_t d, float* const* out) {
  Reg acc[N][kGroupVectors];  // unrolled loops: GCC keeps acc in registers
#pragma GCC unroll 8
  for (int n = 0; n < N; ++n)
#pragma GCC unroll 2
    for (int v = 0; v < kGroupVectors; ++v) acc[n][v] = vzero();
  for (int64_t c = 0; c < d; ++c) {
    Reg k[kGroupVectors];
#pragma GCC unroll 2
    for (int v = 0; v < kGroupVectors; ++v) k[v] = vload(column + c * kGroupKeys + v * kLanes);
#pragma GCC unroll 8
    for (int n = 0; n < N; ++n) {
      const Reg qn = vbroadcast(q[n] + c * q_stride);
#pragma GCC unroll 2
      for (int v = 0; v < kGroupVectors; ++v) acc[n][v] = vfmadd(qn, k[v], acc[n][v]);
    }
  }
#pragma GCC unroll 8
  for (int n = 0; n < N; ++n)
#pragma GCC unroll 2
    for (int v = 0; v < kGroupVectors; ++v) vstore(out[n] + v * kLanes, acc[n][v]);
}

// N (query row, group) pairs of different groups at once: N * kGroupVectors fma chains.
template <int N>
inline void selected_pair_dots(const float* const* q, int64_t q_stride, const float* k_grouped,
                               int64_t d, const int32_t* groups, float* const* out) {
  const float* column[N];
  Reg acc[N][kGroupVectors];
#pragma GCC unroll 8
  for (int n = 0; n < N; ++n) {
    column[n] = k_grouped + int64_t{groups[n]} * d;
#pragma GCC unroll 2
    for (int v = 0; v < kGroupVectors; ++v) acc[n][v] = vzero();
  }
  for (int64_t c = 0; c < d; ++c) {
#pragma GCC unroll 8
    for (int n = 0; n < N; ++n) {
      const Reg qn = vbroadcast(q[n] + c * q_stride);
#pragma GCC unroll 2
      for (int v = 0; v < kGroupVectors; ++v)
        acc[n][v] = vfmadd(qn, vload(column[n] + c * kGroupKeys + v * kLanes), acc[n][v]);
    }
  }
#pragma GCC unroll 8
  for (int n = 0; n < N; ++n)
#pragma GCC unroll 2
    for (int v = 0; v < kGroupVectors; ++v) vstore(out[n] + v * kLanes, acc[n][v]);
}

inline void selected_key_dots(const float* const* q, int64_t q_stride, const float* k_grouped,
                              int64_t d, const int32_t* groups, int64_t count, float* const* out) {
  // Runs of at least kShared pairs of one group: one load of K per step for all of them
  // (up to kRows rows per call). Shorter runs are batched, kMixed pairs at a time, with
  // pairs of other groups (then K is loaded per pair, but from L1: the caller orders the
  // pairs by group).
  // (At most 6 rows or 4 mixed pairs: their pointers stay in registers.)
  constexpr int kRows = 6, kShared = 3, kMixed = 4;
  using RowsDots = void (*)(const float* const*, int64_t, const float*, int64_t, float* const*);
  static constexpr RowsDots kRowsDots[kRows + 1] = {nullptr,
                                                    &selected_group_rows_dots<1>,
                                                    &selected_group_rows_dots<2>,
                                                    &selected_group_rows_dots<3>,
                                                    &selected_group_rows_dots<4>,
                                                    &selected_group_rows_dots<5>,
                                                    &selected_group_rows_dots<6>};
  using PairDots =
      void (*)(const float* const*, int64_t, const float*, int64_t, const int32_t*, float* const*);
  static constexpr PairDots kPairDots[kMixed] = {nullptr, &selected_pair_dots<1>,
                                                 &selected_pair_dots<2>, &selected_pair_dots<3>};
  const float* left_q[kMixed];
  int32_t left_group[kMixed];
  float* left_out[kMixed];
  int left = 0;
  for (int64_t g = 0; g < count;) {
    int64_t run = 1;
    while (g + run < count && groups[g + run] == groups[g]) ++run;
    if (run >= kShared) {
      const float* column = k_grouped + int64_t{groups[g]} * d;
      for (; run > 0;) {
        const int64_t n = std::min<int64_t>(run, kRows);
        kRowsDots[n](q + g, q_stride, column, d, out + g);
        run -= n;
        g += n;
      }
      continue;
    }
    for (; run > 0; --run, ++g) {
      left_q[left] = q[g];
      left_group[left] = groups[g];
      left_out[left] = out[g];
      if (++left == kMixed) {
        selected_pair_dots<kMixed>(left_q, q_stride, k_grouped, d, left_group, left_out);
        left = 0;
      }
    }
  }
  if (left > 0) kPairDots[left](left_q, q_stride, k_grouped, d, left_group, left_out);
}

// o[C vectors] += Σ_j weights[j] v_{keys[j]} over the columns [c0, c0 + C * kLanes), in
// the order of the keys.
template <int C>
inline void selected_value_columns(const float* weights, const int32_t* keys, int64_t count,
                                   const float* v_packed, int64_t dv_pad, int64_t c0, float* o) {
  // Unrolled up front so that GCC keeps acc in registers (otherwise it lived on the stack:
  // a store-to-load round trip per key and vector).
  Reg acc[C];
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) acc[c] = vload(o + c0 + c * kLanes);
  for (int64_t j = 0; j < count; ++j) {
    if (weights[j] == 0.0f) continue;  // masked keys weigh nothing: no 0 * inf from V
    const Reg w = vbroadcast(weights + j);
    const float* row = v_packed + int64_t{keys[j]} * dv_pad + c0;
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[c] = vfmadd(w, vload(row + c * kLanes), acc[c]);
  }
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) vstore(o + c0 + c * kLanes, acc[c]);
}

inline void selected_add_values(const float* weights, const int32_t* keys, int64_t count,
                                const float* v_packed, int64_t dv_pad, float* o) {
  // Up to 8 value vectors held in registers per pass over the keys.
  using Columns =
      void (*)(const float*, const int32_t*, int64_t, const float*, int64_t, int64_t, float*);
  static constexpr Columns kColumns[8] = {&selected_value_columns<1>, &selected_value_columns<2>,
                                          &selected_value_columns<3>, &selected_value_columns<4>,
                                          &selected_value_columns<5>, &selected_value_columns<6>,
                                          &selected_value_columns<7>, &selected_value_columns<8>};
  for (int64_t c0 = 0; c0 < dv_pad;) {
    const int64_t vectors = std::min<int64_t>(8, (dv_pad - c0 + kLanes - 1) / kLanes);
    kColumns[vectors - 1](weights, keys, count, v_packed, dv_pad, c0, o);
    c0 += vectors * kLanes;
  }
}

inline void selected_softmax_weights(const float* scores, int64_t count, float* weights,
                                     float* row_max, float* row_sum) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  float max = kNegInf;
  {
    // Vector maximum; a NaN anywhere makes the maximum NaN (then every weight is NaN).
    constexpr uint32_t kAllLanes = (uint32_t{1} << kLanes) - 1;
    Reg max_v = vset1(kNegInf);
    uint32_t ordered = kAllLanes;  // s >= s fails for NaN only
    int64_t j = 0;
    for (; j + kLanes <= count; j += kLanes) {
      const Reg s = vload(scores + j);
      max_v = vmax(max_v, s);
      ordered &= vmask_ge(s, s);
    }
    // Reduced through memory: GCC 12 warns falsely inside the AVX-512 lane shuffles here.
    float lane_max[kLanes];
    vstore(lane_max, max_v);
    max = *std::max_element(lane_max, lane_max + kLanes);
    bool nan = ordered != kAllLanes;
    for (; j < count; ++j) {
      max = std::max(max, scores[j]);
      nan = nan || std::isnan(scores[j]);
    }
    if (nan) max = std::numeric_limits<float>::quiet_NaN();
  }
  *row_max = max;
  if (max == kNegInf) {  // nothing visible: every weight 0
    std::fill(weights, weights + count, 0.0f);
    *row_sum = 0.0f;
    return;
  }
  const int64_t padded = (count + kLanes - 1) / kLanes * kLanes;
  std::copy(scores, scores + count, weights);
  std::fill(weights + count, weights + padded, kNegInf);
  const Reg shift = vset1(max), log2e = vset1(kSelectedLog2e);
  Reg sum = vzero();
  for (int64_t j = 0; j < padded; j += kLanes) {
    const Reg w = vexp2(vmul(vsub(vload(weights + j), shift), log2e));
    vstore(weights + j, w);
    sum = vadd(sum, w);
  }
  *row_sum = vreduce_add(sum);
}

inline SelectedKernels make_selected_kernels(const char* name) {
  return {name,
          kGroupKeys,
          &selected_score_tiles,
          &selected_finish_scores,
          &selected_scale_add_bias,
          &selected_key_dots,
          &selected_softmax_weights,
          &selected_add_values};
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
