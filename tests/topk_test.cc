// Top-k selection: the delegate-filtering path against the full-sort reference on
// adversarial rows, on every ISA this CPU has, for any thread count; argument errors.
#include "dfss/topk.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dfss/errors.h"

namespace dfss {
namespace {

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

std::vector<Isa> isas_here() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512})
    if (isa_supported(isa)) isas.push_back(isa);
  return isas;
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
