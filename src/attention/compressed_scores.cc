#include "dfss/compressed_scores.h"

#include <algorithm>
#include <vector>

#include "attention/unfused.h"
#include "attention/validate.h"
#include "dfss/errors.h"
#include "sparse/nm_selection.h"

namespace dfss {

CompressedScores compressed_scores(const ConstTensorView& q, const ConstTensorView& k,
                                   const ConstTensorView& v, const AttentionOptions& options) {
  if (!options.pattern.nm()) {
    throw InvalidArgument("options.pattern: expected an N:M pattern for compressed scores, got " +
                          options.pattern.to_string());
  }
  // No output is written, so there is none to check.
  detail::AttentionProblem problem =
      detail::validate_problem(q, k, v, TensorView{}, options, /*check_out=*/false);

  // Before the result is allocated by the same sizes.
  detail::check_unfused_memory(problem, /*exporting=*/true);

  CompressedScores result;
  result.pattern = options.pattern;
  result.batch = problem.batch;
  result.heads = problem.heads;
  result.lq = problem.lq;
  result.lk = problem.lk;
  const int64_t groups = (problem.lk + options.pattern.m - 1) / options.pattern.m;
  result.kept = groups * options.pattern.n;
  const bool two_of_four = options.pattern.n == 2 && options.pattern.m == 4;
  result.metadata_words = two_of_four ? (groups + 3) / 4 : 0;
  const int64_t rows = problem.batch * problem.heads * problem.lq;
  result.values.resize(static_cast<size_t>(rows * result.kept));
  result.columns.resize(static_cast<size_t>(rows * result.kept));
  result.metadata.assign(static_cast<size_t>(rows * result.metadata_words), 0);
  if (rows == 0 || problem.lk == 0) return result;

  detail::HeadVisitor visitor;
  visitor.compressed = [&](int64_t b, int64_t h, const kernels::UnfusedArgs& args) {
    for (int64_t i = 0; i < problem.lq; ++i) {
      const int64_t row = (b * problem.heads + h) * problem.lq + i;
      const float* values = args.kept_values + i * args.kept_stride;
      const int32_t* columns = args.kept_columns + i * args.kept_stride;
      std::copy(values, values + result.kept, result.values.begin() + row * result.kept);
      std::copy(columns, columns + result.kept, result.columns.begin() + row * result.kept);
      for (int64_t g = 0; g < result.metadata_words * 4 && g < groups; ++g) {
        const int lo = columns[2 * g] % 4, hi = columns[2 * g + 1] % 4;
        result.metadata[static_cast<size_t>(row * result.metadata_words + g / 4)] |=
            static_cast<uint16_t>(sparse::metadata_code_2of4(lo, hi) << (4 * (g % 4)));
      }
    }
  };
  detail::run_unfused_heads(problem, visitor);
  return result;
}

}  // namespace dfss
