// Backward of topk:K and dsa:K through the kept set: the forward's kept keys are
// recomputed by the same selection code (bit-identical), treated as constant, and the
// usual softmax gradients flow through them alone:
//   p_j = e^(s_j - lse), ds_j = p_j (dO·v_j - dO·O), dq = scale Σ ds_j k_j,
//   dk_j += scale ds_j q, dv_j += p_j dO.
// One task per (batch, key/value head) accumulates its dk and dv over its query heads and
// rows in a fixed order, so results are bit-identical for any thread count.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention/element_access.h"
#include "attention/selected.h"
#include "attention/selected_rows.h"
#include "core/debug_assert.h"

namespace dfss::detail {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Row `row` of a [.., rows, columns] view as floats (element access, any strides).
void load_row(const ConstTensorView& t, int64_t b, int64_t h, int64_t row, float* dst) {
  const int64_t base = b * t.stride[0] + h * t.stride[1] + row * t.stride[2];
  for (int64_t c = 0; c < t.shape[3]; ++c) dst[c] = load_element(t, base + c * t.stride[3]);
}

void store_row(const TensorView& t, int64_t b, int64_t h, int64_t row, const double* src) {
  const int64_t base = b * t.stride[0] + h * t.stride[1] + row * t.stride[2];
  for (int64_t c = 0; c < t.shape[3]; ++c) store_element(t, base + c * t.stride[3], src[c]);
}

}  // namespace

void run_selected_backward(const BackwardProblem& bp) {
  const AttentionProblem& p = bp.forward;
  const int64_t slots = p.batch * p.kv_heads, ratio = p.heads / p.kv_heads;
  if (slots == 0) return;
  const SelectedLayout layout = selected_layout(p);
  const PackedGeometry& g = layout.packed;
  const int threads = static_cast<int>(std::min<int64_t>(p.threads, slots));
  const int64_t d = p.d, dv = p.dv;
  struct ThreadScratch {
    ThreadScratch(const AttentionProblem& p, const SelectedLayout& layout)
        : selector(p, layout),
          packed(allocate_aligned(layout.slot_floats() * 4)),
          key_bias(allocate_aligned(layout.packed.lk_pad * 4)) {}
    RowSelector selector;
    RowBlockSelection selection;
    AlignedBuffer packed, key_bias;
    std::vector<float> k, v, dk, dv, q, d_out, out, dq;
    std::vector<double> row;
  };
  std::vector<ThreadScratch> scratch;
  scratch.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    scratch.emplace_back(p, layout);
    ThreadScratch& s = scratch.back();
    s.k.resize(static_cast<size_t>(p.lk * d));
    s.v.resize(static_cast<size_t>(p.lk * dv));
    s.dk.resize(static_cast<size_t>(p.lk * d));
    s.dv.resize(static_cast<size_t>(p.lk * dv));
    s.q.resize(static_cast<size_t>(d));
    s.dq.resize(static_cast<size_t>(d));
    s.d_out.resize(static_cast<size_t>(dv));
    s.out.resize(static_cast<size_t>(dv));
    s.row.resize(static_cast<size_t>(std::max(d, dv)));
  }

