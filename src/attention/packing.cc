#include "attention/packing.h"

#include <emmintrin.h>  // SSE2, part of x86-64

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>

#include "core/debug_assert.h"

namespace dfss::detail {
namespace {

using kernels::kKeyBlock;
using kernels::kTileRows;
using kernels::PackFormat;

// Row (i0, i1, i2) of a view: n elements, converted to float, to dst[0], dst[dst_stride], ...
// The dtype and stride branches sit outside the element loop: packing is on the hot path
// at short sequence lengths.
void copy_row(const ConstTensorView& t, int64_t i0, int64_t i1, int64_t i2, int64_t n, float* dst,
              int64_t dst_stride) {
  const int64_t base = i0 * t.stride[0] + i1 * t.stride[1] + i2 * t.stride[2];
  const int64_t step = t.stride[3];
  if (t.dtype == DType::f32) {
    const float* src = static_cast<const float*>(t.data) + base;
    if (step == 1 && dst_stride == 1) {
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    } else {
      for (int64_t c = 0; c < n; ++c) dst[c * dst_stride] = src[c * step];
    }
  } else {
    const uint16_t* src = static_cast<const uint16_t*>(t.data) + base;
    for (int64_t c = 0; c < n; ++c) dst[c * dst_stride] = bf16_to_float(src[c * step]);
  }
}

// bf16 bit patterns of row (i0, i1, i2), unchanged, for PackFormat::bf16_pairs: element c
// goes to dst[(c / 2) * pair_stride + c % 2], so consecutive pairs share a 32-bit slot.
void copy_row_pairs(const ConstTensorView& t, int64_t i0, int64_t i1, int64_t i2, int64_t n,
                    uint16_t* dst, int64_t pair_stride) {
  const uint16_t* src =
      static_cast<const uint16_t*>(t.data) + i0 * t.stride[0] + i1 * t.stride[1] + i2 * t.stride[2];
  const int64_t step = t.stride[3];
  for (int64_t c = 0; c < n; ++c) dst[(c / 2) * pair_stride + c % 2] = src[c * step];
}

// Rows of a contiguous fp32 view (unit element stride): row r of `rows` starts at
// first + r * row_stride. The fast paths below need exactly this.
bool contiguous_f32_rows(const ConstTensorView& t) {
  return t.dtype == DType::f32 && t.stride[3] == 1;
}

// Writes the 4 x 4 block src[r * src_stride + c] (r, c < 4) transposed:
// dst[c * dst_stride + r]. SSE2, part of x86-64.
inline void transpose_4x4(const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + src_stride);
  __m128 r2 = _mm_loadu_ps(src + 2 * src_stride), r3 = _mm_loadu_ps(src + 3 * src_stride);
  _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
  _mm_storeu_ps(dst, r0);
  _mm_storeu_ps(dst + dst_stride, r1);
  _mm_storeu_ps(dst + 2 * dst_stride, r2);
  _mm_storeu_ps(dst + 3 * dst_stride, r3);
}

// Packs keys [0, present) of a contiguous fp32 head into Kᵀ blocks [d][kKeyBlock], 4 keys
// x 4 dims at a time: the element-wise copy writes one float per 512-byte stride, which
// dominated attention at short sequence lengths.
void pack_keys_f32_transposed(const float* head, int64_t key_stride, int64_t present, int64_t d,
                              int64_t lk_pad, float* out) {
  const int64_t d4 = d / 4 * 4;
  for (int64_t j = 0; j < lk_pad; j += 4) {
    float* block = out + (j / kKeyBlock) * d * kKeyBlock + j % kKeyBlock;
    if (j + 4 <= present) {
      const float* src = head + j * key_stride;
      for (int64_t k = 0; k < d4; k += 4) {
        transpose_4x4(src + k, key_stride, block + k * kKeyBlock, kKeyBlock);
      }
      for (int64_t k = d4; k < d; ++k) {
        for (int64_t r = 0; r < 4; ++r) block[k * kKeyBlock + r] = src[r * key_stride + k];
      }
    } else {
      for (int64_t r = 0; r < 4; ++r) {
        for (int64_t k = 0; k < d; ++k) {
          block[k * kKeyBlock + r] = j + r < present ? head[(j + r) * key_stride + k] : 0.0f;
        }
      }
    }
  }
}

// Packs `rows` query rows of a contiguous fp32 head into tiles [d][kTileRows] (zero rows
// past `rows`), rows 0-3 of a tile by 4 x 4 transposes and rows 4-5 by pairs.
void pack_queries_f32_transposed(const float* first, int64_t row_stride, int64_t rows, int64_t d,
                                 int64_t q_tile_elems, float* out) {
  static_assert(kTileRows == 6, "the fast path interleaves 4 + 2 rows");
  const int64_t d4 = d / 4 * 4;
  for (int64_t i = 0; i < rows; i += kTileRows) {
    float* tile = out + (i / kTileRows) * q_tile_elems;
    const float* src = first + i * row_stride;
    if (i + kTileRows > rows) {
      for (int64_t k = 0; k < d; ++k) {
        for (int64_t r = 0; r < kTileRows; ++r) {
          tile[k * kTileRows + r] = i + r < rows ? src[r * row_stride + k] : 0.0f;
        }
      }
      continue;
    }
    for (int64_t k = 0; k < d4; k += 4) {
      transpose_4x4(src + k, row_stride, tile + k * kTileRows, kTileRows);
      const __m128 r4 = _mm_loadu_ps(src + 4 * row_stride + k);
      const __m128 r5 = _mm_loadu_ps(src + 5 * row_stride + k);
      const __m128 low = _mm_unpacklo_ps(r4, r5), high = _mm_unpackhi_ps(r4, r5);
      _mm_storel_pi(reinterpret_cast<__m64*>(tile + k * kTileRows + 4), low);
      _mm_storeh_pi(reinterpret_cast<__m64*>(tile + (k + 1) * kTileRows + 4), low);
      _mm_storel_pi(reinterpret_cast<__m64*>(tile + (k + 2) * kTileRows + 4), high);
      _mm_storeh_pi(reinterpret_cast<__m64*>(tile + (k + 3) * kTileRows + 4), high);
    }
    for (int64_t k = d4; k < d; ++k) {
      for (int64_t r = 0; r < kTileRows; ++r) tile[k * kTileRows + r] = src[r * row_stride + k];
    }
  }
}

}  // namespace

