// The public attention() contract: every rejected argument and the defined edge cases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "attention_test_util.h"
#include "dfss/attention.h"
#include "dfss/errors.h"

namespace dfss::test {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kSentinel = 12345.0f;

// Everything attention() takes, so a test can break exactly one thing.
struct Call {
  ConstTensorView q, k, v;
  TensorView out;
  AttentionOptions options;
};

// A valid problem (B=2, H=3, Lq=5, Lk=7, d=8, dv=6) with a mask; each test breaks one part.
class AttentionValidation : public ::testing::Test {
 protected:
  AttentionValidation() {
    fill_uniform(q_, 1);
    fill_uniform(k_, 2);
    fill_uniform(v_, 3);
    out_.fill_storage(kSentinel);
  }

  Call valid_call() {
    Call call{q_.view(), k_.view(), v_.view(), out_.mutable_view(), {}};
    call.options.mask.additive = mask_.data();
    call.options.mask.valid_lengths = lengths_.data();
    return call;
  }

  // Expects `Exception` whose message starts with "<argument>:" and contains `fragment`,
  // and that no byte of any buffer changed.
  template <typename Exception = InvalidArgument>
  void expect_rejected(const Call& call, const std::string& argument,
                       const std::string& fragment = "") {
    const auto before = snapshot();
    try {
      attention(call.q, call.k, call.v, call.out, call.options);
      ADD_FAILURE() << "accepted; expected an error naming " << argument;
    } catch (const Exception& error) {
      const std::string message = error.what();
      EXPECT_EQ(message.rfind(argument + ": ", 0), 0u) << message;
      EXPECT_NE(message.find("expected"), std::string::npos) << message;
      EXPECT_NE(message.find(fragment), std::string::npos) << message;
    }
    EXPECT_EQ(before, snapshot()) << "a buffer was written before validation failed";
  }

  void expect_accepted(const Call& call) {
    EXPECT_NO_THROW(attention(call.q, call.k, call.v, call.out, call.options));
  }

  std::vector<std::vector<unsigned char>> snapshot() const {
    const auto* mask = reinterpret_cast<const unsigned char*>(mask_.data());
    const auto* arena = reinterpret_cast<const unsigned char*>(arena_.data());
    return {q_.bytes(),
            k_.bytes(),
            v_.bytes(),
            out_.bytes(),
            {mask, mask + mask_.size() * sizeof(float)},
            {arena, arena + arena_.size() * sizeof(float)}};
  }

