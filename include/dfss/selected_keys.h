// The keys each query row keeps under a key-selecting pattern (topk:K, dsa:K): the
// selection `attention` makes, from the same code, bit for bit. For analysis: the recall of
// dsa's predictor against exact top-k, the softmax mass a selection keeps.
#pragma once

#include <cstdint>
#include <vector>

#include "dfss/attention.h"

namespace dfss {

struct SelectedKeys {
  int64_t stride = 0;           // min(K, Lk)
  std::vector<int32_t> keys;    // [B, Hq, Lq, stride]: row r keeps keys[r * stride, + counts[r])
  std::vector<int64_t> counts;  // [B, Hq, Lq]; increasing keys, only keys the row sees
};

// q, k, v and options as for attention (v only for its shape); options.pattern must be
// topk:K or dsa:K (InvalidArgument otherwise).
SelectedKeys selected_keys(const ConstTensorView& q, const ConstTensorView& k,
                           const ConstTensorView& v, const AttentionOptions& options);

}  // namespace dfss
