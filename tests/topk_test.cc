// Top-k selection: the delegate-filtering path against the full-sort reference on
// adversarial rows, on every ISA this CPU has, for any thread count; argument errors.
#include "dfss/topk.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dfss/errors.h"
#include "kernel_test_util.h"
#include "kernels/topk/topk_kernels.h"
#include "topk/topk_select.h"

namespace dfss {
namespace {

using test::isas_here;

struct Selection {
  std::vector<float> values;
  std::vector<int32_t> indices;
};

Selection run_topk(const std::vector<float>& x, int64_t rows, int64_t length, int64_t k, Isa isa,
                   int threads) {
  Selection s{std::vector<float>(rows * k), std::vector<int32_t>(rows * k)};
  topk_rows(x.data(), rows, length, length, k, s.values.data(), s.indices.data(), {isa, threads});
  return s;
}

Selection run_reference(const std::vector<float>& x, int64_t rows, int64_t length, int64_t k) {
  Selection s{std::vector<float>(rows * k), std::vector<int32_t>(rows * k)};
  topk_rows_reference(x.data(), rows, length, length, k, s.values.data(), s.indices.data());
  return s;
}

// Bitwise, so that NaN payloads and the sign of zero count too.
void expect_same(const Selection& got, const Selection& want, const std::string& what) {
  ASSERT_EQ(got.indices, want.indices) << what;
  ASSERT_EQ(0,
            std::memcmp(got.values.data(), want.values.data(), got.values.size() * sizeof(float)))
      << what;
}

enum class Rows { uniform, normal, sorted, reversed, duplicates, all_equal, specials };

std::vector<float> make_rows(Rows kind, int64_t rows, int64_t length, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> x(rows * length);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::uniform_int_distribution<int> few(0, 5);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x.data() + r * length;
    for (int64_t j = 0; j < length; ++j) {
      switch (kind) {
        case Rows::uniform: row[j] = uniform(rng); break;
        case Rows::normal: row[j] = normal(rng); break;
        case Rows::sorted: row[j] = static_cast<float>(j) * 0.5f; break;
        case Rows::reversed: row[j] = -static_cast<float>(j) * 0.25f; break;
        case Rows::duplicates: row[j] = static_cast<float>(few(rng)); break;
        case Rows::all_equal: row[j] = 1.5f; break;
        case Rows::specials: {
          const int pick = few(rng);
          row[j] = pick == 0   ? INFINITY
                   : pick == 1 ? -INFINITY
                   : pick == 2 ? NAN
                   : pick == 3 ? -0.0f
                               : uniform(rng);
          break;
        }
      }
    }
  }
  return x;
}

TEST(Topk, MatchesTheReferenceOnAdversarialRows) {
  const Rows kinds[] = {Rows::uniform,    Rows::normal,    Rows::sorted,  Rows::reversed,
                        Rows::duplicates, Rows::all_equal, Rows::specials};
  const int64_t lengths[] = {1, 2, 7, 16, 255, 256, 1000, 1024, 4096, 5003};
  for (Rows kind : kinds) {
    for (int64_t length : lengths) {
      for (int64_t k : {int64_t{1}, int64_t{2}, int64_t{8}, length / 16, length / 8, length / 2,
                        length - 1, length}) {
        if (k < 1 || k > length) continue;
        const int64_t rows = 3;
        const auto x = make_rows(kind, rows, length, static_cast<uint32_t>(length + k));
        const Selection want = run_reference(x, rows, length, k);
        for (Isa isa : isas_here()) {
          expect_same(run_topk(x, rows, length, k, isa, 1), want,
                      std::string(isa_name(isa)) + " kind " +
                          std::to_string(static_cast<int>(kind)) + " L " + std::to_string(length) +
                          " k " + std::to_string(k));
        }
      }
    }
  }
}

TEST(Topk, RankOrderTiesAndNaN) {
  // NaN ranks as +inf, ties by lower index; values come back as they were.
  const std::vector<float> x = {1.0f, NAN, INFINITY, 3.0f, 3.0f, -INFINITY, NAN, 2.0f};
  const Selection s = run_topk(x, 1, 8, 6, Isa::automatic, 1);
  EXPECT_EQ(s.indices, (std::vector<int32_t>{1, 2, 6, 3, 4, 7}));
  EXPECT_TRUE(std::isnan(s.values[0]));
  EXPECT_EQ(s.values[1], INFINITY);
  EXPECT_EQ(s.values[3], 3.0f);
}

TEST(Topk, FilteredRowsWithManyTiesAtTheThreshold) {
  // Long rows where the k-th value is shared by far more than k elements, so the filter
  // lets through more candidates than k and the index tie-break decides.
  const int64_t length = 65536, k = 64, rows = 2;
  std::vector<float> x(rows * length, 0.0f);
  for (int64_t j = 0; j < length; j += 97) x[j] = 1.0f;    // 676 ones per row
  for (int64_t j = 5; j < length; j += 4099) x[j] = 2.0f;  // a few larger ones
  for (int64_t j = length; j < 2 * length; j += 3) x[j] = 1.0f;
  const Selection want = run_reference(x, rows, length, k);
  for (Isa isa : isas_here())
    expect_same(run_topk(x, rows, length, k, isa, 1), want, isa_name(isa));
}

TEST(Topk, BitIdenticalForAnyThreadCountAndStride) {
  const int64_t rows = 37, length = 3000, k = 100, stride = 3011;
  std::vector<float> x(rows * stride);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);
  std::vector<float> packed(rows * length);
  for (int64_t r = 0; r < rows; ++r)
    std::copy(x.begin() + r * stride, x.begin() + r * stride + length, packed.begin() + r * length);
  const Selection want = run_reference(packed, rows, length, k);
  for (int threads : {1, 2, 3, 5}) {
    Selection s{std::vector<float>(rows * k), std::vector<int32_t>(rows * k)};
    topk_rows(x.data(), rows, length, stride, k, s.values.data(), s.indices.data(),
              {Isa::automatic, threads});
    expect_same(s, want, "threads " + std::to_string(threads));
  }
}