  HostTensor q_{{2, 3, 5, 8}, DType::f32};
  HostTensor k_{{2, 3, 7, 8}, DType::f32};
  HostTensor v_{{2, 3, 7, 6}, DType::f32};
  HostTensor out_{{2, 3, 5, 6}, DType::f32};
  std::vector<float> mask_ = std::vector<float>(2 * 7, 0.5f);
  std::vector<int64_t> lengths_{7, 4};
  std::vector<float> arena_ = std::vector<float>(4096, 0.25f);  // for aliasing tests
};

TEST_F(AttentionValidation, ValidCallIsAccepted) {
  expect_accepted(valid_call());
}

TEST_F(AttentionValidation, MessageNamesExpectedAndActualShape) {
  Call call = valid_call();
  call.k.shape[3] = 4;
  call.k.stride = contiguous_strides(call.k.shape);
  try {
    attention(call.q, call.k, call.v, call.out, call.options);
    FAIL() << "accepted";
  } catch (const InvalidArgument& error) {
    EXPECT_STREQ(error.what(), "k: expected shape [2, *, *, 8] (B and d of q), got [2, 3, 7, 4]");
  }
}

TEST_F(AttentionValidation, NullDataWithElements) {
  for (const char* name : {"q", "k", "v", "out"}) {
    SCOPED_TRACE(name);
    Call call = valid_call();
    if (name == std::string("q")) call.q.data = nullptr;
    if (name == std::string("k")) call.k.data = nullptr;
    if (name == std::string("v")) call.v.data = nullptr;
    if (name == std::string("out")) call.out.data = nullptr;
    expect_rejected(call, name, "null");
  }
}

TEST_F(AttentionValidation, NegativeDimensionsAndStrides) {
  Call call = valid_call();
  call.q.shape[2] = -1;
  expect_rejected(call, "q", "non-negative dimensions");
  call = valid_call();
  call.out.shape[0] = -2;
  expect_rejected(call, "out", "non-negative dimensions");
  call = valid_call();
  call.k.stride[3] = -1;
  expect_rejected(call, "k", "non-negative strides");
  call = valid_call();
  call.v.stride[0] = -6;
  expect_rejected(call, "v", "non-negative strides");
}

TEST_F(AttentionValidation, HeadDimensionsOutOfRange) {
  Call call = valid_call();
  call.q.shape[3] = call.k.shape[3] = 0;
  expect_rejected(call, "q", "[1, 256], got 0");
  call.q.shape[3] = call.k.shape[3] = 257;
  expect_rejected(call, "q", "[1, 256], got 257");
  call = valid_call();
  call.v.shape[3] = call.out.shape[3] = 0;
  expect_rejected(call, "v", "[1, 256], got 0");
  call.v.shape[3] = call.out.shape[3] = 300;
  expect_rejected(call, "v", "[1, 256], got 300");
}

TEST_F(AttentionValidation, InconsistentShapes) {
  struct Breakage {
    const char* argument;
    std::function<void(Call&)> apply;
    const char* fragment;
  };
  const std::vector<Breakage> breakages{
      {"k", [](Call& c) { c.k.shape[0] = 1; }, "[2, *, *, 8]"},
      {"k", [](Call& c) { c.k.shape[1] = 2; },
       "key/value heads (shape[1]) that divides the 3 query heads of q, got 2"},
      {"k", [](Call& c) { c.k.shape[1] = 0; }, "at least one key/value head"},
      {"k", [](Call& c) { c.k.shape[3] = 7; }, "[2, *, *, 8]"},
      {"v", [](Call& c) { c.v.shape[0] = 1; }, "[2, 3, 7, *]"},
      {"v", [](Call& c) { c.v.shape[1] = 1; }, "[2, 3, 7, *]"},
      {"v", [](Call& c) { c.v.shape[2] = 6; }, "[2, 3, 7, *]"},
      {"out", [](Call& c) { c.out.shape[0] = 1; }, "[2, 3, 5, 6]"},
      {"out", [](Call& c) { c.out.shape[1] = 1; }, "[2, 3, 5, 6]"},
      {"out", [](Call& c) { c.out.shape[2] = 4; }, "[2, 3, 5, 6]"},
      {"out", [](Call& c) { c.out.shape[3] = 5; }, "[2, 3, 5, 6]"},
  };
  for (const Breakage& breakage : breakages) {
    Call call = valid_call();
    breakage.apply(call);
    SCOPED_TRACE(std::string(breakage.argument) + " " + breakage.fragment);
    expect_rejected(call, breakage.argument, breakage.fragment);
  }
}

TEST_F(AttentionValidation, DtypeMismatchesAndUnknownDtypes) {
  Call call = valid_call();
  call.k.dtype = DType::bf16;
  call.k.stride = contiguous_strides(call.k.shape);
  expect_rejected(call, "k", "expected dtype f32 (same as q), got bf16");
  call = valid_call();
  call.v.dtype = DType::bf16;
  expect_rejected(call, "v", "got bf16");
  call = valid_call();
  call.q.dtype = static_cast<DType>(7);
  expect_rejected(call, "q", "f32 or bf16");
  call = valid_call();
  call.out.dtype = static_cast<DType>(9);
  expect_rejected(call, "out", "f32 or bf16");
}

TEST_F(AttentionValidation, AdditiveMaskBatchStride) {
  Call call = valid_call();
  call.options.mask.additive_batch_stride = -2;
  expect_rejected(call, "options.mask.additive_batch_stride", "got -2");
  call.options.mask.additive_batch_stride = 6;  // < Lk with B = 2: rows would overlap
  expect_rejected(call, "options.mask.additive_batch_stride", "Lk = 7");
  call.options.mask.additive_batch_stride = 0;
  expect_rejected(call, "options.mask.additive_batch_stride", "got 0");
  call.options.mask.additive_batch_stride = 7;
  expect_accepted(call);
}

TEST_F(AttentionValidation, ValidLengthsOutOfRange) {
  Call call = valid_call();
  lengths_[1] = 8;
  expect_rejected(call, "options.mask.valid_lengths", "valid_lengths[1] = 8");
  lengths_[1] = -1;
  expect_rejected(call, "options.mask.valid_lengths", "valid_lengths[1] = -1");
  lengths_[1] = 0;
  expect_accepted(call);
}

TEST_F(AttentionValidation, NonFiniteScale) {
  for (float scale : {kNaN, kInf, -kInf}) {
    Call call = valid_call();
    call.options.scale = scale;
    expect_rejected(call, "options.scale", "finite");
  }
}

TEST_F(AttentionValidation, NegativeThreads) {
  Call call = valid_call();
  call.options.threads = -1;
  expect_rejected(call, "options.threads", "got -1");
}

TEST_F(AttentionValidation, UnknownImplAndIsa) {
  Call call = valid_call();
  call.options.impl = static_cast<AttentionImpl>(9);
  expect_rejected(call, "options.impl", "got enum value 9");
  call = valid_call();
  call.options.isa = static_cast<Isa>(9);
  expect_rejected(call, "options.isa", "got enum value 9");
}

TEST_F(AttentionValidation, InvalidSparsityPattern) {
  const std::vector<SparsityPattern> invalid{{2, 2}, {0, 4}, {3, 9}, {-1, 2}, {2, 0}, {5, 4}};
  for (const SparsityPattern& pattern : invalid) {
    Call call = valid_call();
    call.options.pattern = pattern;
    SCOPED_TRACE(std::to_string(pattern.n) + ":" + std::to_string(pattern.m));
    expect_rejected(call, "options.pattern", "1 <= N < M <= 8");
  }
  Call call = valid_call();
  call.options.pattern = {7, 8};
  expect_accepted(call);
}

TEST_F(AttentionValidation, UnsupportedIsa) {
  for (Isa isa : all_isas()) {
    if (isa_supported(isa)) continue;
    Call call = valid_call();
    call.options.isa = isa;
    expect_rejected<Unsupported>(call, "options.isa", isa_name(isa));
    return;
  }
  GTEST_SKIP() << "this CPU supports every ISA";
}

TEST_F(AttentionValidation, MisalignedData) {
  Call call = valid_call();
  call.q.data = reinterpret_cast<const char*>(call.q.data) + 2;
  expect_rejected(call, "q", "aligned to 4 bytes");
  HostTensor out_bf16({2, 3, 5, 6}, DType::bf16);
  call = valid_call();
  call.out = out_bf16.mutable_view();
  call.out.data = reinterpret_cast<char*>(call.out.data) + 1;
  expect_rejected(call, "out", "aligned to 2 bytes");
}

TEST_F(AttentionValidation, ExtentsThatOverflow) {
  Call call = valid_call();
  call.q.shape = {int64_t{1} << 40, 3, int64_t{1} << 40, 8};
  call.out.shape = {int64_t{1} << 40, 3, int64_t{1} << 40, 6};
  call.k.shape[0] = call.v.shape[0] = int64_t{1} << 40;
  expect_rejected(call, "q", "2^63");
  call = valid_call();
  call.v.stride[0] = std::numeric_limits<int64_t>::max() / 2;
  expect_rejected(call, "v", "2^63");
  call = valid_call();
  call.options.mask.additive_batch_stride = std::numeric_limits<int64_t>::max();
  expect_rejected(call, "options.mask.additive", "2^63");
}

TEST_F(AttentionValidation, OutWithSelfOverlappingStrides) {
  Call call = valid_call();
  call.out.stride[1] = 0;  // three heads share one slot
  expect_rejected(call, "out", "its own memory");
  call = valid_call();
  call.out.stride[2] = 1;  // rows overlap columns
  expect_rejected(call, "out", "its own memory");
  // A zero stride on an axis of size 1 is harmless.
  HostTensor single({1, 3, 5, 6}, DType::f32);
  Call one_batch = valid_call();
  one_batch.q.shape[0] = one_batch.k.shape[0] = one_batch.v.shape[0] = 1;
  one_batch.out = single.mutable_view();
  one_batch.out.stride[0] = 0;
  expect_accepted(one_batch);
}

TEST_F(AttentionValidation, OutAliasingAnInput) {
  // out placed over q's storage (same dtype and size).
  Call call = valid_call();
  call.out.data = const_cast<void*>(call.q.data);
  call.out.shape = {2, 3, 5, 6};
  call.out.stride = contiguous_strides(call.out.shape);
  expect_rejected(call, "out", "disjoint from q");

  // Partial overlaps inside one arena: v occupies [0, 252), out starts inside it.
  float* arena = arena_.data();
  call = valid_call();
  call.v.data = arena;
  call.out.data = arena + 250;
  expect_rejected(call, "out", "disjoint from v");
  call = valid_call();
  call.out.data = arena;  // out covers [0, 180)
  call.k.data = arena + 179;
  expect_rejected(call, "out", "disjoint from k");
  call.k.data = arena + 180;  // touching is not overlapping
  expect_accepted(call);

  call = valid_call();
  call.out.data = arena;
  call.options.mask.additive = arena + 100;
  expect_rejected(call, "out", "disjoint from options.mask.additive");
}

TEST_F(AttentionValidation, OutAliasingValidLengths) {
  std::vector<int64_t> storage(256, 3);
  Call call = valid_call();
  call.out.data = storage.data();
  call.options.mask.valid_lengths = storage.data() + 10;
  expect_rejected(call, "out", "disjoint from options.mask.valid_lengths");
}

TEST_F(AttentionValidation, InputsMayAliasEachOtherAndBroadcast) {
  Call call = valid_call();
  call.k = call.q;  // self-attention over the same buffer, Lk = Lq = 5
  call.k.shape[2] = 5;
  call.v = call.q;
  call.v.shape[3] = 6;
  call.out.shape[3] = 6;
  call.options.mask = {};
  expect_accepted(call);
  call = valid_call();
  call.k.stride[1] = 0;  // one key head shared by all query heads
  call.v.stride[1] = 0;
  expect_accepted(call);
}

// ---------------------------------------------------------------------------------------
// Edge cases, run on every implementation and every ISA this CPU supports.

struct Target {
  AttentionImpl impl;
  Isa isa;
  SparsityPattern pattern;
};

// The edge cases hold for dense and N:M attention alike (3:5 leaves partial groups).
std::vector<Target> all_targets() {
  std::vector<Target> targets;
  for (SparsityPattern pattern :
       {SparsityPattern{}, SparsityPattern{2, 4}, SparsityPattern{3, 5}}) {
    targets.push_back({AttentionImpl::reference, Isa::scalar, pattern});
    for (AttentionImpl impl : {AttentionImpl::unfused, AttentionImpl::fused}) {
      for (Isa isa : all_isas()) targets.push_back({impl, isa, pattern});
    }
  }
  return targets;
}

class AttentionEdgeCases : public ::testing::TestWithParam<Target> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam().isa)) GTEST_SKIP() << isa_name(GetParam().isa) << " unsupported";
  }

  AttentionOptions options() const {
    AttentionOptions result;
    result.impl = GetParam().impl;
    result.isa = GetParam().isa;
    result.pattern = GetParam().pattern;
    return result;
  }

  // Runs the target and, on the same inputs, the reference; returns both outputs.
  std::pair<std::vector<float>, std::vector<float>> run_both(const HostTensor& q,
                                                             const HostTensor& k,
                                                             const HostTensor& v,
                                                             AttentionOptions opts) const {
    const Shape out_shape{q.shape()[0], q.shape()[1], q.shape()[2], v.shape()[3]};
    HostTensor out(out_shape, DType::f32), ref(out_shape, DType::f32);
    out.fill_storage(kSentinel);
    attention(q.view(), k.view(), v.view(), out.mutable_view(), opts);
    opts.impl = AttentionImpl::reference;
    attention(q.view(), k.view(), v.view(), ref.mutable_view(), opts);
    return {out.values(), ref.values()};
  }
};