PackedGeometry packed_geometry(const AttentionProblem& problem, PackFormat format) {
  PackedGeometry g{};
  g.format = format;
  g.lk_pad = round_up(std::max<int64_t>(problem.lk, 1), kKeyBlock);
  g.dv_pad = round_up(problem.dv, kernels::kValueAlign);
  const int64_t d_packed = format == PackFormat::f32 ? problem.d : round_up(problem.d, 2);
  g.k_elems = g.lk_pad * d_packed;
  g.v_elems = (g.lk_pad + 1) * g.dv_pad;  // + a zero row
  if (format == PackFormat::bf16_pair_combos) {
    const kernels::PairCombos* combos = kernels::pair_combos(problem.pattern.n, problem.pattern.m);
    g.v_elems = g.lk_pad / 4 * combos->count * g.dv_pad * 2;
  }
  g.q_tile_elems = d_packed * kTileRows;
  g.elem_bytes = format == PackFormat::f32 ? 4 : 2;
  // The kernels walk whole key blocks and aligned value rows.
  DFSS_DEBUG_ASSERT(g.lk_pad >= problem.lk && g.lk_pad % kKeyBlock == 0);
  DFSS_DEBUG_ASSERT(g.dv_pad >= problem.dv && g.dv_pad % kernels::kValueAlign == 0);
  return g;
}

