// The selection step shared by the forward and the backward of topk:K and dsa:K: operands
// packed once per (batch, key/value head), then, per block of query rows, the kept keys of
// each row and their exact fp32 scores. The backward recomputes the forward's kept set
// bit-identically by running this same code.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/packing.h"
#include "attention/problem.h"
#include "kernels/attention/flash_kernels.h"
#include "kernels/selected/selected_kernels.h"
#include "kernels/topk/topk_kernels.h"
#include "topk/topk_select.h"

namespace dfss::detail {

// Sizes of the packed operands of one (batch, key/value head).
struct SelectedLayout {
  const kernels::AttentionKernels* attention;  // the f32-format table, for its packing
  const kernels::TopkKernels* topk;
  const kernels::SelectedKernels* selected;
  PackedGeometry packed;    // K [d][128] blocks and V [Lk_pad + 1][dv_pad], f32
  int64_t block = 1;        // dsa: keys per predictor block
  int64_t pooled_pad = 0;   // dsa: predictor keys, rounded up to 128 (0 for topk)
  int64_t keep_stride = 0;  // kept keys per row at most: min(K, Lk)
  int64_t block_rows = 0;   // query rows per task (kTopkBlockRows, kDsaBlockRows)
  int64_t d = 0;
  // Floats of one packed (batch, key/value head): K, V, and for dsa the pooled keys
  // ([d][128] blocks), their bias and K again in [d][128] blocks (packing scratch).
  int64_t slot_floats() const {
    return packed.k_elems + packed.v_elems +
           (pooled_pad > 0 ? pooled_pad * (d + 1) + packed.k_elems : 0);
  }
};
SelectedLayout selected_layout(const AttentionProblem& problem);

// The operands of one (batch, key/value head), packed by pack_selected_slot into `slot_floats()`
// floats: K, V, and for dsa the pooled predictor keys and their per-batch bias.
struct SlotOperands {
  const float* k = nullptr;  // topk: [d][128] blocks (Q·Kᵀ tiles); dsa: grouped by lanes (key_dots)
  const float* v = nullptr;
  const float* pooled_k = nullptr;
  const float* pooled_bias = nullptr;  // [pooled_pad]: largest key bias of each block
};
SlotOperands pack_selected_slot(const AttentionProblem& problem, const SelectedLayout& layout,
                                int64_t b, int64_t kv, const float* key_bias, float* dst);

// Kept keys of a block of query rows: row r keeps keys[r * stride, + counts[r]) (increasing)
// with exact scores scores[r * stride, ...]. The packed queries stay available for the
// backward.
struct RowBlockSelection {
  int64_t rows = 0, stride = 0;
  std::vector<int32_t> keys;
  std::vector<float> scores;
  std::vector<int64_t> counts;
};

// Per-thread scratch and the selection of one block of rows.
class RowSelector {
 public:
  RowSelector(const AttentionProblem& problem, const SelectedLayout& layout);
  // Rows [row0, row0 + rows) of query head h of batch b (rows <= layout.block_rows);
  // key_bias: the batch's [lk_pad] key bias (build_key_bias).
  void select(int64_t b, int64_t h, int64_t row0, int64_t rows, const SlotOperands& slot,
              const float* key_bias, RowBlockSelection& out);

 private:
  void select_topk_row(int64_t r, int64_t begin, int64_t end, const float* bias,
                       RowBlockSelection& out);
  // dsa, in three passes over the rows so that each chunk of K is read once for all of them:
  // the kept blocks and their key groups of row r, the exact dot products, the scores.
  void choose_dsa_blocks(int64_t r, int64_t begin, int64_t end, const float* bias,
                         const SlotOperands& slot);
  void dsa_dots(int64_t rows, const SlotOperands& slot);
  void score_dsa_row(int64_t r, int64_t begin, int64_t end, const float* bias,
                     RowBlockSelection& out);

  const AttentionProblem& p_;
  const SelectedLayout& layout_;
  AlignedBuffer q_packed_, scores_, bias_, pooled_bias_, dots_;
  int64_t score_stride_ = 0;                  // floats between score rows
  std::vector<int64_t> row_begin_, row_end_;  // the keys each row of the block sees
  // dsa, per row of the block: kept blocks and groups (first keys of `lanes`-key runs).
  int64_t block_stride_ = 0, group_stride_ = 0;
  std::vector<int32_t> groups_, blocks_, selected_blocks_;
  std::vector<int64_t> group_counts_, block_counts_, group_cursor_;
  std::vector<int64_t> group_starts_;  // dsa_dots: where each group's pairs start
  std::vector<const float*> pair_q_;   // dsa_dots: one chunk's (row, group) pairs
  std::vector<int32_t> pair_group_;
  std::vector<float*> pair_out_;
  topk::SelectScratch topk_scratch_;
};

// The keys query row i of batch b sees: [begin, end) (causal rule, window, keys present).
void visible_keys(const AttentionProblem& problem, int64_t b, int64_t i, int64_t* begin,
                  int64_t* end);

}  // namespace dfss::detail