TEST_P(AttentionEdgeCases, EmptyQueriesBatchesOrHeadsNeedNoData) {
  for (const Shape& q_shape : std::vector<Shape>{{2, 3, 0, 8}, {0, 3, 5, 8}, {2, 0, 5, 8}}) {
    SCOPED_TRACE(shape_string(q_shape));
    const auto [b, h, lq, d] = q_shape;
    const ConstTensorView q{nullptr, DType::f32, q_shape, contiguous_strides(q_shape)};
    const Shape k_shape{b, h, 7, d}, out_shape{b, h, lq, 6};
    std::vector<float> k(static_cast<size_t>(b * h * 7 * d)), v(static_cast<size_t>(b * h * 7 * 6));
    const TensorView out{nullptr, DType::f32, out_shape, contiguous_strides(out_shape)};
    EXPECT_NO_THROW(attention(q, const_view(k.data(), k_shape), const_view(v.data(), {b, h, 7, 6}),
                              out, options()));
  }
}

TEST_P(AttentionEdgeCases, NoKeysGivesZeros) {
  HostTensor q({2, 3, 5, 8}, DType::f32), out({2, 3, 5, 6}, DType::f32);
  fill_uniform(q, 4);
  out.fill_storage(kSentinel);
  const Shape k_shape{2, 3, 0, 8}, v_shape{2, 3, 0, 6};
  const ConstTensorView k{nullptr, DType::f32, k_shape, contiguous_strides(k_shape)};
  const ConstTensorView v{nullptr, DType::f32, v_shape, contiguous_strides(v_shape)};
  for (bool causal : {false, true}) {
    AttentionOptions opts = options();
    opts.causal = causal;
    attention(q.view(), k, v, out.mutable_view(), opts);
    for (float x : out.values()) ASSERT_EQ(x, 0.0f);
  }
}

