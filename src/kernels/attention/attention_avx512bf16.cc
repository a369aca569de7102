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
inline void qk_tile_bf16(const uint16_t* q_tile, const uint16_t* k_cols, int64_t d,
                         float* s, int64_t s_stride) {
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
inline void pv_tile_bf16(const uint16_t* p_pairs, const uint16_t* v_cols, int64_t dv_pad,
                         float* o, const float* alpha) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r) {
    const __m512 scale = _mm512_set1_ps(alpha ? alpha[r] : 1.0f);
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_mul_ps(_mm512_loadu_ps(o + r * dv_pad + c * 16), scale);
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
    for (int col = 0; col < KB; col += 64) qk_tile_bf16(q_tile, k_block + col * 2, d, s + col, s_stride);
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

}  // namespace
}  // namespace dfss::kernels::avx512bf16

namespace dfss::kernels {

const AttentionKernels& attention_kernels_avx512bf16() {
  static const AttentionKernels kernels =
      avx512bf16::make_kernels<avx512bf16::Bf16PairTile>("bf16_attn_fused_r6k128__avx512bf16",
                                                         "bf16_attn_unfused_r6k128__avx512bf16");
  return kernels;
}

}  // namespace dfss::kernels
