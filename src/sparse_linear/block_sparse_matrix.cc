// Block-structured N:M weights: pruning a dense matrix, checking a compressed one, and the
// pattern's text form.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

#include "dfss/errors.h"
#include "dfss/sparse_linear.h"

namespace dfss {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw InvalidArgument(what);
}

void check_pattern(const BlockSparsePattern& p, const std::string& where) {
  if (p.m < 1 || p.m > 64) fail(where + ": m: expected 1 .. 64, got " + std::to_string(p.m));
  if (p.n < 1 || p.n > p.m)
    fail(where + ": n: expected 1 .. m (" + std::to_string(p.m) + "), got " + std::to_string(p.n));
  if (p.block_rows < 1 || p.block_rows > 64)
    fail(where + ": block_rows: expected 1 .. 64, got " + std::to_string(p.block_rows));
}

void check_shape(int64_t rows, int64_t cols, const BlockSparsePattern& p,
                 const std::string& where) {
  check_pattern(p, where);
  if (rows < 1 || cols < 1)
    fail(where + ": expected rows, cols >= 1, got " + std::to_string(rows) + " x " +
         std::to_string(cols));
  if (cols % p.m != 0)
    fail(where + ": cols (" + std::to_string(cols) + ") must be a multiple of m (" +
         std::to_string(p.m) + ")");
  if (cols > std::numeric_limits<int32_t>::max() ||
      rows > std::numeric_limits<int64_t>::max() / (cols + 64))
    fail(where + ": " + std::to_string(rows) + " x " + std::to_string(cols) + " is too large");
}

// Parses a positive int at text[pos, end) and advances pos; false if there is none.
bool parse_int(const std::string& text, size_t& pos, size_t end, int& out) {
  const char* first = text.data() + pos;
  const auto [ptr, ec] = std::from_chars(first, text.data() + end, out);
  if (ec != std::errc() || ptr == first) return false;
  pos = static_cast<size_t>(ptr - text.data());
  return true;
}

}  // namespace

BlockSparsePattern parse_block_sparse_pattern(const std::string& text,
                                              const std::string& argument_name) {
  BlockSparsePattern p;
  size_t pos = 0;
  const size_t end = text.size();
  bool ok = parse_int(text, pos, end, p.n) && pos < end && text[pos++] == ':' &&
            parse_int(text, pos, end, p.m);
  if (ok && pos < end) ok = text[pos++] == 'x' && parse_int(text, pos, end, p.block_rows);
  if (!ok || pos != end)
    fail(argument_name + ": expected N:M or N:MxV (e.g. 2:4 or 2:4x16), got \"" + text + "\"");
  check_pattern(p, argument_name);
  return p;
}

std::string block_sparse_pattern_name(const BlockSparsePattern& p) {
  return std::to_string(p.n) + ":" + std::to_string(p.m) + "x" + std::to_string(p.block_rows);
}

BlockSparseMatrix::BlockSparseMatrix(int64_t rows, int64_t cols, const BlockSparsePattern& pattern,
                                     std::vector<int32_t> columns, std::vector<float> values)
    : rows_(rows),
      cols_(cols),
      pattern_(pattern),
      columns_(std::move(columns)),
      values_(std::move(values)) {}