#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t slot = 0; slot < slots; ++slot) {
    ThreadScratch& s = scratch[static_cast<size_t>(omp_get_thread_num())];
    const int64_t b = slot / p.kv_heads, kv = slot % p.kv_heads;
    build_key_bias(p, g, b, s.key_bias.get());
    const SlotOperands operands =
        pack_selected_slot(p, layout, b, kv, s.key_bias.get(), s.packed.get());
    for (int64_t j = 0; j < p.lk; ++j) {
      load_row(p.k, b, kv, j, s.k.data() + j * d);
      load_row(p.v, b, kv, j, s.v.data() + j * dv);
    }
    std::fill(s.dk.begin(), s.dk.end(), 0.0f);
    std::fill(s.dv.begin(), s.dv.end(), 0.0f);
    for (int64_t h = kv * ratio; h < (kv + 1) * ratio; ++h) {
      for (int64_t row0 = 0; row0 < p.lq; row0 += layout.block_rows) {
        const int64_t rows = std::min(layout.block_rows, p.lq - row0);
        s.selector.select(b, h, row0, rows, operands, s.key_bias.get(), s.selection);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = row0 + r;
          const float lse = bp.log_sum_exp[(b * p.heads + h) * p.lq + i];
          std::fill(s.dq.begin(), s.dq.end(), 0.0f);
          const int64_t count = s.selection.counts[static_cast<size_t>(r)];
          if (count > 0 && lse != kNegInf) {
            load_row(p.q, b, h, i, s.q.data());
            load_row(bp.d_out, b, h, i, s.d_out.data());
            load_row(bp.out, b, h, i, s.out.data());
            float delta = 0.0f;
            for (int64_t c = 0; c < dv; ++c) delta += s.d_out[c] * s.out[c];
            const int32_t* keys = s.selection.keys.data() + r * s.selection.stride;
            const float* scores = s.selection.scores.data() + r * s.selection.stride;
            for (int64_t t = 0; t < count; ++t) {
              const float weight = std::exp(scores[t] - lse);
              if (weight == 0.0f) continue;  // a masked key: no gradient, no 0 * inf
              const float* v_row = s.v.data() + int64_t{keys[t]} * dv;
              float dp = 0.0f;
              for (int64_t c = 0; c < dv; ++c) dp += s.d_out[c] * v_row[c];
              const float ds = weight * (dp - delta) * p.scale;
              const float* k_row = s.k.data() + int64_t{keys[t]} * d;
              float* dk_row = s.dk.data() + int64_t{keys[t]} * d;
              float* dv_row = s.dv.data() + int64_t{keys[t]} * dv;
              for (int64_t c = 0; c < d; ++c) {
                s.dq[c] += ds * k_row[c];
                dk_row[c] += ds * s.q[c];
              }
              for (int64_t c = 0; c < dv; ++c) dv_row[c] += weight * s.d_out[c];
            }
          }
          std::copy(s.dq.begin(), s.dq.end(), s.row.begin());
          store_row(bp.dq, b, h, i, s.row.data());
        }
      }
    }
    for (int64_t j = 0; j < p.lk; ++j) {
      std::copy(s.dk.begin() + j * d, s.dk.begin() + (j + 1) * d, s.row.begin());
      store_row(bp.dk, b, kv, j, s.row.data());
      std::copy(s.dv.begin() + j * dv, s.dv.begin() + (j + 1) * dv, s.row.begin());
      store_row(bp.dv, b, kv, j, s.row.data());
    }
  }
}

void run_selected_backward_reference(const BackwardProblem& bp) {
  const AttentionProblem& p = bp.forward;
  const int64_t slots = p.batch * p.kv_heads, ratio = p.heads / p.kv_heads;
  const int64_t d = p.d, dv = p.dv;
#pragma omp parallel num_threads(p.threads)
  {
    std::vector<int64_t> keys;
    std::vector<float> scores, q(static_cast<size_t>(d)), d_out(static_cast<size_t>(dv)),
        out(static_cast<size_t>(dv)), key(static_cast<size_t>(d)), value(static_cast<size_t>(dv));
    std::vector<double> dk, dv_acc, dq(static_cast<size_t>(d));
#pragma omp for schedule(static)
    for (int64_t slot = 0; slot < slots; ++slot) {
      const int64_t b = slot / p.kv_heads, kv = slot % p.kv_heads;
      dk.assign(static_cast<size_t>(p.lk * d), 0.0);
      dv_acc.assign(static_cast<size_t>(p.lk * dv), 0.0);
      for (int64_t h = kv * ratio; h < (kv + 1) * ratio; ++h) {
        for (int64_t i = 0; i < p.lq; ++i) {
          selected_reference_row(p, b, h, i, keys, scores);
          std::fill(dq.begin(), dq.end(), 0.0);
          double row_max = -std::numeric_limits<double>::infinity();
          for (float x : scores)
            if (std::isnan(x) || x > row_max) row_max = x;
          if (row_max != -std::numeric_limits<double>::infinity()) {
            double denominator = 0.0;
            for (float x : scores) denominator += std::exp(double{x} - row_max);
            const double lse = row_max + std::log(denominator);
            load_row(p.q, b, h, i, q.data());
            load_row(bp.d_out, b, h, i, d_out.data());
            load_row(bp.out, b, h, i, out.data());
            double delta = 0.0;
            for (int64_t c = 0; c < dv; ++c) delta += double{d_out[c]} * out[c];
            for (size_t t = 0; t < keys.size(); ++t) {
              const double weight = std::exp(double{scores[t]} - lse);
              if (weight == 0.0) continue;
              load_row(p.k, b, kv, keys[t], key.data());
              load_row(p.v, b, kv, keys[t], value.data());
              double dp = 0.0;
              for (int64_t c = 0; c < dv; ++c) dp += double{d_out[c]} * value[c];
              const double ds = weight * (dp - delta) * p.scale;
              for (int64_t c = 0; c < d; ++c) {
                dq[c] += ds * key[c];
                dk[keys[t] * d + c] += ds * q[c];
              }
              for (int64_t c = 0; c < dv; ++c) dv_acc[keys[t] * dv + c] += weight * d_out[c];
            }
          }
          store_row(bp.dq, b, h, i, dq.data());
        }
      }
      for (int64_t j = 0; j < p.lk; ++j) {
        store_row(bp.dk, b, kv, j, dk.data() + j * d);
        store_row(bp.dv, b, kv, j, dv_acc.data() + j * dv);
      }
    }
  }
}

}  // namespace dfss::detail
