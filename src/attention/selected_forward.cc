// Forward of topk:K and dsa:K: per block of query rows, the kept keys of each row
// (selected_rows), then softmax and P·V over them alone. K and V (and the predictor keys)
// are packed once per (batch, key/value head), a group of them at a time as in the fused
// dense path; scratch is O(rows x Lk) per thread, never Lq x Lk.
#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "attention/selected.h"
#include "attention/selected_rows.h"
#include "core/debug_assert.h"

namespace dfss::detail {
namespace {

// Packed operands of a group of (batch, key/value head) slots stay within this many bytes.
constexpr int64_t kSelectedGroupBytes = 32 << 20;
// Keys whose rows of V the P·V pass reads for all the rows of a block before moving on:
// 512 x 64 fp32 columns = 128 KiB, within L2, and enough kept keys per (row, chunk) call to
// amortize loading and storing the row's accumulators (128-key chunks were slower).
constexpr int64_t kValueChunkKeys = 512;

}  // namespace

std::string selected_kernel_name(DType dtype, Isa isa, const SparsityPattern& pattern) {
  const std::string kind = pattern.predicted ? "dsa" : "topk";
  const int64_t rows = selected_block_rows(pattern, /*score_mask=*/false);
  return std::string(dtype_name(dtype)) + "_attn_" + kind + "_r" + std::to_string(rows) + "__" +
         isa_name(isa);
}

void run_selected(const AttentionProblem& p) {
  if (p.batch == 0 || p.heads == 0 || p.lq == 0) return;
  if (p.lk == 0) return store_zeros(p);
  const SelectedLayout layout = selected_layout(p);
  const PackedGeometry& g = layout.packed;
  const int64_t slot_floats = layout.slot_floats();
  const int64_t total_slots = p.batch * p.kv_heads;
  const int64_t group_slots =
      std::clamp<int64_t>(kSelectedGroupBytes / (slot_floats * 4), 1, total_slots);
  const int64_t heads_per_slot = p.heads / p.kv_heads;
  const int64_t row_blocks = (p.lq + layout.block_rows - 1) / layout.block_rows;
  const int64_t tasks_per_slot = heads_per_slot * row_blocks;

  AlignedBuffer packed = allocate_aligned(group_slots * slot_floats * 4);
  AlignedBuffer key_bias = allocate_aligned(p.batch * g.lk_pad * 4);
  std::vector<SlotOperands> slots(static_cast<size_t>(group_slots));
  // Per-thread scratch, allocated here so that a bad_alloc reaches the caller.
  struct ThreadScratch {
    RowSelector selector;
    RowBlockSelection selection;
    AlignedBuffer o, row_max, row_sum, weights;
    std::vector<int64_t> cursor{};
  };
  std::vector<ThreadScratch> thread_scratch;
  thread_scratch.reserve(static_cast<size_t>(p.threads));
  for (int t = 0; t < p.threads; ++t) {
    thread_scratch.push_back(
        {RowSelector(p, layout),
         {},
         allocate_aligned(layout.block_rows * g.dv_pad * 4),
         allocate_aligned(layout.block_rows * 4),
         allocate_aligned(layout.block_rows * 4),
         allocate_aligned(layout.block_rows * round_up(layout.keep_stride, 16) * 4)});
    RowBlockSelection& s = thread_scratch.back().selection;
    s.keys.reserve(static_cast<size_t>(layout.block_rows * layout.keep_stride));
    s.scores.reserve(static_cast<size_t>(layout.block_rows * layout.keep_stride));
    s.counts.reserve(static_cast<size_t>(layout.block_rows));
    thread_scratch.back().cursor.resize(static_cast<size_t>(layout.block_rows));
  }

#pragma omp parallel num_threads(p.threads)
  {
    DFSS_DEBUG_ASSERT(omp_get_thread_num() < static_cast<int>(thread_scratch.size()));
    ThreadScratch& mine = thread_scratch[static_cast<size_t>(omp_get_thread_num())];
#pragma omp for schedule(static)
    for (int64_t b = 0; b < p.batch; ++b) build_key_bias(p, g, b, key_bias.get() + b * g.lk_pad);

    for (int64_t group0 = 0; group0 < total_slots; group0 += group_slots) {
      const int64_t group_size = std::min(group_slots, total_slots - group0);
#pragma omp for schedule(static)
      for (int64_t slot = 0; slot < group_size; ++slot) {
        const int64_t bkv = group0 + slot, b = bkv / p.kv_heads;
        slots[static_cast<size_t>(slot)] =
            pack_selected_slot(p, layout, b, bkv % p.kv_heads, key_bias.get() + b * g.lk_pad,
                               packed.get() + slot * slot_floats);
      }
      // Tasks (slot, query head of its group, row block) are independent: any schedule
      // gives the same bits.
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < group_size * tasks_per_slot; ++task) {
        const int64_t slot = task / tasks_per_slot;
        const int64_t bkv = group0 + slot, b = bkv / p.kv_heads;
        const int64_t h = bkv % p.kv_heads * heads_per_slot + task % tasks_per_slot / row_blocks;
        const int64_t row0 = task % row_blocks * layout.block_rows;
        const int64_t rows = std::min(layout.block_rows, p.lq - row0);
        const SlotOperands& operands = slots[static_cast<size_t>(slot)];
        mine.selector.select(b, h, row0, rows, operands, key_bias.get() + b * g.lk_pad,
                             mine.selection);
        const RowBlockSelection& s = mine.selection;
        const int64_t weight_stride = round_up(s.stride, 16);
        for (int64_t r = 0; r < rows; ++r) {
          layout.selected->softmax_weights(s.scores.data() + r * s.stride,
                                           s.counts[static_cast<size_t>(r)],
                                           mine.weights.get() + r * weight_stride,
                                           mine.row_max.get() + r, mine.row_sum.get() + r);
        }
        // P·V a chunk of keys at a time for all the rows, so that the chunk's rows of V are
        // read from memory once per block of rows; each row still sums in key order.
        std::fill(mine.o.get(), mine.o.get() + rows * g.dv_pad, 0.0f);
        std::fill(mine.cursor.begin(), mine.cursor.end(), 0);
        for (int64_t chunk_end = kValueChunkKeys; chunk_end < p.lk + kValueChunkKeys;
             chunk_end += kValueChunkKeys) {
          for (int64_t r = 0; r < rows; ++r) {
            const int32_t* keys = s.keys.data() + r * s.stride;
            int64_t& first = mine.cursor[static_cast<size_t>(r)];
            int64_t last = first;
            while (last < s.counts[static_cast<size_t>(r)] && keys[last] < chunk_end) ++last;
            if (last == first) continue;
            layout.selected->add_values(mine.weights.get() + r * weight_stride + first,
                                        keys + first, last - first, operands.v, g.dv_pad,
                                        mine.o.get() + r * g.dv_pad);
            first = last;
          }
        }
        store_rows(p, b, h, row0, rows, mine.o.get(), g.dv_pad, mine.row_sum.get());
        store_log_sum_exp(p, b, h, row0, rows, mine.row_max.get(), mine.row_sum.get());
      }
    }
  }
}

}  // namespace dfss::detail
