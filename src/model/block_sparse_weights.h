// The optional block-sparse form of a model's linear layers: dfss_block_sparse.safetensors
// beside config.json (docs/weight-sparsity.md). model.safetensors stays a complete dense
// checkpoint (zeros where pruned) that any BERT reader loads; this file gives dfss the
// compressed layers to run on its block-sparse kernels.
//
// Format: for each pruned nn.Linear named P (Hugging Face's name without ".weight", e.g.
// "encoder.layer.0.intermediate.dense"), with W [out, in] and pattern N:MxV:
//   P.columns  U8  [blocks, kept]     offset in its group of each kept column (increasing
//                                     within a group), blocks = ceil(out / V), kept = in / M * N
//   P.values   F32 [blocks, kept, V]  the kept weights, [b][j][r] = W[b V + r][column];
//                                     rows past `out` are 0
// and the header's __metadata__ has "format": "dfss-block-sparse/1" and "P": "N:MxV".
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "dfss/sparse_linear.h"
#include "io/safetensors.h"

namespace dfss::model {

inline constexpr char kBlockSparseFileName[] = "dfss_block_sparse.safetensors";
inline constexpr char kBlockSparseFormat[] = "dfss-block-sparse/1";

// A linear layer the file may hold: its name, shape and dense weight (from model.safetensors).
struct DenseLinear {
  std::string name;
  int64_t out = 0, in = 0;
  std::span<const float> weight;  // [out, in]
};

// The block-sparse layers of `file`, by name. Throws FormatError naming the file and the
// tensor or metadata entry at fault: a wrong format tag, a tensor or pattern entry of a
// layer the model does not have (or without its pair), a wrong dtype or shape, an offset
// outside its group or out of order, non-finite values, nonzero padding, or values that
// disagree with the dense weight (which must be the same matrix, zeros where pruned).
std::map<std::string, BlockSparseMatrix> read_block_sparse_layers(
    const io::SafetensorsFile& file, std::span<const DenseLinear> layers);

}  // namespace dfss::model
