#include "cli/scores_export.h"

namespace dfss::cli {

std::vector<io::NpzEntry> scores_npz_entries(CompressedScores scores) {
  const std::vector<int64_t> rows_shape{scores.batch, scores.heads, scores.lq, scores.kept};
  std::vector<io::NpzEntry> entries;

  io::NpzEntry values{"values", {}};
  values.array.dtype = io::NpyDType::f32;
  values.array.shape = rows_shape;
  values.array.f32 = std::move(scores.values);

  io::NpzEntry in_group{"in_group", {}};
  in_group.array.dtype = io::NpyDType::i32;
  in_group.array.shape = rows_shape;
  in_group.array.i32.reserve(scores.columns.size());
  // Padding columns of a partial last group (>= Lk) still have a position in their group.
  for (int32_t column : scores.columns) in_group.array.i32.push_back(column % scores.pattern.m);

  io::NpzEntry columns{"columns", {}};
  columns.array.dtype = io::NpyDType::i32;
  columns.array.shape = rows_shape;
  columns.array.i32 = std::move(scores.columns);

  io::NpzEntry pattern{"pattern", {}};
  pattern.array.dtype = io::NpyDType::i32;
  pattern.array.shape = {2};
  pattern.array.i32 = {scores.pattern.n, scores.pattern.m};

  entries.push_back(std::move(values));
  entries.push_back(std::move(columns));
  entries.push_back(std::move(in_group));
  entries.push_back(std::move(pattern));
  if (scores.pattern.n == 2 && scores.pattern.m == 4) {
    io::NpzEntry metadata{"metadata", {}};
    metadata.array.dtype = io::NpyDType::u16;
    metadata.array.shape = {scores.batch, scores.heads, scores.lq, scores.metadata_words};
    metadata.array.u16 = std::move(scores.metadata);
    entries.push_back(std::move(metadata));
  }
  return entries;
}

}  // namespace dfss::cli