TEST_P(AttentionEdgeCases, FullyMaskedRowsGiveZeros) {
  HostTensor q({3, 2, 9, 16}, DType::f32), k({3, 2, 11, 16}, DType::f32),
      v({3, 2, 11, 5}, DType::f32);
  fill_uniform(q, 5);
  fill_uniform(k, 6);
  fill_uniform(v, 7);
  // Batch 0: no valid keys. Batch 1: every key -inf. Batch 2: ordinary.
  const std::vector<int64_t> lengths{0, 11, 6};
  std::vector<float> mask(3 * 11, 0.0f);
  std::fill(mask.begin() + 11, mask.begin() + 22, -kInf);
  AttentionOptions opts = options();
  opts.mask.valid_lengths = lengths.data();
  opts.mask.additive = mask.data();
  const auto [got, ref] = run_both(q, k, v, opts);
  const size_t per_batch = 2 * 9 * 5;
  for (size_t i = 0; i < 2 * per_batch; ++i) ASSERT_EQ(got[i], 0.0f) << "at " << i;
  EXPECT_TRUE(all_close(got, ref, 1e-5));
}

TEST_P(AttentionEdgeCases, CausalWithMoreQueriesThanKeysZeroesLeadingRows) {
  HostTensor q({1, 2, 9, 8}, DType::f32), k({1, 2, 4, 8}, DType::f32), v({1, 2, 4, 3}, DType::f32);
  fill_uniform(q, 8);
  fill_uniform(k, 9);
  fill_uniform(v, 10);
  AttentionOptions opts = options();
  opts.causal = true;
  const auto [got, ref] = run_both(q, k, v, opts);
  for (int64_t h = 0; h < 2; ++h) {
    for (int64_t i = 0; i < 9; ++i) {
      for (int64_t c = 0; c < 3; ++c) {
        const float x = got[static_cast<size_t>((h * 9 + i) * 3 + c)];
        if (i < 5) {
          EXPECT_EQ(x, 0.0f) << "row " << i;  // i + Lk - Lq < 0: no visible key
        } else {
          EXPECT_NE(x, 0.0f) << "row " << i;
        }
      }
    }
  }
  EXPECT_TRUE(all_close(got, ref, 1e-5));
}

