// The arrays `dfss attention --scores-out` writes: dfss::compressed_scores as named .npz
// arrays, with the in-group positions spelled out so that a reader needs no arithmetic.
#pragma once

#include <vector>

#include "dfss/compressed_scores.h"
#include "io/npz.h"

namespace dfss::cli {

// values float32 [B, H, Lq, kept], columns int32 [B, H, Lq, kept], in_group int32
// [B, H, Lq, kept] (column % M), pattern int32 [2] (N, M) and, for 2:4 only, metadata
// uint16 [B, H, Lq, words]. Takes `scores` by value so that its arrays move, not copy.
std::vector<io::NpzEntry> scores_npz_entries(CompressedScores scores);

}  // namespace dfss::cli
