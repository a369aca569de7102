#include "model/int8_block_sparse.h"

#include <algorithm>

namespace dfss::model {

Int8BlockSparseWeights pack_int8_block_sparse(const BlockSparseMatrix& w,
                                              std::span<const int8_t> q) {
  Int8BlockSparseWeights out;
  const int64_t kept = w.kept_per_block(), v = w.pattern().block_rows;
  out.blocks = w.blocks();
  out.quads = (kept + 3) / 4;
  out.block_rows = static_cast<int>(v);
  out.columns.resize(static_cast<size_t>(out.blocks * 4 * out.quads));
  out.values.assign(static_cast<size_t>(out.blocks * out.quads * v * 4), 0);
  for (int64_t b = 0; b < out.blocks; ++b) {
    const int32_t* kept_columns = w.columns().data() + b * kept;
    int32_t* columns = out.columns.data() + b * 4 * out.quads;
    for (int64_t j = 0; j < 4 * out.quads; ++j) columns[j] = kept_columns[std::min(j, kept - 1)];
    int8_t* values = out.values.data() + b * out.quads * v * 4;
    for (int64_t r = 0; r < v && b * v + r < w.rows(); ++r) {
      const int8_t* row = q.data() + (b * v + r) * w.cols();
      for (int64_t j = 0; j < kept; ++j)
        values[((j / 4) * v + r) * 4 + j % 4] = row[kept_columns[j]];
    }
  }
  return out;
}

}  // namespace dfss::model
