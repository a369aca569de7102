// The unfused and fused implementations, on every ISA this CPU supports, against the
// reference over a grid of shapes, masks, dtypes and N:M patterns; and their thread-count
// determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "attention_test_util.h"
#include "dfss/attention.h"

namespace dfss::test {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

enum class MaskKind {
  none,
  additive,      // random biases, ~10% -inf, keys 0-2 always -inf
  lengths,       // valid_lengths: all keys for batch 0, a random prefix for the others
  both,          // additive and lengths together
  fully_masked,  // batch 0 has no valid key, batch 1 only -inf biases, batch 2 is ordinary
};

const char* mask_name(MaskKind mask) {
  switch (mask) {
    case MaskKind::none: return "nomask";
    case MaskKind::additive: return "additive";
    case MaskKind::lengths: return "lengths";
    case MaskKind::both: return "both";
    case MaskKind::fully_masked: return "fullymasked";
  }
  return "?";
}

struct GridCase {
  int64_t batch, heads, lq, lk, d, dv;
  bool causal = false;
  MaskKind mask = MaskKind::none;
  DType in = DType::f32;
  DType out = DType::f32;
  SparsityPattern pattern{};

  Shape out_shape() const { return {batch, heads, lq, dv}; }
  std::string name() const {
    std::ostringstream text;  // not operator+: GCC 12 warns falsely (-Wrestrict) on it
    text << "B" << batch << "H" << heads << "_q" << lq << "k" << lk << "_d" << d << "v" << dv
         << (causal ? "_causal_" : "_") << mask_name(mask) << "_" << dtype_name(in) << "in_"
         << dtype_name(out) << "out";
    if (!pattern.dense()) text << "_nm" << pattern.n << "of" << pattern.m;
    return text.str();
  }
};

// Sizes straddle multiples of 64 (63/65, 383/385) and, further down, the kernels' 6-row
// tiles, 48-row blocks and 128-key blocks; the largest problems use one head so the grid
// stays affordable under ASan.
std::vector<GridCase> build_grid() {
  using M = MaskKind;
  constexpr DType f32 = DType::f32, bf16 = DType::bf16;
  std::vector<GridCase> cases;
  // Sequence lengths, Lq != Lk included, with and without the causal rule.
  const std::vector<std::pair<int64_t, int64_t>> lengths{
      {1, 1},     {1, 1000},  {3, 65},   {63, 63},   {65, 63},    {63, 385},
      {383, 383}, {385, 383}, {1000, 3}, {65, 1000}, {1000, 1000}};
  for (const auto& [lq, lk] : lengths) {
    const bool large = lq * lk > 20000;
    for (bool causal : {false, true}) {
      cases.push_back({large ? 1 : 2, large ? 1 : 3, lq, lk, 64, 64, causal});
    }
  }
  // Head dimensions, then value dimensions that differ from d.
  for (int64_t d : {1, 32, 64, 80, 128, 256}) cases.push_back({2, 3, 65, 63, d, d});
  const std::vector<std::pair<int64_t, int64_t>> dims{{64, 32}, {32, 80},  {256, 1},
                                                      {1, 256}, {80, 128}, {128, 64}};
  for (const auto& [d, dv] : dims) cases.push_back({2, 1, 63, 65, d, dv, true});
  cases.push_back({1, 1, 385, 383, 256, 256, true, M::additive});
  cases.push_back({2, 1, 49, 47, 33, 17, true, M::additive});
  cases.push_back({1, 2, 47, 49, 17, 200, false, M::both});
  cases.push_back({1, 1, 129, 127, 256, 255, true, M::lengths});
  // Edges of the kernels' blocking: 6-row tiles, 48-row blocks, 128-key blocks.
  const std::vector<std::pair<int64_t, int64_t>> tile_edges{{5, 129},  {7, 127},  {47, 257},
                                                            {49, 128}, {48, 256}, {6, 1}};
  for (const auto& [lq, lk] : tile_edges) {
    for (bool causal : {false, true}) cases.push_back({2, 1, lq, lk, 48, 17, causal, M::both});
  }
  // K and V larger than one packing group of the fused implementation (32 MiB).
  cases.push_back({1, 3, 7, 8200, 256, 256, false, M::additive});
  // Every mask kind, with and without the causal rule.
  const std::vector<GridCase> mask_shapes{
      {2, 3, 63, 65, 64, 64}, {2, 1, 385, 383, 80, 32}, {1, 2, 65, 63, 32, 32}};
  for (GridCase shape : mask_shapes) {
    for (M mask : {M::additive, M::lengths, M::both, M::fully_masked}) {
      for (bool causal : {false, true}) {
        GridCase c = shape;
        c.mask = mask;
        c.causal = causal;
        if (mask == M::fully_masked) c.batch = 3;  // one batch of each kind
        cases.push_back(c);
      }
    }
  }
  // bf16 inputs and/or output.
  for (const auto& [in, out] :
       std::vector<std::pair<DType, DType>>{{f32, bf16}, {bf16, f32}, {bf16, bf16}}) {
    cases.push_back({2, 3, 63, 65, 64, 64, true, M::additive, in, out});
    cases.push_back({1, 1, 383, 385, 128, 128, false, M::none, in, out});
    cases.push_back({2, 1, 65, 1000, 256, 64, false, M::lengths, in, out});
    cases.push_back({1, 3, 1, 1, 1, 1, false, M::none, in, out});
    cases.push_back({2, 2, 385, 63, 80, 80, true, M::both, in, out});
  }
  // N:M sparsity against the sparse reference. fp32 inputs only: with bf16 inputs a
  // kernel may legitimately keep a different entry of a near-tie.
  const std::vector<SparsityPattern> patterns{{1, 2}, {2, 4}, {4, 8}, {3, 5}, {1, 8}, {7, 8}};
  for (const SparsityPattern& pattern : patterns) {
    std::vector<GridCase> sparse{{2, 3, 63, 65, 64, 64, true, M::additive},
                                 {1, 1, 383, 385, 128, 32, false, M::lengths},
                                 {3, 1, 49, 130, 33, 17, true, M::fully_masked, f32, bf16}};
    for (GridCase& c : sparse) {
      c.pattern = pattern;
      cases.push_back(c);
    }
  }
  // bf16 inputs with the patterns that have their own bf16 kernels (2:4, 1:2: V packed as
  // pair combos, P rounded to bf16 as in dense bf16). The scores are summed in another
  // order than the reference's, so a near-tie could flip; these seeds have none.
  for (const SparsityPattern& pattern : std::vector<SparsityPattern>{{2, 4}, {1, 2}}) {
    std::vector<GridCase> sparse{{2, 3, 63, 65, 64, 64, true, M::additive, bf16, f32},
                                 {1, 1, 383, 385, 128, 32, false, M::lengths, bf16, bf16},
                                 {3, 1, 49, 130, 33, 17, true, M::fully_masked, bf16, f32},
                                 {1, 2, 100, 1000, 64, 80, true, M::both, bf16, f32},
                                 {2, 1, 7, 129, 1, 1, false, M::none, bf16, f32}};
    for (GridCase& c : sparse) {
      c.pattern = pattern;
      cases.push_back(c);
    }
  }
  return cases;
}

// The sweeps overlap (e.g. d = 64 in both); keep the first of each name.
const std::vector<GridCase>& grid() {
  static const std::vector<GridCase> cases = [] {
    std::vector<GridCase> unique;
    std::set<std::string> names;
    for (const GridCase& c : build_grid()) {
      if (names.insert(c.name()).second) unique.push_back(c);
    }
    return unique;
  }();
  return cases;
}

// The inputs of one case, generated from a fixed seed.
struct GridInputs {
  HostTensor q, k, v;
  std::vector<float> additive;
  int64_t additive_stride = -1;
  std::vector<int64_t> lengths;