BlockSparseMatrix BlockSparseMatrix::prune(std::span<const float> weight, int64_t rows,
                                           int64_t cols, const BlockSparsePattern& pattern,
                                           std::span<const float> column_scale) {
  check_shape(rows, cols, pattern, "prune");
  if (static_cast<int64_t>(weight.size()) != rows * cols)
    fail("prune: weight: expected rows * cols = " + std::to_string(rows * cols) + " values, got " +
         std::to_string(weight.size()));
  if (!column_scale.empty() && static_cast<int64_t>(column_scale.size()) != cols)
    fail("prune: column_scale: expected cols = " + std::to_string(cols) + " values, got " +
         std::to_string(column_scale.size()));
  for (const float s : column_scale)
    if (!(s >= 0.0f) || std::isinf(s))
      fail("prune: column_scale: expected finite values >= 0, got " + std::to_string(s));

  const int64_t v = pattern.block_rows, blocks = (rows + v - 1) / v;
  const int64_t kept = cols / pattern.m * pattern.n;
  std::vector<int32_t> columns(static_cast<size_t>(blocks * kept));
  std::vector<float> values(static_cast<size_t>(blocks * kept * v), 0.0f);
  std::vector<double> importance(static_cast<size_t>(cols));
  std::vector<int32_t> order(static_cast<size_t>(pattern.m));
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t first = b * v, last = std::min(rows, first + v);
    std::fill(importance.begin(), importance.end(), 0.0);
    for (int64_t r = first; r < last; ++r)
      for (int64_t c = 0; c < cols; ++c) importance[c] += std::fabs(weight[r * cols + c]);
    if (!column_scale.empty())
      for (int64_t c = 0; c < cols; ++c) importance[c] *= column_scale[c];
    int32_t* block_columns = columns.data() + b * kept;
    for (int64_t g = 0; g < cols / pattern.m; ++g) {
      const auto base = static_cast<int32_t>(g * pattern.m);
      std::iota(order.begin(), order.end(), base);
      // The n most important, ties to the lower column (a NaN weight counts as most
      // important, so it is kept and shows, rather than silently vanishing).
      auto more_important = [&](int32_t a, int32_t c) {
        const double ia = importance[a], ic = importance[c];
        if (std::isnan(ia) != std::isnan(ic)) return std::isnan(ia);
        return ia > ic || (!(ia < ic) && a < c);
      };
      std::partial_sort(order.begin(), order.begin() + pattern.n, order.end(), more_important);
      std::sort(order.begin(), order.begin() + pattern.n);
      std::copy(order.begin(), order.begin() + pattern.n, block_columns + g * pattern.n);
    }
    for (int64_t j = 0; j < kept; ++j)
      for (int64_t r = first; r < last; ++r)
        values[(b * kept + j) * v + (r - first)] = weight[r * cols + block_columns[j]];
  }
  return BlockSparseMatrix(rows, cols, pattern, std::move(columns), std::move(values));
}

BlockSparseMatrix BlockSparseMatrix::from_compressed(int64_t rows, int64_t cols,
                                                     const BlockSparsePattern& pattern,
                                                     std::vector<int32_t> columns,
                                                     std::vector<float> values) {
  const std::string where = "block-sparse weights";
  check_shape(rows, cols, pattern, where);
  const int64_t v = pattern.block_rows, blocks = (rows + v - 1) / v;
  const int64_t kept = cols / pattern.m * pattern.n;
  if (static_cast<int64_t>(columns.size()) != blocks * kept)
    fail(where + ": columns: expected blocks * kept = " + std::to_string(blocks) + " * " +
         std::to_string(kept) + " entries, got " + std::to_string(columns.size()));
  if (static_cast<int64_t>(values.size()) != blocks * kept * v)
    fail(where + ": values: expected blocks * kept * block_rows = " +
         std::to_string(blocks * kept * v) + " entries, got " + std::to_string(values.size()));
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t j = 0; j < kept; ++j) {
      const int64_t group = j / pattern.n, at = b * kept + j;
      const int32_t c = columns[at];
      const bool in_group = c >= group * pattern.m && c < (group + 1) * pattern.m;
      const bool increasing = j % pattern.n == 0 || c > columns[at - 1];
      if (!in_group || !increasing)
        fail(where + ": columns[" + std::to_string(b) + "][" + std::to_string(j) +
             "] = " + std::to_string(c) + ": expected increasing columns of group " +
             std::to_string(group) + " ([" + std::to_string(group * pattern.m) + ", " +
             std::to_string((group + 1) * pattern.m) + "))");
    }
    // Rows past the end of the matrix must be zero: the kernels multiply them.
    for (int64_t r = rows - b * v; r < v; ++r)
      for (int64_t j = 0; j < kept; ++j)
        if (values[(b * kept + j) * v + r] != 0.0f)
          fail(where + ": values: the padding rows of the last block must be 0");
  }
  return BlockSparseMatrix(rows, cols, pattern, std::move(columns), std::move(values));
}

std::vector<float> BlockSparseMatrix::to_dense() const {
  const int64_t v = pattern_.block_rows, kept = kept_per_block();
  std::vector<float> dense(static_cast<size_t>(rows_ * cols_), 0.0f);
  for (int64_t b = 0; b < blocks(); ++b)
    for (int64_t j = 0; j < kept; ++j)
      for (int64_t r = b * v; r < std::min(rows_, b * v + v); ++r)
        dense[r * cols_ + columns_[b * kept + j]] = values_[(b * kept + j) * v + (r - b * v)];
  return dense;
}

}  // namespace dfss