TEST_P(AttentionEdgeCases, NaNInQueryPoisonsOnlyItsRow) {
  HostTensor q({2, 2, 6, 8}, DType::f32), k({2, 2, 7, 8}, DType::f32), v({2, 2, 7, 4}, DType::f32);
  fill_uniform(q, 11);
  fill_uniform(k, 12);
  fill_uniform(v, 13);
  q.set(1, 0, 3, 5, kNaN);
  const auto [got, ref] = run_both(q, k, v, options());
  const size_t row_begin = static_cast<size_t>(((1 * 2 + 0) * 6 + 3) * 4);
  for (size_t i = 0; i < got.size(); ++i) {
    const bool in_row = i >= row_begin && i < row_begin + 4;
    EXPECT_EQ(std::isnan(got[i]), in_row) << "at " << i << ": " << got[i];
    if (!in_row) {
      EXPECT_TRUE(std::isfinite(got[i])) << "at " << i;
    }
  }
  EXPECT_TRUE(all_close(got, ref, 1e-5));
}

TEST_P(AttentionEdgeCases, PositiveInfinityScoreGivesNaN) {
  HostTensor q({2, 2, 5, 8}, DType::f32), k({2, 2, 6, 8}, DType::f32), v({2, 2, 6, 4}, DType::f32);
  fill_uniform(q, 14);
  fill_uniform(k, 15, 0.1f, 1.0f);  // positive, so an infinite query component scores +inf
  fill_uniform(v, 16);
  q.set(0, 1, 2, 0, kInf);
  // Batch 1, key 4: every row of batch 1 scores +inf there (a positive first query component
  // against an infinite key; masks may not hold +inf).
  for (int64_t h = 0; h < 2; ++h) {
    k.set(1, h, 4, 0, kInf);
    for (int64_t i = 0; i < 5; ++i) q.set(1, h, i, 0, 0.5f);
  }
  const auto [got, ref] = run_both(q, k, v, options());
  for (size_t i = 0; i < got.size(); ++i) {
    const size_t row = i / 4;  // flat (b, h, i)
    const bool poisoned = row == (0 * 2 + 1) * 5 + 2 || row >= 2 * 5;
    EXPECT_EQ(std::isnan(got[i]), poisoned) << "at " << i << ": " << got[i];
  }
  EXPECT_TRUE(all_close(got, ref, 1e-5));
}