// The unordered selection of the attention patterns (find_cut + write_selected) against the
// reference's top k, re-sorted into index order; the cut against the k-th reference value.
void expect_unordered_matches(const std::vector<float>& x, int64_t rows, int64_t length, int64_t k,
                              const std::string& what) {
  const Selection want = run_reference(x, rows, length, k);
  for (Isa isa : isas_here()) {
    const kernels::TopkKernels& kernels = kernels::topk_kernels(isa);
    topk::SelectScratch scratch;
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x.data() + r * length;
      std::vector<int32_t> expected(want.indices.begin() + r * k,
                                    want.indices.begin() + (r + 1) * k);
      std::sort(expected.begin(), expected.end());
      const topk::Cut cut = topk::find_cut(kernels, row, length, k, scratch);
      const std::string where = what + " " + isa_name(isa) + " row " + std::to_string(r);
      const float last = want.values[r * k + k - 1];
      const float last_key = std::isnan(last) ? INFINITY : last;
      ASSERT_EQ(cut.key, last_key) << where;
      ASSERT_FALSE(std::signbit(cut.key) && cut.key == 0.0f) << where << ": -0 is keyed +0";
      int64_t ties = 0;
      for (int32_t index : expected)
        ties += (std::isnan(row[index]) ? INFINITY : row[index]) == cut.key;
      ASSERT_EQ(cut.ties, ties) << where;
      ASSERT_EQ(cut.selected, k) << where;
      // Exactly k slots, guarded: the kernel must not store past them.
      std::vector<int32_t> got(static_cast<size_t>(k) + 1, -7);
      ASSERT_EQ(topk::write_selected(kernels, row, length, cut, got.data()), k) << where;
      ASSERT_EQ(got.back(), -7) << where << ": wrote past k";
      got.pop_back();
      ASSERT_EQ(got, expected) << where;
      // The overload without kernels, and a cut that does not say how many it selects.
      std::vector<int32_t> plain(static_cast<size_t>(k) + 1, -7);
      ASSERT_EQ(topk::write_selected(row, length, topk::Cut{cut.key, cut.ties}, plain.data()), k);
      ASSERT_EQ(plain.back(), -7) << where;
      plain.pop_back();
      ASSERT_EQ(plain, expected) << where;
    }
  }
}

