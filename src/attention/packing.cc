#include "attention/packing.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

namespace dfss::detail {
namespace {

using kernels::kKeyBlock;
using kernels::kTileRows;
using kernels::PackFormat;

// Element (i0, i1, i2, i3) of a view as float.
inline float read(const ConstTensorView& t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
  const int64_t offset = i0 * t.stride[0] + i1 * t.stride[1] + i2 * t.stride[2] + i3 * t.stride[3];
  if (t.dtype == DType::f32) return static_cast<const float*>(t.data)[offset];
  return bf16_to_float(static_cast<const uint16_t*>(t.data)[offset]);
}
inline uint16_t read_bf16(const ConstTensorView& t, int64_t i0, int64_t i1, int64_t i2,
                          int64_t i3) {
  const int64_t offset = i0 * t.stride[0] + i1 * t.stride[1] + i2 * t.stride[2] + i3 * t.stride[3];
  return static_cast<const uint16_t*>(t.data)[offset];
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
  g.q_tile_elems = d_packed * kTileRows;
  g.elem_bytes = format == PackFormat::f32 ? 4 : 2;
  return g;
}

int64_t keys_present(const AttentionProblem& problem, int64_t b) {
  return problem.valid_lengths ? problem.valid_lengths[b] : problem.lk;
}

void pack_keys(const AttentionProblem& p, const PackedGeometry& g, int64_t b, int64_t h,
               void* dst) {
  const int64_t present = keys_present(p, b);
  if (g.format == PackFormat::f32) {
    // Block kb holds Kᵀ: [d][64].
    auto* out = static_cast<float*>(dst);
    std::fill(out, out + g.k_elems, 0.0f);
    for (int64_t j = 0; j < present; ++j) {
      float* block = out + (j / kKeyBlock) * p.d * kKeyBlock + j % kKeyBlock;
      for (int64_t k = 0; k < p.d; ++k) block[k * kKeyBlock] = read(p.k, b, h, j, k);
    }
  } else {
    // Block kb holds [d/2][64][2]: the d-pair (2k2, 2k2+1) of key j at (k2*64 + j)*2.
    auto* out = static_cast<uint16_t*>(dst);
    std::fill(out, out + g.k_elems, uint16_t{0});
    const int64_t d_pairs = (p.d + 1) / 2;
    for (int64_t j = 0; j < present; ++j) {
      uint16_t* block = out + (j / kKeyBlock) * d_pairs * kKeyBlock * 2 + (j % kKeyBlock) * 2;
      for (int64_t k = 0; k < p.d; ++k) block[(k / 2) * kKeyBlock * 2 + k % 2] = read_bf16(p.k, b, h, j, k);
    }
  }
}

void pack_values(const AttentionProblem& p, const PackedGeometry& g, int64_t b, int64_t h,
                 void* dst) {
  const int64_t present = keys_present(p, b);
  if (g.format == PackFormat::f32) {
    auto* out = static_cast<float*>(dst);
    std::fill(out, out + g.v_elems, 0.0f);
    for (int64_t j = 0; j < present; ++j)
      for (int64_t c = 0; c < p.dv; ++c) out[j * g.dv_pad + c] = read(p.v, b, h, j, c);
  } else {
    // Key pair (2j2, 2j2+1) of column c at (j2*dv_pad + c)*2.
    auto* out = static_cast<uint16_t*>(dst);
    std::fill(out, out + g.v_elems, uint16_t{0});
    for (int64_t j = 0; j < present; ++j)
      for (int64_t c = 0; c < p.dv; ++c)
        out[((j / 2) * g.dv_pad + c) * 2 + j % 2] = read_bf16(p.v, b, h, j, c);
  }
}

void pack_queries(const AttentionProblem& p, const PackedGeometry& g, int64_t b, int64_t h,
                  int64_t row0, int64_t rows, void* dst) {
  const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
  if (g.format == PackFormat::f32) {
    // Tile t holds [d][6].
    auto* out = static_cast<float*>(dst);
    std::fill(out, out + tiles * g.q_tile_elems, 0.0f);
    for (int64_t i = 0; i < rows; ++i) {
      float* tile = out + (i / kTileRows) * g.q_tile_elems + i % kTileRows;
      for (int64_t k = 0; k < p.d; ++k) tile[k * kTileRows] = read(p.q, b, h, row0 + i, k);
    }
  } else {
    // Tile t holds [d/2][6][2].
    auto* out = static_cast<uint16_t*>(dst);
    std::fill(out, out + tiles * g.q_tile_elems, uint16_t{0});
    for (int64_t i = 0; i < rows; ++i) {
      uint16_t* tile = out + (i / kTileRows) * g.q_tile_elems + (i % kTileRows) * 2;
      for (int64_t k = 0; k < p.d; ++k)
        tile[(k / 2) * kTileRows * 2 + k % 2] = read_bf16(p.q, b, h, row0 + i, k);
    }
  }
}

void build_key_bias(const AttentionProblem& p, const PackedGeometry& g, int64_t b, float* bias,
                    float* bias_log2) {
  const int64_t present = keys_present(p, b);
  for (int64_t j = 0; j < g.lk_pad; ++j) {
    if (j >= present) {
      bias[j] = -std::numeric_limits<float>::infinity();
    } else {
      bias[j] = p.mask_additive ? p.mask_additive[b * p.mask_stride + j] : 0.0f;
    }
    // Softmax runs in log2 units: 2^(x·log2e) = e^x.
    bias_log2[j] = bias[j] * 1.44269504088896341f;
  }
}

void store_rows(const AttentionProblem& p, int64_t b, int64_t h, int64_t row0, int64_t rows,
                const float* o, int64_t dv_pad, const float* row_sum) {
  const TensorView& out = p.out;
  for (int64_t i = 0; i < rows; ++i) {
    float inverse = 1.0f;
    if (row_sum) inverse = row_sum[i] == 0.0f ? 0.0f : 1.0f / row_sum[i];
    const float* src = o + i * dv_pad;
    const int64_t base = b * out.stride[0] + h * out.stride[1] + (row0 + i) * out.stride[2];
    for (int64_t c = 0; c < p.dv; ++c) {
      // A row with nothing visible has o = 0 and sum 0: zeros, not 0 * inf.
      const float value = row_sum && row_sum[i] == 0.0f ? 0.0f : src[c] * inverse;
      if (out.dtype == DType::f32) {
        static_cast<float*>(out.data)[base + c * out.stride[3]] = value;
      } else {
        static_cast<uint16_t*>(out.data)[base + c * out.stride[3]] = float_to_bf16(value);
      }
    }
  }
}

void store_zeros(const AttentionProblem& p) {
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
  return AlignedBuffer(static_cast<float*>(memory));
}

}  // namespace dfss::detail
