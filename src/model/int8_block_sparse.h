// The int8 form of a block-sparse layer's weights, laid out for the int8 block-sparse kernels
// (src/kernels/sparse_gemm_int8/): per block, the kept columns in quads of 4 and their 7-bit
// weights as one 32-bit word per output row and quad.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "dfss/sparse_linear.h"

namespace dfss::model {

struct Int8BlockSparseWeights {
  int64_t blocks = 0;
  int64_t quads = 0;  // per block: ceil(kept / 4)
  int block_rows = 0;
  // [blocks][4 · quads]; a last, partial quad repeats the block's last kept column with
  // weight 0, so every index is a column of the matrix.
  std::vector<int32_t> columns;
  std::vector<int8_t> values;  // [blocks][quads][block_rows][4]; padding rows are 0
};

// Packs `w`'s pattern with the quantized weights `q` [w.rows()][w.cols()] (the whole
// quantized matrix; only the kept columns are read).
Int8BlockSparseWeights pack_int8_block_sparse(const BlockSparseMatrix& w,
                                              std::span<const int8_t> q);

}  // namespace dfss::model