  AttentionOptions options(const GridCase& c, AttentionImpl impl, Isa isa) const {
    AttentionOptions result;
    result.impl = impl;
    result.isa = isa;
    result.causal = c.causal;
    result.pattern = c.pattern;
    if (!additive.empty()) {
      result.mask.additive = additive.data();
      result.mask.additive_batch_stride = additive_stride;
    }
    if (!lengths.empty()) result.mask.valid_lengths = lengths.data();
    return result;
  }
};

GridInputs make_inputs(const GridCase& c, uint64_t seed) {
  GridInputs inputs{HostTensor({c.batch, c.heads, c.lq, c.d}, c.in),
                    HostTensor({c.batch, c.heads, c.lk, c.d}, c.in),
                    HostTensor({c.batch, c.heads, c.lk, c.dv}, c.in),
                    {},
                    -1,
                    {}};
  fill_uniform(inputs.q, seed * 4 + 0, -2.0f, 2.0f);  // wider than k: peakier softmax rows
  fill_uniform(inputs.k, seed * 4 + 1);
  fill_uniform(inputs.v, seed * 4 + 2);
  Random random(seed * 4 + 3);
  const bool with_additive =
      c.mask == MaskKind::additive || c.mask == MaskKind::both || c.mask == MaskKind::fully_masked;
  const bool with_lengths =
      c.mask == MaskKind::lengths || c.mask == MaskKind::both || c.mask == MaskKind::fully_masked;
  if (with_additive) {
    // A padded row stride when B > 1, with NaN in the padding: it must never be read.
    inputs.additive_stride = c.batch > 1 ? c.lk + 3 : -1;
    const int64_t stride = c.batch > 1 ? c.lk + 3 : c.lk;
    inputs.additive.assign(static_cast<size_t>(c.batch * stride), kNaN);
    for (int64_t b = 0; b < c.batch; ++b) {
      for (int64_t j = 0; j < c.lk; ++j) {
        float bias = random.integer(0, 9) == 0 || j < 3 ? -kInf : random.uniform(-2.0f, 2.0f);
        if (c.mask == MaskKind::fully_masked) bias = b == 1 ? -kInf : random.uniform(-2, 2);
        inputs.additive[static_cast<size_t>(b * stride + j)] = bias;
      }
    }
  }
  if (with_lengths) {
    for (int64_t b = 0; b < c.batch; ++b) {
      int64_t length = b == 0 ? c.lk : random.integer(1, c.lk);
      if (c.mask == MaskKind::fully_masked) length = b == 0 ? 0 : c.lk;
      inputs.lengths.push_back(length);
    }
  }
  return inputs;
}

// The reference output per case, computed once per process.
const std::vector<float>& reference_output(size_t index) {
  static std::map<size_t, std::vector<float>> cache;
  auto found = cache.find(index);
  if (found != cache.end()) return found->second;
  const GridCase& c = grid()[index];
  const GridInputs inputs = make_inputs(c, index);
  HostTensor out(c.out_shape(), c.out);
  attention(inputs.q.view(), inputs.k.view(), inputs.v.view(), out.mutable_view(),
            inputs.options(c, AttentionImpl::reference, Isa::scalar));
  return cache.emplace(index, out.values()).first->second;
}

using GridParam = std::tuple<size_t, AttentionImpl, Isa>;

class AttentionImplGrid : public ::testing::TestWithParam<GridParam> {};

TEST_P(AttentionImplGrid, MatchesReference) {
  const auto [index, impl, isa] = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << isa_name(isa) << " is not supported by this CPU";
  const GridCase& c = grid()[index];
  const GridInputs inputs = make_inputs(c, index);
  HostTensor out(c.out_shape(), c.out);
  out.fill_storage(kNaN);  // an element left unwritten fails the comparison
  attention(inputs.q.view(), inputs.k.view(), inputs.v.view(), out.mutable_view(),
            inputs.options(c, impl, isa));
  // bf16 anywhere: the reference runs on the same rounded inputs, and a bf16 output may
  // round either way at a tie, so the bound is about one bf16 ulp.
  const bool all_f32 = c.in == DType::f32 && c.out == DType::f32;
  EXPECT_TRUE(all_close(out.values(), reference_output(index), all_f32 ? 1e-5 : 1e-2));
}

std::vector<GridParam> grid_params() {
  std::vector<GridParam> params;
  for (size_t index = 0; index < grid().size(); ++index) {
    for (AttentionImpl impl : {AttentionImpl::unfused, AttentionImpl::fused}) {
      for (Isa isa : all_isas()) params.emplace_back(index, impl, isa);
    }
  }
  return params;
}

std::string grid_param_name(const ::testing::TestParamInfo<GridParam>& info) {
  const auto [index, impl, isa] = info.param;
  return grid()[index].name() + "__" + impl_name(impl) + "_" + isa_name(isa);
}

INSTANTIATE_TEST_SUITE_P(Grid, AttentionImplGrid, ::testing::ValuesIn(grid_params()),
                         grid_param_name);

// ---------------------------------------------------------------------------------------
// Thread count must not change a single bit.

using TargetParam = std::tuple<AttentionImpl, Isa>;

class AttentionThreadDeterminism : public ::testing::TestWithParam<TargetParam> {};

TEST_P(AttentionThreadDeterminism, OutputBitsIndependentOfThreads) {
  const auto [impl, isa] = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << isa_name(isa) << " is not supported by this CPU";
  using M = MaskKind;
  const std::vector<GridCase> cases{
      {1, 2, 65, 63, 64, 64, true, M::none},
      {2, 3, 383, 385, 80, 32, false, M::additive},
      {2, 1, 3, 1000, 128, 128, false, M::lengths},
      {1, 1, 385, 1000, 64, 64, true, M::both},
      {3, 2, 63, 65, 32, 32, true, M::fully_masked, DType::bf16, DType::bf16},
      {2, 2, 385, 383, 64, 48, true, M::both, DType::f32, DType::f32, {2, 4}},
      {1, 3, 65, 1000, 80, 80, false, M::additive, DType::bf16, DType::f32, {3, 8}},
      {2, 2, 385, 383, 64, 48, true, M::both, DType::bf16, DType::f32, {2, 4}},
      {1, 3, 65, 1000, 80, 80, false, M::additive, DType::bf16, DType::bf16, {1, 2}},
  };
  for (size_t index = 0; index < cases.size(); ++index) {
    const GridCase& c = cases[index];
    SCOPED_TRACE(c.name());
    const GridInputs inputs = make_inputs(c, 1000 + index);
    std::vector<std::vector<unsigned char>> results;
    for (int threads : {1, 2, 3}) {
      HostTensor out(c.out_shape(), c.out);
      AttentionOptions options = inputs.options(c, impl, isa);
      options.threads = threads;
      attention(inputs.q.view(), inputs.k.view(), inputs.v.view(), out.mutable_view(), options);
      results.push_back(out.bytes());
    }
    EXPECT_TRUE(results[0] == results[1]) << "threads=1 and threads=2 differ";
    EXPECT_TRUE(results[0] == results[2]) << "threads=1 and threads=3 differ";
  }
}

std::vector<TargetParam> target_params() {
  std::vector<TargetParam> params;
  for (AttentionImpl impl : {AttentionImpl::unfused, AttentionImpl::fused}) {
    for (Isa isa : all_isas()) params.emplace_back(impl, isa);
  }
  return params;
}

std::string target_param_name(const ::testing::TestParamInfo<TargetParam>& info) {
  return std::string(impl_name(std::get<0>(info.param))) + "_" + isa_name(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllTargets, AttentionThreadDeterminism,
                         ::testing::ValuesIn(target_params()), target_param_name);

}  // namespace
}  // namespace dfss::test