TEST(TopkSelect, UnorderedMatchesTheReferenceOnAdversarialRows) {
  const Rows kinds[] = {Rows::uniform,    Rows::normal,    Rows::sorted,  Rows::reversed,
                        Rows::duplicates, Rows::all_equal, Rows::specials};
  const int64_t lengths[] = {1, 7, 16, 255, 256, 1000, 4096, 5003};
  for (Rows kind : kinds) {
    for (int64_t length : lengths) {
      for (int64_t k :
           {int64_t{1}, int64_t{3}, length / 16, length / 8, length / 3, length - 1, length}) {
        if (k < 1 || k > length) continue;
        const auto x = make_rows(kind, 2, length, static_cast<uint32_t>(7 * length + k));
        expect_unordered_matches(x, 2, length, k,
                                 "kind " + std::to_string(static_cast<int>(kind)) + " L " +
                                     std::to_string(length) + " k " + std::to_string(k));
      }
    }
  }
}

TEST(TopkSelect, AttentionSizedRows) {
  // The sizes the attention patterns select from: scores rows with -inf (masked) keys, a NaN.
  for (const auto& [length, k] :
       {std::pair<int64_t, int64_t>{4096, 256}, {16384, 2048}, {16384, 256}, {4100, 256}}) {
    auto x = make_rows(Rows::normal, 2, length, static_cast<uint32_t>(length + k));
    for (int64_t j = 0; j < length / 3; ++j) x[j] = -INFINITY;  // masked keys
    x[length + 5] = NAN;
    expect_unordered_matches(x, 2, length, k, "L " + std::to_string(length));
  }
}

TEST(TopkSelect, KthLargestKeyAndItsBound) {
  std::mt19937 rng(11);
  for (Isa isa : isas_here()) {
    const kernels::TopkKernels& kernels = kernels::topk_kernels(isa);
    for (int64_t n : {1, 2, 17, 300, 4096, 70000}) {
      for (int spread : {1, 7, 1000, 0}) {  // 0: full 32-bit range
        std::vector<uint32_t> keys(static_cast<size_t>(n));
        for (uint32_t& key : keys) key = spread ? 1000 + rng() % spread : rng() | 1;
        if (n > 2) keys[1] = 0xffffffffu, keys[2] = 1;  // outliers stretch the range
        std::vector<uint32_t> sorted = keys;
        std::sort(sorted.begin(), sorted.end(), std::greater<>());
        for (int64_t k : {int64_t{1}, n / 2 + 1, n}) {
          if (k < 1 || k > n) continue;
          std::vector<uint32_t> scratch(static_cast<size_t>(n));
          const topk::KthKey kth =
              topk::kth_largest_key(kernels, keys.data(), n, k, scratch.data());
          ASSERT_EQ(kth.key, sorted[k - 1]) << n << " " << spread << " " << k;
          ASSERT_EQ(kth.above, std::count_if(keys.begin(), keys.end(),
                                             [&](uint32_t key) { return key > kth.key; }));
          for (int64_t slack : {1, 16, 1000}) {
            const topk::KthKey bound =
                topk::kth_largest_key(kernels, keys.data(), n, k, scratch.data(), slack);
            ASSERT_LE(bound.key, sorted[k - 1]);
            ASSERT_GE(std::count_if(keys.begin(), keys.end(),
                                    [&](uint32_t key) { return key >= bound.key; }),
                      k);
          }
          // In place (scratch = keys) on a copy.
          std::vector<uint32_t> copy = keys;
          ASSERT_EQ(topk::kth_largest_key(kernels, copy.data(), n, k, copy.data()).key,
                    sorted[k - 1]);
        }
      }
    }
  }
}

