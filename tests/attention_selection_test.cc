// Selection parity of the DFSS N:M kernels (fp32 inputs): the kept column set of every
// group, as the kernels produce it (dfss::compressed_scores runs the unfused pruned score
// phase on options.isa), equals the oracle's (detail::sparse_reference_scores +
// detail::sparse_reference_kept), and the oracle's equals a selection written here from the
// documented rule alone (largest signed value, ties to the lower column, NaN as +inf). The
// fused implementation's selection is checked through its output, which must match the
// reference's. Inputs are adversarial: exact ties, masked and fully masked groups and rows,
// huge and non-finite values, key lengths around the groups, spans and key blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numbers>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "attention/problem.h"
#include "attention/sparse_reference.h"
#include "attention/validate.h"
#include "attention_test_util.h"
#include "dfss/attention.h"
#include "dfss/compressed_scores.h"
#include "dfss/errors.h"

namespace dfss::test {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

const std::vector<SparsityPattern>& all_patterns() {
  static const std::vector<SparsityPattern> patterns{{1, 2}, {2, 4}, {1, 4}, {3, 4}, {2, 8}, {4, 8},
                                                     {1, 8}, {7, 8}, {3, 7}, {2, 3}, {5, 6}};
  return patterns;
}

// Key lengths: tiny (fewer keys than one group), around 3 * 128 (key blocks, 64-key spans)
// and a long row. Query rows stay small so that the whole file runs in seconds.
const std::vector<int64_t>& key_lengths() {
  static const std::vector<int64_t> lengths{1, 2, 3, 4, 5, 7, 383, 384, 385, 4096};
  return lengths;
}

// Lq for a key length: mostly Lq != Lk; with the causal rule, Lq > Lk hides whole rows.
int64_t query_rows(int64_t lk, bool causal) {
  switch (lk) {
    case 1: return causal ? 7 : 3;
    case 2: return causal ? 5 : 1;
    case 3: return causal ? 3 : 7;
    case 4: return causal ? 7 : 4;
    case 5: return causal ? 6 : 2;
    case 7: return causal ? 7 : 6;
    case 383: return causal ? 5 : 7;
    case 384: return causal ? 7 : 1;
    case 385: return causal ? 2 : 6;
    default: return causal ? 4 : 3;
  }
}

std::string pattern_label(const SparsityPattern& pattern) {
  std::ostringstream text;
  text << pattern.n << "of" << pattern.m;
  return text.str();
}

std::string format_float(float x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.9g", static_cast<double>(x));
  return buffer;
}

template <typename T>
std::string format_list(const T* begin, const T* end) {
  std::ostringstream text;
  text << "{";
  for (const T* it = begin; it != end; ++it) {
    if (it != begin) text << ", ";
    if constexpr (std::is_floating_point_v<T>) {
      text << format_float(*it);
    } else {
      text << *it;
    }
  }
  text << "}";
  return text.str();
}

bool same_bits(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) ||
         std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

// A standard normal sample (Box-Muller) from the platform-independent generator.
float gaussian(Random& random) {
  const double u1 = (static_cast<double>(random.next() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
  const double u2 = static_cast<double>(random.next() >> 11) * 0x1.0p-53;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
}

void fill_gaussian(HostTensor& tensor, uint64_t seed, float sigma) {
  Random random(seed);
  tensor.for_each_index([&](int64_t a, int64_t b, int64_t c, int64_t d) {
    tensor.set(a, b, c, d, sigma * gaussian(random));
  });
}

void fill_integers(HostTensor& tensor, uint64_t seed, int64_t lo, int64_t hi) {
  Random random(seed);
  tensor.for_each_index([&](int64_t a, int64_t b, int64_t c, int64_t d) {
    tensor.set(a, b, c, d, static_cast<float>(random.integer(lo, hi)));
  });
}

// One problem of the sweep: fp32 tensors, masks and the rows with a known outcome.
struct Case {
  Case(std::string kind_, int64_t batch_, int64_t heads_, int64_t lq_, int64_t lk_, int64_t d_,
       int64_t dv_, bool causal_, Layout k_layout = Layout::contiguous)
      : kind(std::move(kind_)),
        batch(batch_),
        heads(heads_),
        lq(lq_),
        lk(lk_),
        d(d_),
        dv(dv_),
        causal(causal_),
        q({batch_, heads_, lq_, d_}, DType::f32),
        k({batch_, heads_, lk_, d_}, DType::f32, k_layout),
        v({batch_, heads_, lk_, dv_}, DType::f32) {}

  std::string kind;
  int64_t batch, heads, lq, lk, d, dv;
  bool causal;
  HostTensor q, k, v;
  std::vector<float> additive;   // [batch][lk], empty for none
  std::vector<int64_t> lengths;  // [batch], empty for none
  std::optional<float> scale;
  int threads = 1;
  std::vector<std::array<int64_t, 3>> nan_rows;  // (b, h, i) whose output must be NaN

  int64_t rows() const { return batch * heads * lq; }
  int64_t row_index(int64_t b, int64_t h, int64_t i) const { return (b * heads + h) * lq + i; }

  AttentionOptions options(const SparsityPattern& pattern, AttentionImpl impl, Isa isa) const {
    AttentionOptions result;
    result.scale = scale;
    result.causal = causal;
    result.threads = threads;
    result.impl = impl;
    result.isa = isa;
    result.pattern = pattern;
    if (!additive.empty()) result.mask.additive = additive.data();
    if (!lengths.empty()) result.mask.valid_lengths = lengths.data();
    return result;
  }

  std::string describe(const SparsityPattern& pattern) const {
    std::ostringstream text;
    text << kind << " pattern " << pattern.to_string() << " B" << batch << " H" << heads << " Lq"
         << lq << " Lk" << lk << " d" << d << " dv" << dv << (causal ? " causal" : " noncausal");
    if (scale) text << " scale " << format_float(*scale);
    if (!additive.empty()) text << " additive-mask";
    if (!lengths.empty()) {
      text << " valid_lengths ";
      text << format_list(lengths.data(), lengths.data() + lengths.size());
    }
    return text.str();
  }
};

uint64_t case_seed(int kind, const SparsityPattern& pattern, int64_t lk, bool causal) {
  return static_cast<uint64_t>(kind) * 1000003u + static_cast<uint64_t>(pattern.m) * 10007u +
         static_cast<uint64_t>(pattern.n) * 1009u + static_cast<uint64_t>(lk) * 7u +
         (causal ? 1u : 0u);
}

// Gaussian q and k; batch 1 gets Gaussian additive biases.
Case gaussian_case(const SparsityPattern& pattern, int64_t lk, bool causal) {
  const uint64_t seed = case_seed(1, pattern, lk, causal);
  const bool long_row = lk >= 4096;
  Case c("gaussian", 2, long_row ? 1 : 2, query_rows(lk, causal), lk, long_row ? 16 : 24, 5, causal,
         Layout::padded);
  fill_gaussian(c.q, seed * 4 + 0, 1.5f);
  fill_gaussian(c.k, seed * 4 + 1, 1.0f);
  fill_uniform(c.v, seed * 4 + 2);
  Random random(seed * 4 + 3);
  c.additive.assign(static_cast<size_t>(2 * lk), 0.0f);
  for (int64_t j = 0; j < lk; ++j) c.additive[static_cast<size_t>(lk + j)] = gaussian(random);
  return c;
}

// Small integers, so every q·k and every score is exact: many equal scores. Row 0 of every
// head has q = 0 (all scores equal); head 1 has identical keys (every row all-equal in
// batch 0; in batch 1 only integer biases separate them).
Case ties_case(const SparsityPattern& pattern, int64_t lk, bool causal) {
  const uint64_t seed = case_seed(2, pattern, lk, causal);
  Case c("ties", 2, 2, query_rows(lk, causal), lk, 3, 5, causal);
  c.scale = 1.0f;
  fill_integers(c.q, seed * 4 + 0, -2, 2);
  fill_integers(c.k, seed * 4 + 1, -2, 2);
  fill_uniform(c.v, seed * 4 + 2);
  for (int64_t b = 0; b < c.batch; ++b) {
    for (int64_t h = 0; h < c.heads; ++h) {
      for (int64_t x = 0; x < c.d; ++x) c.q.set(b, h, 0, x, 0.0f);
    }
    for (int64_t j = 1; j < lk; ++j) {
      for (int64_t x = 0; x < c.d; ++x) c.k.set(b, 1, j, x, c.k.get(b, 1, 0, x));
    }
  }
  Random random(seed * 4 + 3);
  c.additive.assign(static_cast<size_t>(2 * lk), 0.0f);
  for (int64_t j = 0; j < lk; ++j) {
    c.additive[static_cast<size_t>(lk + j)] = static_cast<float>(random.integer(-2, 0));
  }
  return c;
}

// Groups with 0..M masked columns (so 1, 2, 3 masked, and fully masked groups), an -inf
// additive mask next to finite biases, valid_lengths that cut into a group, and fully
// masked rows: batch 2 has no valid key, batch 3 only -inf biases.
Case masked_case(const SparsityPattern& pattern, int64_t lk, bool causal) {
  const uint64_t seed = case_seed(3, pattern, lk, causal);
  const bool long_row = lk >= 4096;
  Case c("masked", 4, long_row ? 1 : 2, query_rows(lk, causal), lk, 8, 5, causal);
  fill_gaussian(c.q, seed * 4 + 0, 1.5f);
  fill_gaussian(c.k, seed * 4 + 1, 1.0f);
  fill_uniform(c.v, seed * 4 + 2);
  Random random(seed * 4 + 3);
  c.additive.assign(static_cast<size_t>(c.batch * lk), 0.0f);
  const int m = pattern.m;
  for (int64_t b = 0; b < 2; ++b) {
    float* row = c.additive.data() + b * lk;
    for (int64_t j = 0; j < lk; ++j) row[j] = random.uniform(-1.0f, 1.0f);
    for (int64_t g = 0; g * m < lk; ++g) {
      const int masked = static_cast<int>((static_cast<uint64_t>(g + b) + seed) % (m + 1));
      int positions[8];
      for (int t = 0; t < m; ++t) positions[t] = t;
      for (int t = 0; t < masked; ++t) {  // partial Fisher-Yates: `masked` distinct positions
        std::swap(positions[t], positions[t + random.integer(0, m - 1 - t)]);
        const int64_t j = g * m + positions[t];
        if (j < lk) row[j] = -kInf;
      }
    }
  }
  std::fill(c.additive.begin() + 3 * lk, c.additive.end(), -kInf);
  c.lengths = {lk, std::max<int64_t>(1, lk - 1 - static_cast<int64_t>(seed % 3)), 0, lk};
  return c;
}

// Huge magnitudes: q rows of magnitude 1, 1e3, 1e20 against keys of magnitude 1, 1e2, 1e30,
// so that q·k or scale * q·k overflows to ±inf (and +inf + -inf in the dot product to NaN)
// next to finite scores up to ~1e35; an additive mask of -inf and ±1e30 next to ordinary
// biases; batch 1 has valid_lengths. With `huge_scale` the scale is 1e30. Finite scores stay
// far below FLT_MAX / log2(e) and far apart (see SoftmaxOfHugeFiniteScores for those).
Case huge_case(const SparsityPattern& pattern, int64_t lk, bool causal, bool huge_scale) {
  const uint64_t seed = case_seed(huge_scale ? 4 : 5, pattern, lk, causal);
  const bool long_row = lk >= 4096;
  Case c(huge_scale ? "huge_scale" : "huge_values", 2, long_row ? 1 : 2, query_rows(lk, causal), lk,
         8, 5, causal);
  if (huge_scale) c.scale = 1e30f;
  fill_gaussian(c.q, seed * 4 + 0, 1.0f);
  fill_gaussian(c.k, seed * 4 + 1, 1.0f);
  fill_uniform(c.v, seed * 4 + 2);
  constexpr std::array<float, 3> q_magnitudes{1.0f, 1e3f, 1e20f};
  constexpr std::array<float, 5> k_magnitudes{1.0f, 1.0f, 1e2f, 1.0f, 1e30f};
  c.q.for_each_index([&](int64_t b, int64_t h, int64_t i, int64_t x) {
    c.q.set(b, h, i, x, c.q.get(b, h, i, x) * q_magnitudes[static_cast<size_t>((i + h + b) % 3)]);
  });
  c.k.for_each_index([&](int64_t b, int64_t h, int64_t j, int64_t x) {
    c.k.set(b, h, j, x, c.k.get(b, h, j, x) * k_magnitudes[static_cast<size_t>((j + h) % 5)]);
  });
  Random random(seed * 4 + 3);
  c.additive.resize(static_cast<size_t>(c.batch * lk));
  for (float& bias : c.additive) {
    switch (random.integer(0, 9)) {
      case 0:
      case 1: bias = -kInf; break;
      case 2: bias = -1e30f; break;
      case 3: bias = 1e30f; break;
      default: bias = random.uniform(-1.0f, 1.0f);
    }
  }
  c.lengths = {lk, std::max<int64_t>(1, lk - 2)};
  return c;
}

// Literal ±inf in some keys: scores +inf, -inf, or NaN (0 * inf) among exact integer ties;
// batch 1 adds an -inf additive mask (-inf + +inf = NaN) and valid_lengths.
Case infinite_keys_case(const SparsityPattern& pattern, int64_t lk, bool causal) {
  const uint64_t seed = case_seed(6, pattern, lk, causal);
  Case c("infinite_keys", 2, 2, query_rows(lk, causal), lk, 4, 5, causal);
  c.scale = 1.0f;
  fill_integers(c.q, seed * 4 + 0, -1, 1);
  fill_integers(c.k, seed * 4 + 1, -2, 2);
  fill_uniform(c.v, seed * 4 + 2);
  for (int64_t b = 0; b < c.batch; ++b) {
    for (int64_t h = 0; h < c.heads; ++h) {
      for (int64_t j = 0; j < lk; ++j) {
        if (j % 7 == 3) c.k.set(b, h, j, j % c.d, kInf);
        if (j % 7 == 5) c.k.set(b, h, j, (j + 1) % c.d, -kInf);
      }
    }
  }
  c.additive.assign(static_cast<size_t>(2 * lk), 0.0f);
  for (int64_t j = 0; j < lk; j += 5) c.additive[static_cast<size_t>(lk + j)] = -kInf;
  c.lengths = {lk, std::max<int64_t>(1, lk - 1)};
  return c;
}

// Gaussian inputs with NaN in one element of the last query row of head 0 (which sees
// every key, causal or not): that row's output must be NaN in every implementation. Batch 1
// also has valid_lengths, so the NaN row there has masked keys.
Case nan_query_case(const SparsityPattern& pattern, int64_t lk, bool causal) {
  const uint64_t seed = case_seed(7, pattern, lk, causal);
  Case c("nan_query", 2, 2, query_rows(lk, causal), lk, 8, 5, causal);
  fill_gaussian(c.q, seed * 4 + 0, 1.5f);
  fill_gaussian(c.k, seed * 4 + 1, 1.0f);
  fill_uniform(c.v, seed * 4 + 2);
  c.lengths = {lk, std::max<int64_t>(1, lk - 2)};
  for (int64_t b = 0; b < c.batch; ++b) {
    c.q.set(b, 0, c.lq - 1, c.d / 2, kNaN);
    c.nan_rows.push_back({b, 0, c.lq - 1});
  }
  return c;
}

// ±inf in a query: with every k[.][0] > 0, q = (-inf, 0, ...) scores -inf at every key (all
// scores -inf: zeros) and q = (+inf, 0, ...) scores +inf at every key (a NaN row), in the
// last query row of heads 0 and 1. Batch 1 also has valid_lengths.
Case infinite_query_case(const SparsityPattern& pattern, int64_t lk, bool causal) {
  const uint64_t seed = case_seed(8, pattern, lk, causal);
  Case c("infinite_query", 2, 2, query_rows(lk, causal), lk, 8, 5, causal);
  fill_gaussian(c.q, seed * 4 + 0, 1.5f);
  fill_gaussian(c.k, seed * 4 + 1, 1.0f);
  fill_uniform(c.v, seed * 4 + 2);
  c.lengths = {lk, std::max<int64_t>(1, lk - 2)};
  for (int64_t b = 0; b < c.batch; ++b) {
    for (int64_t h = 0; h < c.heads; ++h) {
      for (int64_t j = 0; j < lk; ++j) {
        c.k.set(b, h, j, 0, std::fabs(c.k.get(b, h, j, 0)) + 0.5f);
      }
      for (int64_t x = 0; x < c.d; ++x) c.q.set(b, h, c.lq - 1, x, 0.0f);
    }
    c.q.set(b, 0, c.lq - 1, 0, -kInf);
    c.q.set(b, 1, c.lq - 1, 0, kInf);
    c.nan_rows.push_back({b, 1, c.lq - 1});
  }
  return c;
}

// The documented rule, independently of src/sparse/nm_selection.h: in each group the N
// largest scores (NaN as +inf), ties to the lower column; columns in increasing order.
std::vector<int64_t> rule_kept(const SparsityPattern& pattern, const std::vector<float>& scores) {
  std::vector<int64_t> kept;
  for (size_t g = 0; g < scores.size(); g += static_cast<size_t>(pattern.m)) {
    std::vector<int64_t> order(static_cast<size_t>(pattern.m));
    for (int t = 0; t < pattern.m; ++t) order[static_cast<size_t>(t)] = static_cast<int64_t>(g) + t;
    const auto key = [&](int64_t j) {
      const float x = scores[static_cast<size_t>(j)];
      return std::isnan(x) ? kInf : x;
    };
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return key(a) > key(b); });
    std::sort(order.begin(), order.begin() + pattern.n);
    kept.insert(kept.end(), order.begin(), order.begin() + pattern.n);
  }
  return kept;
}

// 2:4 metadata codes of the kept pairs, as documented (not via metadata_code_2of4).
uint16_t documented_code_2of4(int64_t lo, int64_t hi) {
  static const std::vector<std::pair<std::array<int64_t, 2>, uint16_t>> codes{
      {{0, 1}, 0x4}, {{0, 2}, 0x8}, {{0, 3}, 0xC}, {{1, 2}, 0x9}, {{1, 3}, 0xD}, {{2, 3}, 0xE}};
  for (const auto& [pair, code] : codes) {
    if (pair[0] == lo && pair[1] == hi) return code;
  }
  ADD_FAILURE() << "no 2:4 metadata code for kept pair (" << lo << ", " << hi << ")";
  return 0xFFFF;
}

// What the oracle says about a case, computed once and compared against every ISA.
struct Oracle {
  std::vector<std::vector<float>> scores;  // per row: ceil(Lk/M)*M fp32 scores
  std::vector<std::vector<int64_t>> kept;  // per row: kept columns, increasing
  std::vector<bool> empty;                 // per row: every score -inf (output zeros)
  std::vector<float> output;               // AttentionImpl::reference
};

Oracle make_oracle(const Case& c, const SparsityPattern& pattern) {
  const AttentionOptions options = c.options(pattern, AttentionImpl::reference, Isa::scalar);
  const detail::AttentionProblem problem = detail::validate_problem(
      c.q.view(), c.k.view(), c.v.view(), TensorView{}, options, /*check_out=*/false);
  Oracle oracle;
  int reported = 0;
  for (int64_t b = 0; b < c.batch; ++b) {
    for (int64_t h = 0; h < c.heads; ++h) {
      for (int64_t i = 0; i < c.lq; ++i) {
        std::vector<float> scores;
        std::vector<int64_t> kept;
        detail::sparse_reference_scores(problem, b, h, i, scores);
        detail::sparse_reference_kept(pattern, scores, kept);
        const std::vector<int64_t> by_rule = rule_kept(pattern, scores);
        if (kept != by_rule && reported++ < 3) {
          ADD_FAILURE() << c.describe(pattern) << ": the reference's selection breaks the rule at"
                        << " b=" << b << " h=" << h << " row=" << i << ": scores "
                        << format_list(scores.data(), scores.data() + scores.size())
                        << ", reference keeps "
                        << format_list(kept.data(), kept.data() + kept.size()) << ", rule keeps "
                        << format_list(by_rule.data(), by_rule.data() + by_rule.size());
        }
        oracle.empty.push_back(
            std::all_of(scores.begin(), scores.end(), [](float x) { return x == -kInf; }));
        oracle.scores.push_back(std::move(scores));
        oracle.kept.push_back(std::move(kept));
      }
    }
  }
  HostTensor out({c.batch, c.heads, c.lq, c.dv}, DType::f32);
  out.fill_storage(kNaN);
  attention(c.q.view(), c.k.view(), c.v.view(), out.mutable_view(), options);
  oracle.output = out.values();
  return oracle;
}

// The kernels' compressed scores on one ISA against the oracle: shape, kept columns per
// group, bit-exact values, padding columns, 2:4 metadata.
void check_compressed(const Case& c, const SparsityPattern& pattern, Isa isa,
                      const Oracle& oracle) {
  const std::string where = c.describe(pattern) + " isa " + isa_name(isa);
  const CompressedScores scores = compressed_scores(
      c.q.view(), c.k.view(), c.v.view(), c.options(pattern, AttentionImpl::unfused, isa));
  const int64_t n = pattern.n, m = pattern.m;
  const int64_t groups = (c.lk + m - 1) / m;
  const int64_t kept = groups * n;
  const bool two_of_four = n == 2 && m == 4;
  const int64_t words = two_of_four ? (groups + 3) / 4 : 0;
  const int64_t rows = c.rows();
  ASSERT_EQ(scores.pattern.n, n) << where;
  ASSERT_EQ(scores.pattern.m, m) << where;
  ASSERT_EQ(scores.batch, c.batch) << where;
  ASSERT_EQ(scores.heads, c.heads) << where;
  ASSERT_EQ(scores.lq, c.lq) << where;
  ASSERT_EQ(scores.lk, c.lk) << where;
  ASSERT_EQ(scores.kept, kept) << where;
  ASSERT_EQ(scores.values.size(), static_cast<size_t>(rows * kept)) << where;
  ASSERT_EQ(scores.columns.size(), static_cast<size_t>(rows * kept)) << where;
  ASSERT_EQ(scores.metadata_words, words) << where;
  ASSERT_EQ(scores.metadata.size(), static_cast<size_t>(rows * words)) << where;

  int64_t column_failures = 0, value_failures = 0, padding_failures = 0, metadata_failures = 0;
  for (int64_t b = 0; b < c.batch; ++b) {
    for (int64_t h = 0; h < c.heads; ++h) {
      for (int64_t i = 0; i < c.lq; ++i) {
        const int64_t row = c.row_index(b, h, i);
        const std::vector<float>& reference_scores = oracle.scores[static_cast<size_t>(row)];
        const std::vector<int64_t>& reference_kept = oracle.kept[static_cast<size_t>(row)];
        const int32_t* columns = scores.columns.data() + row * kept;
        const float* values = scores.values.data() + row * kept;
        const std::string at = where + " at b=" + std::to_string(b) + " h=" + std::to_string(h) +
                               " row=" + std::to_string(i);
        for (int64_t g = 0; g < groups; ++g) {
          const int32_t* got = columns + g * n;
          const int64_t* want = reference_kept.data() + g * n;
          if (!std::equal(got, got + n, want)) {
            if (column_failures++ < 3) {
              ADD_FAILURE() << at << " group=" << g << ": kernel keeps columns "
                            << format_list(got, got + n) << ", reference keeps "
                            << format_list(want, want + n) << "; reference scores of the group "
                            << format_list(reference_scores.data() + g * m,
                                           reference_scores.data() + (g + 1) * m);
            }
            continue;
          }
          for (int64_t t = 0; t < n; ++t) {
            const int64_t column = got[t];
            const float value = values[g * n + t];
            const float expected = reference_scores[static_cast<size_t>(column)];
            if (!same_bits(value, expected) && value_failures++ < 3) {
              ADD_FAILURE() << at << " group=" << g << " column=" << column << ": kernel score "
                            << format_float(value) << " differs from the reference's "
                            << format_float(expected);
            }
            if (column >= c.lk && (g != groups - 1 || value != -kInf) && padding_failures++ < 3) {
              ADD_FAILURE() << at << " group=" << g << ": padding column " << column << " (Lk "
                            << c.lk << ") with value " << format_float(value)
                            << "; padding belongs to the last group (" << groups - 1
                            << ") and is -inf";
            }
          }
        }
        if (two_of_four) {
          std::vector<uint16_t> expected(static_cast<size_t>(words), 0);
          for (int64_t g = 0; g < groups; ++g) {
            const uint16_t code =
                documented_code_2of4(reference_kept[static_cast<size_t>(2 * g)] - 4 * g,
                                     reference_kept[static_cast<size_t>(2 * g + 1)] - 4 * g);
            expected[static_cast<size_t>(g / 4)] |= static_cast<uint16_t>(code << (4 * (g % 4)));
          }
          const uint16_t* got = scores.metadata.data() + row * words;
          if (!std::equal(expected.begin(), expected.end(), got) && metadata_failures++ < 3) {
            ADD_FAILURE() << at << ": 2:4 metadata " << format_list(got, got + words)
                          << ", expected "
                          << format_list(expected.data(), expected.data() + expected.size());
          }
        }
      }
    }
  }
  EXPECT_EQ(column_failures, 0) << where << ": groups whose kept columns differ";
  EXPECT_EQ(value_failures, 0) << where << ": kept scores that differ";
  EXPECT_EQ(padding_failures, 0) << where << ": misplaced or finite padding columns";
  EXPECT_EQ(metadata_failures, 0) << where << ": rows with wrong 2:4 metadata";
}

// For a failed output comparison: the first row that differs (judged as all_close does)
// and the largest of its kept reference scores, to tell a selection from a softmax issue.
std::string first_differing_row(const Case& c, const Oracle& oracle, const std::vector<float>& got,
                                double tolerance) {
  double scale = 1.0;
  for (float value : oracle.output) {
    if (std::isfinite(value)) scale = std::max(scale, std::fabs(static_cast<double>(value)));
  }
  for (int64_t row = 0; row < c.rows(); ++row) {
    bool differs = false;
    for (int64_t x = 0; x < c.dv; ++x) {
      const double g = got[static_cast<size_t>(row * c.dv + x)];
      const double w = oracle.output[static_cast<size_t>(row * c.dv + x)];
      if (std::isfinite(g) && std::isfinite(w)) {
        differs = differs || std::fabs(g - w) > tolerance * scale;
      } else {
        differs = differs || !((std::isnan(g) && std::isnan(w)) || g == w);
      }
    }
    if (!differs) continue;
    const std::vector<float>& scores = oracle.scores[static_cast<size_t>(row)];
    std::vector<int64_t> kept = oracle.kept[static_cast<size_t>(row)];
    const auto key = [&](int64_t j) {
      const float x = scores[static_cast<size_t>(j)];
      return std::isnan(x) ? kInf : x;
    };
    std::stable_sort(kept.begin(), kept.end(),
                     [&](int64_t a, int64_t b) { return key(a) > key(b); });
    std::ostringstream text;
    text << "; first differing row: b=" << row / c.lq / c.heads << " h=" << row / c.lq % c.heads
         << " i=" << row % c.lq << ", largest kept reference scores (column: score):";
    for (size_t t = 0; t < kept.size() && t < 6; ++t)
      text << " " << kept[t] << ": " << format_float(scores[static_cast<size_t>(kept[t])]);
    return text.str();
  }
  return "";
}

// The unfused and fused outputs on one ISA against the reference: within 1e-5 of the
// output's scale; NaN rows NaN, fully masked rows exactly zero.
void check_outputs(const Case& c, const SparsityPattern& pattern, Isa isa, const Oracle& oracle) {
  for (AttentionImpl impl : {AttentionImpl::unfused, AttentionImpl::fused}) {
    const std::string where =
        c.describe(pattern) + " isa " + isa_name(isa) + " impl " + impl_name(impl);
    HostTensor out({c.batch, c.heads, c.lq, c.dv}, DType::f32);
    out.fill_storage(kNaN);  // an element left unwritten fails the comparison
    attention(c.q.view(), c.k.view(), c.v.view(), out.mutable_view(),
              c.options(pattern, impl, isa));
    const std::vector<float> got = out.values();
    EXPECT_TRUE(all_close(got, oracle.output, 1e-5))
        << where << first_differing_row(c, oracle, got, 1e-5);
    for (int64_t row = 0; row < c.rows(); ++row) {
      if (!oracle.empty[static_cast<size_t>(row)]) continue;
      for (int64_t x = 0; x < c.dv; ++x) {
        const size_t at = static_cast<size_t>(row * c.dv + x);
        if (oracle.output[at] != 0.0f || got[at] != 0.0f) {
          ADD_FAILURE() << where << ": fully masked flat row " << row << " element " << x
                        << ": got " << format_float(got[at]) << ", reference "
                        << format_float(oracle.output[at]) << ", expected 0";
          break;
        }
      }
    }
    for (const auto& [b, h, i] : c.nan_rows) {
      const int64_t row = c.row_index(b, h, i);
      for (int64_t x = 0; x < c.dv; ++x) {
        const size_t at = static_cast<size_t>(row * c.dv + x);
        if (!std::isnan(got[at]) || !std::isnan(oracle.output[at])) {
          ADD_FAILURE() << where << ": row b=" << b << " h=" << h << " i=" << i << " element " << x
                        << " should be NaN: got " << format_float(got[at]) << ", reference "
                        << format_float(oracle.output[at]);
          break;
        }
      }
    }
  }
}

using CaseMaker = Case (*)(const SparsityPattern&, int64_t, bool);

// Every key length, causal off and on, every supported ISA.
void sweep(const SparsityPattern& pattern, CaseMaker make) {
  for (int64_t lk : key_lengths()) {
    for (bool causal : {false, true}) {
      const Case c = make(pattern, lk, causal);
      SCOPED_TRACE(c.describe(pattern));
      const Oracle oracle = make_oracle(c, pattern);
      for (Isa isa : all_isas()) {
        if (!isa_supported(isa)) continue;  // reported once, in SupportedIsas
        check_compressed(c, pattern, isa, oracle);
        check_outputs(c, pattern, isa, oracle);
      }
    }
  }
}

// The test parameter: a pattern that gtest prints as "N:M".
struct PatternParam {
  SparsityPattern pattern;
  friend void PrintTo(const PatternParam& param, std::ostream* os) {
    *os << param.pattern.to_string();
  }
};

class SelectionParity : public ::testing::TestWithParam<PatternParam> {};

TEST_P(SelectionParity, GaussianInputs) {
  sweep(GetParam().pattern, gaussian_case);
}

TEST_P(SelectionParity, ExactTies) {
  sweep(GetParam().pattern, ties_case);
}

TEST_P(SelectionParity, MaskedColumnsGroupsAndRows) {
  sweep(GetParam().pattern, masked_case);
}

TEST_P(SelectionParity, HugeMagnitudes) {
  sweep(GetParam().pattern, [](const SparsityPattern& p, int64_t lk, bool causal) {
    return huge_case(p, lk, causal, /*huge_scale=*/false);
  });
  sweep(GetParam().pattern, [](const SparsityPattern& p, int64_t lk, bool causal) {
    return huge_case(p, lk, causal, /*huge_scale=*/true);
  });
}

TEST_P(SelectionParity, InfiniteKeys) {
  sweep(GetParam().pattern, infinite_keys_case);
}

TEST_P(SelectionParity, NaNQueryRow) {
  sweep(GetParam().pattern, nan_query_case);
}

TEST_P(SelectionParity, InfiniteQueryRow) {
  sweep(GetParam().pattern, infinite_query_case);
}

std::vector<PatternParam> pattern_params() {
  std::vector<PatternParam> params;
  for (const SparsityPattern& pattern : all_patterns()) params.push_back({pattern});
  return params;
}

INSTANTIATE_TEST_SUITE_P(Patterns, SelectionParity, ::testing::ValuesIn(pattern_params()),
                         [](const ::testing::TestParamInfo<PatternParam>& info) {
                           return pattern_label(info.param.pattern);
                         });

// The sweep skips ISAs this CPU lacks; say which, so that a run on a smaller CPU is visible.
TEST(SelectionParityIsas, SupportedIsas) {
  std::vector<std::string> skipped;
  for (Isa isa : all_isas()) {
    if (!isa_supported(isa)) skipped.push_back(isa_name(isa));
  }
  if (!skipped.empty()) {
    std::ostringstream text;
    for (const std::string& name : skipped) text << name << " ";
    GTEST_SKIP() << "not covered on this CPU: " << text.str();
  }
}

// ---------------------------------------------------------------------------------------
// The fused bf16 pair kernels (AVX512-BF16, bf16 inputs, 2:4 and 1:2) select in their own
// code (a vertical threshold over the 4 scores of a quad, a rank count on ties). Integer
// inputs keep every score exact in any summation order, so their selection must be the
// reference's: outputs within the bf16 rounding of the probabilities, NaN rows NaN, fully
// masked rows zero.
HostTensor as_bf16(const HostTensor& tensor, const Shape& shape) {
  HostTensor result(shape, DType::bf16);
  tensor.for_each_index([&](int64_t a, int64_t b, int64_t c, int64_t d) {
    result.set(a, b, c, d, tensor.get(a, b, c, d));
  });
  return result;
}

TEST(Bf16PairKernels, ExactTiesAndInfinitiesMatchReference) {
  if (!isa_supported(Isa::avx512_bf16)) GTEST_SKIP() << "avx512_bf16 is not supported by this CPU";
  for (const SparsityPattern& pattern : std::vector<SparsityPattern>{{2, 4}, {1, 2}}) {
    for (CaseMaker make : {&ties_case, &infinite_keys_case}) {
      for (int64_t lk : key_lengths()) {
        for (bool causal : {false, true}) {
          const Case c = make(pattern, lk, causal);
          const HostTensor q = as_bf16(c.q, {c.batch, c.heads, c.lq, c.d});
          const HostTensor k = as_bf16(c.k, {c.batch, c.heads, c.lk, c.d});
          const HostTensor v = as_bf16(c.v, {c.batch, c.heads, c.lk, c.dv});
          std::vector<float> outputs[2];
          for (AttentionImpl impl : {AttentionImpl::reference, AttentionImpl::fused}) {
            HostTensor out({c.batch, c.heads, c.lq, c.dv}, DType::f32);
            out.fill_storage(kNaN);
            const Isa isa = impl == AttentionImpl::fused ? Isa::avx512_bf16 : Isa::scalar;
            attention(q.view(), k.view(), v.view(), out.mutable_view(),
                      c.options(pattern, impl, isa));
            outputs[impl == AttentionImpl::fused ? 1 : 0] = out.values();
          }
          EXPECT_TRUE(all_close(outputs[1], outputs[0], 1e-2)) << c.describe(pattern) << " bf16";
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// The softmax of kept scores whose magnitude is near FLT_MAX, or that differ by one ulp at a
// huge magnitude: the selection is plain (both kept entries of a 2:4 group), the reference
// weighs the kept entries with exp(s - max) in double. Each row has one query, d = 1, scale
// 1 (the scores are the keys' values) and V rows 1, 2, 3, 4.
TEST(SoftmaxOfHugeFiniteScores, MatchesReference) {
  struct Row {
    const char* what;
    std::array<float, 4> scores;
    float expected;  // the reference's output: V of the only entry with weight
  };
  const std::vector<Row> rows{
      {"kept {-3e38, -inf}", {-3e38f, -kInf, -kInf, -kInf}, 1.0f},
      {"kept {3e38, 1}", {3e38f, 1.0f, 0.0f, -1.0f}, 1.0f},
      // 1.00000006e37 and the next float, 1.00000012e37: 6.3e29 apart, so the reference
      // weighs only the second; times log2(e) in fp32 both round to 1.44269515e37.
      {"kept {1.00000006e37, 1.00000012e37}",
       {std::nextafter(1e37f, kInf), std::nextafter(std::nextafter(1e37f, kInf), kInf), 0.0f, 0.0f},
       2.0f},
  };
  const SparsityPattern pattern{2, 4};
  for (const Row& row : rows) {
    HostTensor q({1, 1, 1, 1}, DType::f32), k({1, 1, 4, 1}, DType::f32),
        v({1, 1, 4, 3}, DType::f32);
    q.set(0, 0, 0, 0, 1.0f);
    for (int64_t j = 0; j < 4; ++j) {
      k.set(0, 0, j, 0, row.scores[static_cast<size_t>(j)]);
      for (int64_t x = 0; x < 3; ++x) v.set(0, 0, j, x, static_cast<float>(j + 1));
    }
    AttentionOptions options;
    options.threads = 1;
    options.scale = 1.0f;
    options.pattern = pattern;
    options.impl = AttentionImpl::reference;
    HostTensor reference({1, 1, 1, 3}, DType::f32);
    attention(q.view(), k.view(), v.view(), reference.mutable_view(), options);
    const std::vector<float> want = reference.values();
    EXPECT_EQ(want, std::vector<float>(3, row.expected)) << row.what << ": reference";
    for (Isa isa : all_isas()) {
      if (!isa_supported(isa)) continue;
      options.isa = isa;
      const CompressedScores compressed = compressed_scores(q.view(), k.view(), v.view(), options);
      EXPECT_EQ(std::vector<int32_t>(compressed.columns.begin(), compressed.columns.end()),
                (std::vector<int32_t>{0, 1}))
          << row.what << " isa " << isa_name(isa);
      for (AttentionImpl impl : {AttentionImpl::unfused, AttentionImpl::fused}) {
        options.impl = impl;
        HostTensor out({1, 1, 1, 3}, DType::f32);
        attention(q.view(), k.view(), v.view(), out.mutable_view(), options);
        EXPECT_TRUE(all_close(out.values(), want, 1e-5))
            << row.what << " isa " << isa_name(isa) << " impl " << impl_name(impl);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// compressed_scores in isolation.

// One query row, d = 1, scale 1: the scores are the keys' values.
struct RowOfScores {
  explicit RowOfScores(const std::vector<float>& key_values)
      : q({1, 1, 1, 1}, DType::f32),
        k({1, 1, static_cast<int64_t>(key_values.size()), 1}, DType::f32),
        v({1, 1, static_cast<int64_t>(key_values.size()), 1}, DType::f32) {
    q.set(0, 0, 0, 0, 1.0f);
    for (size_t j = 0; j < key_values.size(); ++j)
      k.set(0, 0, static_cast<int64_t>(j), 0, key_values[j]);
  }
  CompressedScores run(const SparsityPattern& pattern, Isa isa) const {
    AttentionOptions options;
    options.threads = 1;
    options.scale = 1.0f;
    options.pattern = pattern;
    options.isa = isa;
    return compressed_scores(q.view(), k.view(), v.view(), options);
  }
  HostTensor q, k, v;
};

// Each of the six kept pairs of a 2:4 group once, then a partial group: the documented codes
// in bits 4j..4j+3 of the word, unused high bits zero.
TEST(CompressedScores, MetadataCodesForEveryPairOf2of4) {
  const std::vector<std::array<int, 2>> pairs{{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
  std::vector<float> keys;
  for (const auto& pair : pairs) {
    for (int t = 0; t < 4; ++t) keys.push_back(t == pair[0] || t == pair[1] ? 2.0f : 1.0f);
  }
  keys.push_back(-5.0f);  // group 6: one real column and three padding columns
  for (Isa isa : all_isas()) {
    if (!isa_supported(isa)) continue;
    SCOPED_TRACE(isa_name(isa));
    const CompressedScores scores = RowOfScores(keys).run({2, 4}, isa);
    ASSERT_EQ(scores.kept, 14);
    ASSERT_EQ(scores.metadata_words, 2);
    ASSERT_EQ(scores.metadata.size(), 2u);
    EXPECT_EQ(scores.metadata[0], 0x9C84);  // (0,1) (0,2) (0,3) (1,2)
    EXPECT_EQ(scores.metadata[1], 0x04ED);  // (1,3) (2,3), then (0,1): column 24 and padding 25
    const std::vector<int32_t> columns(scores.columns.begin(), scores.columns.end());
    const std::vector<int32_t> expected_columns{0, 1, 4, 6, 8, 11, 13, 14, 17, 19, 22, 23, 24, 25};
    EXPECT_EQ(columns, expected_columns);
    EXPECT_EQ(scores.values[12], -5.0f);
    EXPECT_EQ(scores.values[13], -kInf);
  }
}

// Shapes for several heads and rows, a partial last group with padding, no metadata
// outside 2:4, and the all-equal rule on a row of equal scores.
TEST(CompressedScores, ShapesAndPadding) {
  const std::vector<float> keys(10, 0.5f);  // all equal: the lowest columns win
  for (Isa isa : all_isas()) {
    if (!isa_supported(isa)) continue;
    SCOPED_TRACE(isa_name(isa));
    const CompressedScores three_of_four = RowOfScores(keys).run({3, 4}, isa);
    EXPECT_EQ(three_of_four.kept, 9);
    EXPECT_EQ(three_of_four.metadata_words, 0);
    EXPECT_TRUE(three_of_four.metadata.empty());
    const std::vector<int32_t> columns(three_of_four.columns.begin(), three_of_four.columns.end());
    EXPECT_EQ(columns, (std::vector<int32_t>{0, 1, 2, 4, 5, 6, 8, 9, 10}));
    EXPECT_EQ(three_of_four.values[8], -kInf);  // column 10 is padding
    for (int t = 0; t < 8; ++t) EXPECT_EQ(three_of_four.values[static_cast<size_t>(t)], 0.5f);
  }

  HostTensor q({2, 3, 5, 7}, DType::f32), k({2, 3, 10, 7}, DType::f32),
      v({2, 3, 10, 4}, DType::f32);
  fill_uniform(q, 1);
  fill_uniform(k, 2);
  AttentionOptions options;
  options.threads = 1;
  options.pattern = {2, 4};
  const CompressedScores scores = compressed_scores(q.view(), k.view(), v.view(), options);
  EXPECT_EQ(scores.batch, 2);
  EXPECT_EQ(scores.heads, 3);
  EXPECT_EQ(scores.lq, 5);
  EXPECT_EQ(scores.lk, 10);
  EXPECT_EQ(scores.kept, 6);
  EXPECT_EQ(scores.values.size(), 2u * 3 * 5 * 6);
  EXPECT_EQ(scores.columns.size(), 2u * 3 * 5 * 6);
  EXPECT_EQ(scores.metadata_words, 1);
  EXPECT_EQ(scores.metadata.size(), 2u * 3 * 5);
  for (uint16_t word : scores.metadata) EXPECT_EQ(word >> 12, 0) << "unused group bits set";
}

TEST(CompressedScores, RejectsDensePattern) {
  HostTensor q({1, 1, 2, 4}, DType::f32), k({1, 1, 3, 4}, DType::f32), v({1, 1, 3, 4}, DType::f32);
  AttentionOptions options;  // dense by default
  try {
    compressed_scores(q.view(), k.view(), v.view(), options);
    ADD_FAILURE() << "a dense pattern was accepted";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("options.pattern"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace dfss::test