TEST_P(AttentionEdgeCases, StridedViewsMatchContiguous) {
  const Shape q_shape{2, 3, 13, 24}, k_shape{2, 3, 17, 24}, v_shape{2, 3, 17, 20},
      out_shape{2, 3, 13, 20};
  for (DType out_dtype : {DType::f32, DType::bf16}) {
    HostTensor q(q_shape, DType::f32), k(k_shape, DType::f32), v(v_shape, DType::f32);
    fill_uniform(q, 17);
    fill_uniform(k, 18);
    fill_uniform(v, 19);
    AttentionOptions opts = options();
    opts.causal = true;
    HostTensor expected(out_shape, out_dtype);
    attention(q.view(), k.view(), v.view(), expected.mutable_view(), opts);
    for (Layout layout : {Layout::transposed, Layout::padded}) {
      SCOPED_TRACE(layout == Layout::transposed ? "transposed" : "padded");
      HostTensor qs(q_shape, DType::f32, layout), ks(k_shape, DType::f32, layout),
          vs(v_shape, DType::f32, layout), outs(out_shape, out_dtype, layout);
      // NaN in the gaps: reading one would poison the result.
      for (HostTensor* input : {&qs, &ks, &vs}) input->fill_storage(kNaN);
      fill_uniform(qs, 17);
      fill_uniform(ks, 18);
      fill_uniform(vs, 19);
      outs.fill_storage(kSentinel);
      attention(qs.view(), ks.view(), vs.view(), outs.mutable_view(), opts);
      EXPECT_TRUE(all_close(outs.values(), expected.values(), 1e-6));
      // Only elements of out are written: the padding keeps the sentinel.
      if (layout == Layout::padded) {
        HostTensor untouched(out_shape, out_dtype, layout);
        untouched.fill_storage(kSentinel);
        HostTensor rewritten = outs;
        rewritten.for_each_index([&](int64_t a, int64_t b, int64_t c, int64_t d) {
          rewritten.set(a, b, c, d, kSentinel);
        });
        EXPECT_EQ(rewritten.bytes(), untouched.bytes()) << "a padding slot of out was written";
      }
    }
  }
}