TEST(TopkSelect, SortPackedIsRankOrder) {
  std::mt19937 rng(5);
  for (int64_t n : {1, 5, 16, 17, 64, 300, 5000}) {
    for (int kind = 0; kind < 6; ++kind) {
      std::vector<uint64_t> a(static_cast<size_t>(n)), scratch(a.size());
      for (int64_t i = 0; i < n; ++i) {
        uint32_t key = 0;
        switch (kind) {
          case 0: key = rng(); break;                                           // full range
          case 1: key = 0x80000000u + rng() % 5; break;                         // many ties
          case 2: key = static_cast<uint32_t>(i); break;                        // ascending keys
          case 3: key = static_cast<uint32_t>(n - i); break;                    // descending keys
          case 4: key = i % 97 == 0 ? rng() : 0x40000000u + rng() % 64; break;  // clusters
          case 5: key = 77; break;                                              // all equal
        }
        a[i] = topk::pack_candidate(key, static_cast<int32_t>(i));
      }
      std::vector<uint64_t> want = a;
      std::sort(want.begin(), want.end());
      const uint64_t* got = topk::sort_packed(a.data(), scratch.data(), n);
      ASSERT_TRUE(std::equal(want.begin(), want.end(), got)) << n << " kind " << kind;
    }
  }
}

TEST(Topk, LongRowsOnEveryIsaAndThreadCount) {
  // Long rows take the long-group path (blocks skipped); lengths not multiples of a vector.
  const int64_t rows = 3, length = 100003;
  auto x = make_rows(Rows::normal, rows, length, 9);
  x[17] = NAN;
  x[length + 99991] = INFINITY;
  x[2 * length + 3] = -0.0f;
  for (int64_t k : {1, 8, 1000, 6250}) {
    const Selection want = run_reference(x, rows, length, k);
    for (Isa isa : isas_here())
      for (int threads : {1, 2})
        expect_same(run_topk(x, rows, length, k, isa, threads), want,
                    std::string(isa_name(isa)) + " k " + std::to_string(k));
  }
}

TEST(Topk, ZeroRowsNeedNoData) {
  EXPECT_NO_THROW(topk_rows(nullptr, 0, 10, 10, 3, nullptr, nullptr));
}

TEST(Topk, ErrorsNameTheArgument) {
  std::vector<float> x(16), values(16);
  std::vector<int32_t> indices(16);
  auto message = [&](int64_t rows, int64_t length, int64_t stride, int64_t k, int threads) {
    try {
      topk_rows(x.data(), rows, length, stride, k, values.data(), indices.data(),
                {Isa::automatic, threads});
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(1, 16, 16, 0, 1).find("k: expected 1 <= k <= length (16), got 0"),
            std::string::npos);
  EXPECT_NE(message(1, 16, 16, 17, 1).find("k:"), std::string::npos);
  EXPECT_NE(message(1, 0, 16, 1, 1).find("length:"), std::string::npos);
  EXPECT_NE(message(1, 16, 8, 1, 1).find("row_stride:"), std::string::npos);
  EXPECT_NE(message(-1, 16, 16, 1, 1).find("rows:"), std::string::npos);
  EXPECT_NE(message(1, 16, 16, 1, -2).find("threads:"), std::string::npos);
  EXPECT_NE(message(int64_t{1} << 62, 16, 16, 1, 1).find("overflows"), std::string::npos);
  EXPECT_THROW(topk_rows(nullptr, 1, 16, 16, 1, values.data(), indices.data()), InvalidArgument);
}

}  // namespace
}  // namespace dfss
