#include "attention/backward_packing.h"

#include <algorithm>
#include <limits>

#include "attention/element_access.h"
#include "attention/packing.h"
#include "kernels/attention_backward/backward_kernels.h"

namespace dfss::detail {
namespace {

using kernels::kKeyBlock;
using kernels::kTileRows;

// Element (i0, i1, i2, 0) of a view; consecutive elements are stride[3] apart.
int64_t row_offset(const auto& t, int64_t i0, int64_t i1, int64_t i2) {
  return i0 * t.stride[0] + i1 * t.stride[1] + i2 * t.stride[2];
}

// Writes `n` floats to a gradient row, narrowing to bf16 where it holds bf16.
void store_row(const TensorView& t, int64_t offset, int64_t n, const float* src, float scale) {
  const int64_t step = t.stride[3];
  if (t.dtype == DType::f32) {
    float* dst = static_cast<float*>(t.data) + offset;
    for (int64_t c = 0; c < n; ++c) dst[c * step] = src[c] * scale;
  } else {
    uint16_t* dst = static_cast<uint16_t*>(t.data) + offset;
    for (int64_t c = 0; c < n; ++c) dst[c * step] = float_to_bf16(src[c] * scale);
  }
}

}  // namespace

BackwardGeometry backward_geometry(const AttentionProblem& p) {
  BackwardGeometry g{};
  g.block_keys = kernels::backward_block_keys(p.pattern.m);
  g.key_blocks = (p.lk + g.block_keys - 1) / g.block_keys;
  g.d = p.d;
  g.dv = p.dv;
  g.d_pad = round_up(p.d, kernels::kValueAlign);
  g.dv_pad = round_up(p.dv, kernels::kValueAlign);
  g.lq_pad = round_up(std::max<int64_t>(p.lq, 1), kernels::kBackwardRows);
  g.kv_floats = g.key_blocks * kKeyBlock * (p.d + g.d_pad + p.dv);
  g.head_floats = g.lq_pad * (p.d + g.d_pad + p.dv + g.dv_pad + 2);
  return g;
}

PackedKeyHead key_head_at(const BackwardGeometry& g, float* base) {
  const int64_t keys = g.key_blocks * kKeyBlock;
  PackedKeyHead head;
  head.k_blocks = base;
  head.k_rows = head.k_blocks + keys * g.d;
  head.v_blocks = head.k_rows + keys * g.d_pad;
  return head;
}

PackedQueryHead query_head_at(const BackwardGeometry& g, float* base) {
  PackedQueryHead head;
  head.q_tiles = base;
  head.q_rows = head.q_tiles + g.lq_pad * g.d;
  head.do_tiles = head.q_rows + g.lq_pad * g.d_pad;
  head.do_rows = head.do_tiles + g.lq_pad * g.dv;
  head.lse = head.do_rows + g.lq_pad * g.dv_pad;
  head.delta = head.lse + g.lq_pad;
  return head;
}

void pack_key_head(const BackwardProblem& problem, const BackwardGeometry& g, int64_t b,
                   int64_t kv_head, const PackedKeyHead& dst) {
  const AttentionProblem& p = problem.forward;
  std::fill(dst.k_blocks, dst.k_blocks + g.kv_floats, 0.0f);
  // Keys past valid_lengths[b] stay 0: they are never read, as in the forward.
  const int64_t present = keys_present(p, b);
  for (int64_t j = 0; j < present; ++j) {
    const int64_t block = j / g.block_keys, column = j % g.block_keys;
    float* k_t = dst.k_blocks + block * g.d * kKeyBlock + column;
    float* k_row = dst.k_rows + (block * kKeyBlock + column) * g.d_pad;
    const int64_t k_at = row_offset(p.k, b, kv_head, j);
    for (int64_t c = 0; c < g.d; ++c) {
      const float value = load_element(p.k, k_at + c * p.k.stride[3]);
      k_t[c * kKeyBlock] = value;
      k_row[c] = value;
    }
    float* v_t = dst.v_blocks + block * g.dv * kKeyBlock + column;
    const int64_t v_at = row_offset(p.v, b, kv_head, j);
    for (int64_t c = 0; c < g.dv; ++c)
      v_t[c * kKeyBlock] = load_element(p.v, v_at + c * p.v.stride[3]);
  }
}

void pack_query_head(const BackwardProblem& problem, const BackwardGeometry& g, int64_t b,
                     int64_t h, const PackedQueryHead& dst) {
  const AttentionProblem& p = problem.forward;
  std::fill(dst.q_tiles, dst.q_tiles + g.head_floats, 0.0f);
  std::fill(dst.lse, dst.lse + g.lq_pad, -std::numeric_limits<float>::infinity());
  const float* lse = problem.log_sum_exp + (b * p.heads + h) * p.lq;
  for (int64_t i = 0; i < p.lq; ++i) {
    const int64_t tile = i / kTileRows, lane = i % kTileRows;
    const int64_t q_at = row_offset(p.q, b, h, i);
    for (int64_t c = 0; c < g.d; ++c) {
      const float value = load_element(p.q, q_at + c * p.q.stride[3]);
      dst.q_tiles[(tile * g.d + c) * kTileRows + lane] = value;
      dst.q_rows[i * g.d_pad + c] = value;
    }
    const int64_t do_at = row_offset(problem.d_out, b, h, i);
    const int64_t o_at = row_offset(problem.out, b, h, i);
    double delta = 0.0;  // O(d) per row: double costs nothing and keeps D exact to fp32
    for (int64_t c = 0; c < g.dv; ++c) {
      const float value = load_element(problem.d_out, do_at + c * problem.d_out.stride[3]);
      dst.do_tiles[(tile * g.dv + c) * kTileRows + lane] = value;
      dst.do_rows[i * g.dv_pad + c] = value;
      delta +=
          static_cast<double>(value) * load_element(problem.out, o_at + c * problem.out.stride[3]);
    }
    dst.lse[i] = lse[i];
    dst.delta[i] = static_cast<float>(delta);
  }
}

void build_backward_key_bias(const AttentionProblem& p, const BackwardGeometry& g, int64_t b,
                             float* bias) {
  const int64_t present = keys_present(p, b);
  for (int64_t block = 0; block < g.key_blocks; ++block) {
    for (int64_t column = 0; column < kKeyBlock; ++column) {
      const int64_t j = block * g.block_keys + column;
      float& value = bias[block * kKeyBlock + column];
      if (column >= g.block_keys || j >= present) {
        value = -std::numeric_limits<float>::infinity();
      } else {
        value = p.mask_additive ? p.mask_additive[b * p.mask_stride + j] : 0.0f;
      }
    }
  }
}

void store_key_gradients(const BackwardProblem& problem, const BackwardGeometry& g, int64_t b,
                         int64_t kv_head, int64_t key0, const float* dk, const float* dv) {
  const AttentionProblem& p = problem.forward;
  const int64_t keys = std::min(g.block_keys, p.lk - key0);
  for (int64_t j = 0; j < keys; ++j) {
    store_row(problem.dk, row_offset(problem.dk, b, kv_head, key0 + j), g.d, dk + j * g.d_pad,
              p.scale);
    store_row(problem.dv, row_offset(problem.dv, b, kv_head, key0 + j), g.dv, dv + j * g.dv_pad,
              1.0f);
  }
}

void store_query_gradients(const BackwardProblem& problem, const BackwardGeometry& g, int64_t b,
                           int64_t h, int64_t row0, int64_t rows, const float* dq) {
  for (int64_t i = 0; i < rows; ++i)
    store_row(problem.dq, row_offset(problem.dq, b, h, row0 + i), g.d, dq + i * g.d_pad,
              problem.forward.scale);
}

}  // namespace dfss::detail
