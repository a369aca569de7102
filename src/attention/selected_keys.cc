#include "dfss/selected_keys.h"

#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "attention/selected.h"
#include "attention/selected_rows.h"
#include "attention/validate.h"
#include "dfss/errors.h"

namespace dfss {

SelectedKeys selected_keys(const ConstTensorView& q, const ConstTensorView& k,
                           const ConstTensorView& v, const AttentionOptions& options) {
  if (!options.pattern.selects_keys()) {
    throw InvalidArgument("options.pattern: expected topk:K or dsa:K for selected keys, got " +
                          options.pattern.to_string());
  }
  const detail::AttentionProblem p =
      detail::validate_problem(q, k, v, TensorView{}, options, /*check_out=*/false);
  SelectedKeys result;
  const int64_t rows = p.batch * p.heads * p.lq;
  if (rows == 0 || p.lk == 0) {
    result.counts.assign(static_cast<size_t>(rows), 0);
    return result;
  }
  const detail::SelectedLayout layout = detail::selected_layout(p);
  result.stride = layout.keep_stride;
  int64_t total = 0;
  if (__builtin_mul_overflow(rows, result.stride, &total))
    throw InvalidArgument("options.pattern: B * Hq * Lq * min(K, Lk) keys overflow int64");
  result.keys.assign(static_cast<size_t>(total), 0);
  result.counts.assign(static_cast<size_t>(rows), 0);
  const detail::PackedGeometry& g = layout.packed;
  detail::AlignedBuffer packed = detail::allocate_aligned(layout.slot_floats() * 4);
  detail::AlignedBuffer key_bias = detail::allocate_aligned(g.lk_pad * 4);
  const int64_t ratio = p.heads / p.kv_heads;
  const int64_t row_blocks = (p.lq + layout.block_rows - 1) / layout.block_rows;
  std::vector<detail::RowSelector> selectors;
  for (int t = 0; t < p.threads; ++t) selectors.emplace_back(p, layout);
  std::vector<detail::RowBlockSelection> selections(static_cast<size_t>(p.threads));
  for (int64_t slot = 0; slot < p.batch * p.kv_heads; ++slot) {
    const int64_t b = slot / p.kv_heads, kv = slot % p.kv_heads;
    detail::build_key_bias(p, g, b, key_bias.get());
    const detail::SlotOperands operands =
        detail::pack_selected_slot(p, layout, b, kv, key_bias.get(), packed.get());
#pragma omp parallel for num_threads(p.threads) schedule(dynamic, 1)
    for (int64_t task = 0; task < ratio * row_blocks; ++task) {
      const int thread = omp_get_thread_num();
      const int64_t h = kv * ratio + task / row_blocks;
      const int64_t row0 = task % row_blocks * layout.block_rows;
      const int64_t count = std::min(layout.block_rows, p.lq - row0);
      detail::RowBlockSelection& s = selections[static_cast<size_t>(thread)];
      selectors[static_cast<size_t>(thread)].select(b, h, row0, count, operands, key_bias.get(), s);
      for (int64_t r = 0; r < count; ++r) {
        const int64_t row = (b * p.heads + h) * p.lq + row0 + r;
        result.counts[static_cast<size_t>(row)] = s.counts[static_cast<size_t>(r)];
        std::copy_n(s.keys.begin() + r * s.stride, s.counts[static_cast<size_t>(r)],
                    result.keys.begin() + row * result.stride);
      }
    }
  }
  return result;
}

}  // namespace dfss
