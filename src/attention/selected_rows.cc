#include "attention/selected_rows.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "attention/selected.h"
#include "core/debug_assert.h"

namespace dfss::detail {
namespace {

using kernels::kKeyBlock;
using kernels::kTileRows;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// dsa_dots orders the (row, group) pairs of this many keys at a time.
constexpr int64_t kDsaChunkKeys = 4096;

// Row stride of the score rows: a multiple of 4 KiB would put every row of a tile in the
// same L1 set (measured: the Q·Kᵀ tiles ran at half speed), so one cache line is added.
int64_t padded_score_stride(int64_t columns) {
  return columns % 1024 == 0 ? columns + 16 : columns;
}

}  // namespace

SelectedLayout selected_layout(const AttentionProblem& p) {
  SelectedLayout layout;
  // The f32 tables (bf16 inputs widened on packing): rows of K and V are gathered singly.
  layout.attention = &kernels::attention_kernels(p.isa, p.dtype, /*sparse=*/true);
  layout.topk = &kernels::topk_kernels(p.isa);
  layout.selected = &kernels::selected_kernels(p.isa);
  layout.packed = packed_geometry(p, layout.attention->format);
  DFSS_DEBUG_ASSERT(layout.packed.format == kernels::PackFormat::f32);
  layout.d = p.d;
  if (p.pattern.predicted) {
    layout.block = p.pattern.block;
    const int64_t blocks = (p.lk + layout.block - 1) / layout.block;
    layout.pooled_pad = round_up(std::max<int64_t>(blocks, 1), kKeyBlock);
  }
  layout.keep_stride = std::max<int64_t>(1, std::min(p.pattern.keep, p.lk));
  layout.block_rows = selected_block_rows(p.pattern, p.score_mask.data != nullptr);
  return layout;
}

SlotOperands pack_selected_slot(const AttentionProblem& p, const SelectedLayout& layout, int64_t b,
                                int64_t kv, const float* key_bias, float* dst) {
  SlotOperands slot;
  float* v = dst + layout.packed.k_elems;
  pack_values(p, layout.packed, b, kv, v);
  slot.v = v;
  if (!p.pattern.predicted) {
    pack_keys(p, layout.packed, b, kv, dst);
    slot.k = dst;
    return slot;
  }
  float* pooled = v + layout.packed.v_elems;
  float* pooled_bias = pooled + layout.pooled_pad * p.d;
  float* k = pooled_bias + layout.pooled_pad;  // [d][128] blocks, regrouped below
  pack_keys(p, layout.packed, b, kv, k);
  // dsa reads single groups of keys: lanes keys with their d values in one run.
  const int64_t lanes = layout.selected->lanes;
  for (int64_t group = 0; group < layout.packed.lk_pad / lanes; ++group) {
    const float* from = k + group * lanes / kKeyBlock * p.d * kKeyBlock + group * lanes % kKeyBlock;
    float* to = dst + group * p.d * lanes;
    for (int64_t x = 0; x < p.d; ++x) std::copy_n(from + x * kKeyBlock, lanes, to + x * lanes);
  }
  slot.k = dst;
  // Predictor keys: the fp32 mean of each block's present keys, summed in key order; the
  // largest key bias of the block (-inf for blocks without a present key).
  const int64_t present = keys_present(p, b), block = layout.block;
  std::fill(pooled, pooled + layout.pooled_pad * p.d, 0.0f);
  for (int64_t c = 0; c < layout.pooled_pad; ++c) {
    const int64_t first = c * block, last = std::min(present, first + block);
    float* column = pooled + c / kKeyBlock * p.d * kKeyBlock + c % kKeyBlock;
    float bias = kNegInf;
    for (int64_t j = first; j < last; ++j) bias = std::max(bias, key_bias[j]);
    pooled_bias[c] = bias;
    if (first >= last) continue;
    const auto count = static_cast<float>(last - first);
    for (int64_t x = 0; x < p.d; ++x) {
      float sum = 0.0f;
      for (int64_t j = first; j < last; ++j)
        sum += k[j / kKeyBlock * p.d * kKeyBlock + x * kKeyBlock + j % kKeyBlock];
      column[x * kKeyBlock] = sum / count;
    }
  }
  slot.pooled_k = pooled;
  slot.pooled_bias = pooled_bias;
  return slot;
}

void visible_keys(const AttentionProblem& p, int64_t b, int64_t i, int64_t* begin, int64_t* end) {
  int64_t last = keys_present(p, b);
  if (p.causal) last = std::min(last, p.causal_last_key(i) + 1);
  *end = std::max<int64_t>(last, 0);
  *begin = std::min(p.first_key(i), *end);
}

RowSelector::RowSelector(const AttentionProblem& p, const SelectedLayout& layout)
    : p_(p), layout_(layout) {
  const int64_t rows_pad = round_up(layout.block_rows, kTileRows);
  score_stride_ =
      padded_score_stride(p.pattern.predicted ? layout.pooled_pad : layout.packed.lk_pad);
  q_packed_ = allocate_aligned(rows_pad / kTileRows * layout.packed.q_tile_elems * 4);
  row_begin_.resize(static_cast<size_t>(rows_pad));
  row_end_.resize(static_cast<size_t>(rows_pad));
  scores_ = allocate_aligned(rows_pad * score_stride_ * 4);
  if (p.score_mask.data != nullptr) bias_ = allocate_aligned(rows_pad * layout.packed.lk_pad * 4);
  if (p.pattern.predicted) {
    pooled_bias_ = allocate_aligned(layout.pooled_pad * 4);
    // Each kept block spans at most block / lanes + 1 groups of keys.
    block_stride_ = layout.keep_stride / layout.block + 1;
    group_stride_ = block_stride_ * (layout.block / layout.selected->lanes + 2);
    groups_.resize(static_cast<size_t>(rows_pad * group_stride_));
    dots_ = allocate_aligned(rows_pad * group_stride_ * layout.selected->lanes * 4);
    blocks_.resize(static_cast<size_t>(layout.pooled_pad));
    selected_blocks_.resize(static_cast<size_t>(rows_pad * block_stride_));
    group_counts_.resize(static_cast<size_t>(rows_pad));
    pair_q_.resize(static_cast<size_t>(rows_pad * group_stride_));
    pair_group_.resize(static_cast<size_t>(rows_pad * group_stride_));
    pair_out_.resize(static_cast<size_t>(rows_pad * group_stride_));
    block_counts_.resize(static_cast<size_t>(rows_pad));
    group_starts_.resize(static_cast<size_t>(kDsaChunkKeys / layout.selected->lanes + 1));
    group_cursor_.reserve(static_cast<size_t>(rows_pad));  // no allocation in select()
  }
}

void RowSelector::select(int64_t b, int64_t h, int64_t row0, int64_t rows, const SlotOperands& slot,
                         const float* key_bias, RowBlockSelection& out) {
  DFSS_DEBUG_ASSERT(rows > 0 && rows <= layout_.block_rows);
  const SelectedLayout& layout = layout_;
  const PackedGeometry& g = layout.packed;
  out.rows = rows;
  out.stride = layout.keep_stride;
  out.keys.resize(static_cast<size_t>(rows * out.stride));
  out.scores.resize(static_cast<size_t>(rows * out.stride));
  out.counts.assign(static_cast<size_t>(rows), 0);
  pack_queries(p_, g, b, h, row0, rows, q_packed_.get());

  // Q·Kᵀ dot products of the block with the keys (topk) or predictor keys (dsa) that some
  // row of it sees: the causal rule and the window leave whole key blocks out (then never
  // read: the per-row passes look at [begin, end) only).
  int64_t first_seen = INT64_MAX, last_seen = 0;
  int64_t* begin = row_begin_.data();
  int64_t* end = row_end_.data();
  for (int64_t r = 0; r < rows; ++r) {
    visible_keys(p_, b, row0 + r, &begin[r], &end[r]);
    if (begin[r] >= end[r]) continue;
    first_seen = std::min(first_seen, begin[r]);
    last_seen = std::max(last_seen, end[r]);
  }
  if (first_seen < last_seen) {
    const int64_t unit = p_.pattern.predicted ? layout.block : 1;  // keys per column
    const int64_t block0 = first_seen / unit / kKeyBlock;
    const int64_t block1 = ((last_seen + unit - 1) / unit + kKeyBlock - 1) / kKeyBlock;
    const float* keys = p_.pattern.predicted ? slot.pooled_k : slot.k;
    layout.selected->score_tiles(q_packed_.get(), (rows + kTileRows - 1) / kTileRows,
                                 keys + block0 * p_.d * kKeyBlock, p_.d, block1 - block0,
                                 scores_.get() + block0 * kKeyBlock, score_stride_);
  }

  int64_t bias_stride = 0;
  const float* bias = key_bias;
  if (p_.score_mask.data != nullptr) {
    bias_stride = build_score_bias(p_, g, b, h, row0, rows, round_up(rows, kTileRows), bias_.get());
    bias = bias_.get();
  }
  if (!p_.pattern.predicted) {
    for (int64_t r = 0; r < rows; ++r)
      if (begin[r] < end[r]) select_topk_row(r, begin[r], end[r], bias + r * bias_stride, out);
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    block_counts_[static_cast<size_t>(r)] = group_counts_[static_cast<size_t>(r)] = 0;
    if (begin[r] < end[r]) choose_dsa_blocks(r, begin[r], end[r], bias + r * bias_stride, slot);
  }
  dsa_dots(rows, slot);
  for (int64_t r = 0; r < rows; ++r)
    if (begin[r] < end[r]) score_dsa_row(r, begin[r], end[r], bias + r * bias_stride, out);
}

void RowSelector::select_topk_row(int64_t r, int64_t begin, int64_t end, const float* bias,
                                  RowBlockSelection& out) {
  const int64_t columns = layout_.packed.lk_pad;
  float* row = scores_.get() + r * score_stride_;
  layout_.selected->finish_scores(row, bias, p_.scale, begin, end, columns);
  int32_t* keys = out.keys.data() + r * out.stride;
  float* scores = out.scores.data() + r * out.stride;
  const int64_t visible = end - begin;
  int64_t count = visible;
  if (visible <= p_.pattern.keep) {
    for (int64_t j = 0; j < visible; ++j) keys[j] = static_cast<int32_t>(begin + j);
  } else {
    const topk::Cut cut =
        topk::find_cut(*layout_.topk, row + begin, visible, p_.pattern.keep, topk_scratch_);
    count = topk::write_selected(row + begin, visible, cut, keys);
    for (int64_t j = 0; j < count; ++j) keys[j] += static_cast<int32_t>(begin);
  }
  DFSS_DEBUG_ASSERT(count <= out.stride);
  for (int64_t j = 0; j < count; ++j) scores[j] = row[keys[j]];
  out.counts[static_cast<size_t>(r)] = count;
}

void RowSelector::choose_dsa_blocks(int64_t r, int64_t begin, int64_t end, const float* bias,
                                    const SlotOperands& slot) {
  const int64_t block = layout_.block, lanes = layout_.selected->lanes;
  const int64_t first_block = begin / block, end_block = (end + block - 1) / block;
  float* predicted = scores_.get() + r * score_stride_;
  const float* pooled_bias = slot.pooled_bias;
  if (p_.score_mask.data != nullptr) {  // this row's own bias, pooled like the slot's
    // (Its absent and padding keys are -inf already.)
    float* pooled = pooled_bias_.get();
    const int64_t columns = layout_.packed.lk_pad;
    for (int64_t c = first_block; c < end_block; ++c) {
      float largest = kNegInf;
      for (int64_t j = c * block; j < std::min(columns, c * block + block); ++j)
        largest = std::max(largest, bias[j]);
      pooled[c] = largest;
    }
    pooled_bias = pooled;
  }
  layout_.selected->finish_scores(predicted, pooled_bias, p_.scale, first_block, end_block,
                                  layout_.pooled_pad);
  // The kept blocks, in increasing order.
  int32_t* blocks = selected_blocks_.data() + r * block_stride_;
  const int64_t candidates = end_block - first_block, wanted = p_.pattern.keep / block;
  int64_t kept_blocks = candidates;
  if (candidates <= wanted) {
    for (int64_t c = 0; c < candidates; ++c) blocks[c] = static_cast<int32_t>(first_block + c);
  } else {
    int32_t* chosen = blocks_.data();
    const topk::Cut cut =
        topk::find_cut(*layout_.topk, predicted + first_block, candidates, wanted, topk_scratch_);
    kept_blocks = topk::write_selected(predicted + first_block, candidates, cut, chosen);
    for (int64_t c = 0; c < kept_blocks; ++c)
      blocks[c] = chosen[c] + static_cast<int32_t>(first_block);
  }
  DFSS_DEBUG_ASSERT(kept_blocks <= block_stride_);
  block_counts_[static_cast<size_t>(r)] = kept_blocks;
  // The groups of lanes keys that hold the kept blocks' visible keys.
  int32_t* groups = groups_.data() + r * group_stride_;
  int64_t group_count = 0;
  for (int64_t c = 0; c < kept_blocks; ++c) {
    const int64_t lo = std::max(begin, int64_t{blocks[c]} * block);
    const int64_t hi = std::min(end, int64_t{blocks[c]} * block + block);
    for (int64_t key = lo / lanes * lanes; key < hi; key += lanes)
      if (group_count == 0 || groups[group_count - 1] != key)
        groups[group_count++] = static_cast<int32_t>(key);
  }
  DFSS_DEBUG_ASSERT(group_count <= group_stride_);
  group_counts_[static_cast<size_t>(r)] = group_count;
}

void RowSelector::dsa_dots(int64_t rows, const SlotOperands& slot) {
  // A chunk of keys at a time, for the (row, group) pairs of every row of the block that
  // fall in it, ordered by group: the rows that keep a group run one after the other and
  // share its loads (key_dots), and K is read in key order. (Random rows, 192 of them
  // keeping 16 of 256 blocks each: about 12 rows per kept block.)
  const int64_t lanes = layout_.selected->lanes, chunk_groups = kDsaChunkKeys / lanes;
  const PackedGeometry& g = layout_.packed;
  group_cursor_.assign(static_cast<size_t>(rows), 0);
  for (int64_t chunk = 0; chunk < g.lk_pad; chunk += kDsaChunkKeys) {
    // Counting sort by group: the sizes, their running sums, then the pairs in place.
    std::fill(group_starts_.begin(), group_starts_.end(), 0);
    const int64_t chunk_end = chunk + kDsaChunkKeys;
    for (int64_t r = 0; r < rows; ++r) {
      const int32_t* groups = groups_.data() + r * group_stride_;
      const int64_t count = group_counts_[static_cast<size_t>(r)];
      for (int64_t next = group_cursor_[static_cast<size_t>(r)];
           next < count && groups[next] < chunk_end; ++next)
        ++group_starts_[static_cast<size_t>((groups[next] - chunk) / lanes + 1)];
    }
    for (int64_t c = 0; c < chunk_groups; ++c)
      group_starts_[static_cast<size_t>(c + 1)] += group_starts_[static_cast<size_t>(c)];
    const int64_t pairs = group_starts_[static_cast<size_t>(chunk_groups)];
    if (pairs == 0) continue;
    for (int64_t r = 0; r < rows; ++r) {
      const int32_t* groups = groups_.data() + r * group_stride_;
      const int64_t count = group_counts_[static_cast<size_t>(r)];
      const float* q = static_cast<const float*>(q_packed_.get()) + r / kTileRows * g.q_tile_elems +
                       r % kTileRows;
      int64_t& next = group_cursor_[static_cast<size_t>(r)];
      for (; next < count && groups[next] < chunk_end; ++next) {
        int64_t& start = group_starts_[static_cast<size_t>((groups[next] - chunk) / lanes)];
        const auto at = static_cast<size_t>(start++);
        pair_q_[at] = q;
        pair_group_[at] = groups[next];
        pair_out_[at] = dots_.get() + (r * group_stride_ + next) * lanes;
      }
    }
    layout_.selected->key_dots(pair_q_.data(), kTileRows, slot.k, p_.d, pair_group_.data(), pairs,
                               pair_out_.data());
  }
}

void RowSelector::score_dsa_row(int64_t r, int64_t begin, int64_t end, const float* bias,
                                RowBlockSelection& out) {
  const int64_t block = layout_.block, lanes = layout_.selected->lanes;
  const int32_t* blocks = selected_blocks_.data() + r * block_stride_;
  const int32_t* groups = groups_.data() + r * group_stride_;
  const float* dots = dots_.get() + r * group_stride_ * lanes;
  int32_t* keys = out.keys.data() + r * out.stride;
  float* scores = out.scores.data() + r * out.stride;
  int64_t count = 0, group = 0;
  for (int64_t c = 0; c < block_counts_[static_cast<size_t>(r)]; ++c) {
    const int64_t lo = std::max(begin, int64_t{blocks[c]} * block);
    const int64_t hi = std::min(end, int64_t{blocks[c]} * block + block);
    if (lo >= hi) continue;
    while (groups[group] + lanes <= lo) ++group;
    // A block's keys lie in consecutive groups (choose_dsa_blocks lists them in order),
    // so their dot products are one run of dots.
    layout_.selected->scale_add_bias(dots + group * lanes + (lo - groups[group]), bias + lo,
                                     p_.scale, hi - lo, scores + count);
    for (int64_t key = lo; key < hi; ++key) keys[count++] = static_cast<int32_t>(key);
  }
  DFSS_DEBUG_ASSERT(count <= out.stride);
  out.counts[static_cast<size_t>(r)] = count;
}

}  // namespace dfss::detail