TEST_P(AttentionEdgeCases, BroadcastKeyValueHeadsMatchMaterialized) {
  HostTensor q({2, 4, 9, 16}, DType::f32), k({2, 1, 11, 16}, DType::f32),
      v({2, 1, 11, 8}, DType::f32);
  fill_uniform(q, 20);
  fill_uniform(k, 21);
  fill_uniform(v, 22);
  HostTensor k_full({2, 4, 11, 16}, DType::f32), v_full({2, 4, 11, 8}, DType::f32);
  k_full.for_each_index([&](int64_t a, int64_t b, int64_t c, int64_t d) {
    k_full.set(a, b, c, d, k.get(a, 0, c, d));
  });
  v_full.for_each_index([&](int64_t a, int64_t b, int64_t c, int64_t d) {
    v_full.set(a, b, c, d, v.get(a, 0, c, d));
  });
  ConstTensorView k_broadcast = k.view(), v_broadcast = v.view();
  k_broadcast.shape[1] = v_broadcast.shape[1] = 4;
  k_broadcast.stride[1] = v_broadcast.stride[1] = 0;
  HostTensor out({2, 4, 9, 8}, DType::f32), expected({2, 4, 9, 8}, DType::f32);
  attention(q.view(), k_broadcast, v_broadcast, out.mutable_view(), options());
  attention(q.view(), k_full.view(), v_full.view(), expected.mutable_view(), options());
  EXPECT_TRUE(all_close(out.values(), expected.values(), 1e-6));
}

std::string target_name(const ::testing::TestParamInfo<Target>& info) {
  const SparsityPattern& pattern = info.param.pattern;
  return std::string(impl_name(info.param.impl)) + "_" + isa_name(info.param.isa) +
         (pattern.dense() ? ""
                          : "_nm" + std::to_string(pattern.n) + "of" + std::to_string(pattern.m));
}

INSTANTIATE_TEST_SUITE_P(AllTargets, AttentionEdgeCases, ::testing::ValuesIn(all_targets()),
                         target_name);

}  // namespace
}  // namespace dfss::test
