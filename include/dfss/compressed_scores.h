// Export of the N:M-pruned score matrix in compressed form, for analysis and interop
// with sparse tensor-core formats.
#pragma once

#include <cstdint>
#include <vector>

#include "dfss/attention.h"

namespace dfss {

struct CompressedScores {
  SparsityPattern pattern;
  int64_t batch = 0, heads = 0, lq = 0, lk = 0;
  int64_t kept = 0;  // kept entries per row: ceil(Lk/M) * N
  // [B, H, Lq, kept], each row in increasing column order. values are the kept scores
  // s = scale*q·k + mask (fp32; -inf where masked). A partial last group is padded with
  // -inf columns, which are kept where the group has fewer than N real ones: their column
  // is >= Lk.
  std::vector<float> values;
  std::vector<int32_t> columns;
  // For 2:4 only: [B, H, Lq, ceil(groups/4)] 16-bit words holding the 4-bit code of
  // groups 4w..4w+3 in bits 0-3, 4-7, 8-11, 12-15; code = lo | hi << 2 with lo < hi the
  // kept in-group positions ((0,1)=0x4, (0,2)=0x8, (0,3)=0xC, (1,2)=0x9, (1,3)=0xD,
  // (2,3)=0xE). Unused high bits of a row's last word are 0.
  std::vector<uint16_t> metadata;
  int64_t metadata_words = 0;  // per row
};

// Runs the pruned score phase of the unfused implementation (same kernels, same selection
// as `attention` with this pattern) and returns the compressed rows. `v` only fixes dv
// and is not read. options.pattern must be N:M; options.impl is ignored.
CompressedScores compressed_scores(const ConstTensorView& q, const ConstTensorView& k,
                                   const ConstTensorView& v, const AttentionOptions& options);

}  // namespace dfss