int64_t keys_present(const AttentionProblem& problem, int64_t b) {
  DFSS_DEBUG_ASSERT(b >= 0 && b < problem.batch);
  const int64_t present = problem.valid_lengths ? problem.valid_lengths[b] : problem.lk;
  DFSS_DEBUG_ASSERT(present >= 0 && present <= problem.lk);
  return present;
}

void pack_keys(const AttentionProblem& p, const PackedGeometry& g, int64_t b, int64_t h,
               void* dst) {
  const int64_t present = keys_present(p, b);
  if (g.format == PackFormat::f32 && contiguous_f32_rows(p.k)) {
    const float* head = static_cast<const float*>(p.k.data) + b * p.k.stride[0] + h * p.k.stride[1];
    pack_keys_f32_transposed(head, p.k.stride[2], present, p.d, g.lk_pad, static_cast<float*>(dst));
  } else if (g.format == PackFormat::f32) {
    // Block kb holds Kᵀ: [d][kKeyBlock].
    auto* out = static_cast<float*>(dst);
    for (int64_t j = 0; j < g.lk_pad; ++j) {
      float* block = out + (j / kKeyBlock) * p.d * kKeyBlock + j % kKeyBlock;
      if (j < present) {
        copy_row(p.k, b, h, j, p.d, block, kKeyBlock);
      } else {
        for (int64_t k = 0; k < p.d; ++k) block[k * kKeyBlock] = 0.0f;
      }
    }
  } else {
    // Block kb holds [d/2][64][2]: the d-pair (2k2, 2k2+1) of key j at (k2*64 + j)*2.
    auto* out = static_cast<uint16_t*>(dst);
    std::fill(out, out + g.k_elems, uint16_t{0});
    const int64_t d_pairs = (p.d + 1) / 2;
    for (int64_t j = 0; j < present; ++j) {
      const int64_t column = g.format == PackFormat::bf16_pair_combos
                                 ? kernels::pair_combos_key_column(j % kKeyBlock)
                                 : j % kKeyBlock;
      uint16_t* block = out + (j / kKeyBlock) * d_pairs * kKeyBlock * 2 + column * 2;
      copy_row_pairs(p.k, b, h, j, p.d, block, kKeyBlock * 2);
    }
  }
}

void pack_values(const AttentionProblem& p, const PackedGeometry& g, int64_t b, int64_t h,
                 void* dst) {
  const int64_t present = keys_present(p, b);
  if (g.format == PackFormat::f32) {
    auto* out = static_cast<float*>(dst);
    for (int64_t j = 0; j < present; ++j) {
      copy_row(p.v, b, h, j, p.dv, out + j * g.dv_pad, 1);
      std::fill(out + j * g.dv_pad + p.dv, out + (j + 1) * g.dv_pad, 0.0f);
    }
    std::fill(out + present * g.dv_pad, out + g.v_elems, 0.0f);
  } else if (g.format == PackFormat::bf16_pair_combos) {
    // Pair row c of quad j4 holds, for column x, keys 4j4 + combos.keys[c][0..1] at
    // ((j4*combos + c)*dv_pad + x)*2 + 0..1; absent keys are 0.
    const kernels::PairCombos& combos = *kernels::pair_combos(p.pattern.n, p.pattern.m);
    auto* out = static_cast<uint16_t*>(dst);
    std::fill(out, out + g.v_elems, uint16_t{0});
    const uint16_t* head =
        static_cast<const uint16_t*>(p.v.data) + b * p.v.stride[0] + h * p.v.stride[1];
    const int64_t step = p.v.stride[3];
    for (int64_t j4 = 0; j4 * 4 < present; ++j4) {
      for (int c = 0; c < combos.count; ++c) {
        uint16_t* row = out + (j4 * combos.count + c) * g.dv_pad * 2;
        const int64_t j0 = j4 * 4 + combos.keys[c][0], j1 = j4 * 4 + combos.keys[c][1];
        if (j1 < present && step == 1) {  // the common case: interleave 8 columns at once
          const uint16_t* src0 = head + j0 * p.v.stride[2];
          const uint16_t* src1 = head + j1 * p.v.stride[2];
          int64_t x = 0;
          for (; x + 8 <= p.dv; x += 8) {
            const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src0 + x));
            const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src1 + x));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(row + x * 2), _mm_unpacklo_epi16(a, b));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(row + x * 2 + 8), _mm_unpackhi_epi16(a, b));
          }
          for (; x < p.dv; ++x) {
            row[x * 2] = src0[x];
            row[x * 2 + 1] = src1[x];
          }
          continue;
        }
        for (int t = 0; t < 2; ++t) {
          const int64_t j = t == 0 ? j0 : j1;
          if (j >= present) continue;
          const uint16_t* src = head + j * p.v.stride[2];
          for (int64_t x = 0; x < p.dv; ++x) row[x * 2 + t] = src[x * step];
        }
      }
    }
  } else {
    // Key pair (2j2, 2j2+1) of column c at (j2*dv_pad + c)*2.
    auto* out = static_cast<uint16_t*>(dst);
    std::fill(out, out + g.v_elems, uint16_t{0});
    for (int64_t j = 0; j < present; ++j) {
      const uint16_t* src = static_cast<const uint16_t*>(p.v.data) + b * p.v.stride[0] +
                            h * p.v.stride[1] + j * p.v.stride[2];
      uint16_t* row = out + (j / 2) * g.dv_pad * 2 + j % 2;
      for (int64_t c = 0; c < p.dv; ++c) row[c * 2] = src[c * p.v.stride[3]];
    }
  }
}

void pack_queries(const AttentionProblem& p, const PackedGeometry& g, int64_t b, int64_t h,
                  int64_t row0, int64_t rows, void* dst) {
  DFSS_DEBUG_ASSERT(row0 >= 0 && rows >= 0 && row0 + rows <= p.lq && h < p.heads);
  const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
  if (g.format == PackFormat::f32 && contiguous_f32_rows(p.q)) {
    const float* first = static_cast<const float*>(p.q.data) + b * p.q.stride[0] +
                         h * p.q.stride[1] + row0 * p.q.stride[2];
    pack_queries_f32_transposed(first, p.q.stride[2], rows, p.d, g.q_tile_elems,
                                static_cast<float*>(dst));
  } else if (g.format == PackFormat::f32) {
    // Tile t holds [d][6].
    auto* out = static_cast<float*>(dst);
    std::fill(out, out + tiles * g.q_tile_elems, 0.0f);
    for (int64_t i = 0; i < rows; ++i)
      copy_row(p.q, b, h, row0 + i, p.d, out + (i / kTileRows) * g.q_tile_elems + i % kTileRows,
               kTileRows);
  } else {
    // Tile t holds [d/2][6][2].
    auto* out = static_cast<uint16_t*>(dst);
    std::fill(out, out + tiles * g.q_tile_elems, uint16_t{0});
    for (int64_t i = 0; i < rows; ++i)
      copy_row_pairs(p.q, b, h, row0 + i, p.d,
                     out + (i / kTileRows) * g.q_tile_elems + (i % kTileRows) * 2, kTileRows * 2);
  }
}

void build_key_bias(const AttentionProblem& p, const PackedGeometry& g, int64_t b, float* bias) {
  const int64_t present = keys_present(p, b);
  for (int64_t j = 0; j < g.lk_pad; ++j) {
    if (j >= present) {
      bias[j] = -std::numeric_limits<float>::infinity();
    } else {
      bias[j] = p.mask_additive ? p.mask_additive[b * p.mask_stride + j] : 0.0f;
    }
  }
}

int64_t build_score_bias(const AttentionProblem& p, const PackedGeometry& g, int64_t b, int64_t h,
                         int64_t row0, int64_t rows, int64_t rows_out, float* bias) {
  // rows_out rows of lk_pad floats are written (one when shared).
  DFSS_DEBUG_ASSERT(rows >= 1 && rows <= rows_out && row0 + rows <= p.lq);
  const int64_t present = keys_present(p, b);
  const bool shared = p.score_mask.stride[2] == 0;
  const int64_t built = shared ? 1 : rows;
  for (int64_t i = 0; i < built; ++i) {
    float* row = bias + i * g.lk_pad;
    for (int64_t j = 0; j < present; ++j) row[j] = p.bias(b, h, row0 + i, j);
    std::fill(row + present, row + g.lk_pad, -std::numeric_limits<float>::infinity());
  }
  if (shared) return 0;
  std::fill(bias + rows * g.lk_pad, bias + rows_out * g.lk_pad, 0.0f);
  return g.lk_pad;
}

void store_log_sum_exp(const AttentionProblem& p, int64_t b, int64_t h, int64_t row0, int64_t rows,
                       const float* row_max, const float* row_sum) {
  if (p.log_sum_exp == nullptr) return;
  float* dst = p.log_sum_exp + (b * p.heads + h) * p.lq + row0;
  for (int64_t i = 0; i < rows; ++i) {
    dst[i] = row_sum[i] == 0.0f ? -std::numeric_limits<float>::infinity()
                                : static_cast<float>(static_cast<double>(row_max[i]) +
                                                     std::log(static_cast<double>(row_sum[i])));
  }
}

void store_rows(const AttentionProblem& p, int64_t b, int64_t h, int64_t row0, int64_t rows,
                const float* o, int64_t dv_pad, const float* row_sum) {
  const TensorView& out = p.out;
  for (int64_t i = 0; i < rows; ++i) {
    // A row with nothing visible has o = 0 and sum 0: zeros, not 0 * inf.
    const bool empty = row_sum && row_sum[i] == 0.0f;
    const float inverse = row_sum && !empty ? 1.0f / row_sum[i] : 1.0f;
    const float* src = o + i * dv_pad;
    const int64_t base = b * out.stride[0] + h * out.stride[1] + (row0 + i) * out.stride[2];
    const int64_t step = out.stride[3];
    if (out.dtype == DType::f32) {
      float* dst = static_cast<float*>(out.data) + base;
      for (int64_t c = 0; c < p.dv; ++c) dst[c * step] = empty ? 0.0f : src[c] * inverse;
    } else {
      uint16_t* dst = static_cast<uint16_t*>(out.data) + base;
      for (int64_t c = 0; c < p.dv; ++c)
        dst[c * step] = float_to_bf16(empty ? 0.0f : src[c] * inverse);
    }
  }
}

void store_zeros(const AttentionProblem& p) {
  if (p.log_sum_exp != nullptr)
    std::fill(p.log_sum_exp, p.log_sum_exp + p.batch * p.heads * p.lq,
              -std::numeric_limits<float>::infinity());
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t h = 0; h < p.heads; ++h)
      for (int64_t i = 0; i < p.lq; ++i)
        for (int64_t c = 0; c < p.dv; ++c) {
          const int64_t offset =
              b * p.out.stride[0] + h * p.out.stride[1] + i * p.out.stride[2] + c * p.out.stride[3];
          if (p.out.dtype == DType::f32) {
            static_cast<float*>(p.out.data)[offset] = 0.0f;
          } else {
            static_cast<uint16_t*>(p.out.data)[offset] = 0;
          }
        }
}

AlignedBuffer allocate_aligned(int64_t bytes) {
  const size_t rounded = static_cast<size_t>(round_up(std::max<int64_t>(bytes, 64), 64));
  void* memory = std::aligned_alloc(64, rounded);
  if (!memory) throw std::bad_alloc();
  DFSS_DEBUG_ASSERT(reinterpret_cast<uintptr_t>(memory) % 64 == 0);
  return AlignedBuffer(static_cast<float*>(memory));
}

}  // namespace dfss::detail
