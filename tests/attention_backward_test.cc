// attention_backward: the reference against a naive double implementation written here and
// against central finite differences; the fused implementation on every ISA this CPU
// supports against the naive gradients over a grid of shapes, GQA ratios, masks, windows,
// dtypes, layouts and N:M patterns; thread-count determinism; the single-pass schedule
// against the two-pass one, bit for bit; the tile's N:M pruning against
// sparse::select_group; errors; empty rows.
#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "attention/backward_problem.h"
#include "attention_backward_naive.h"
#include "attention_test_util.h"
#include "dfss/attention.h"
#include "dfss/errors.h"
#include "kernels/attention_backward/backward_kernels.h"
#include "sparse/nm_selection.h"
#include "test_helpers.h"

namespace dfss::test {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

enum class ScoreMask { none, full, per_key, shared_heads };
enum class KeyMask { none, additive, lengths, both };

struct BackwardCase {
  int64_t batch, heads, kv_heads, lq, lk, d, dv;
  bool causal = false;
  int64_t window = 0;
  ScoreMask score = ScoreMask::none;
  KeyMask key = KeyMask::none;
  DType in = DType::f32, out = DType::f32, grad = DType::f32;
  SparsityPattern pattern{};
  Layout layout = Layout::contiguous;

  std::string name() const {
    static const char* score_names[] = {"", "_smfull", "_smkey", "_smheads"};
    static const char* key_names[] = {"", "_additive", "_lengths", "_both"};
    static const char* layout_names[] = {"", "_transposed", "_padded"};
    std::ostringstream text;
    text << "B" << batch << "H" << heads << "kv" << kv_heads << "_q" << lq << "k" << lk << "_d" << d
         << "v" << dv << (causal ? "_causal" : "") << (window ? "_w" + std::to_string(window) : "")
         << score_names[static_cast<int>(score)] << key_names[static_cast<int>(key)] << "_"
         << dtype_name(in) << "in_" << dtype_name(out) << "out_" << dtype_name(grad) << "grad"
         << layout_names[static_cast<int>(layout)];
    if (!pattern.dense()) text << "_nm" << pattern.n << "of" << pattern.m;
    return text.str();
  }
};

// Everything one backward call needs, with the naive results.
struct Setup {
  BackwardCase c;
  std::unique_ptr<HostTensor> q, k, v, d_out, out;
  std::vector<float> additive, score_storage, lse;
  std::vector<int64_t> lengths;
  AttentionOptions options;
  NaiveProblem naive;
  std::vector<double> out_exact, lse_exact;
  // Gradients with D from the exact out (what the reference computes) and from `out` as
  // passed, rounded to its dtype (what the fused path is given).
  std::vector<double> dq, dk, dv, dq_given, dk_given, dv_given;

  Shape q_shape() const { return {c.batch, c.heads, c.lq, c.d}; }
  Shape k_shape() const { return {c.batch, c.kv_heads, c.lk, c.d}; }
  Shape v_shape() const { return {c.batch, c.kv_heads, c.lk, c.dv}; }
};

std::vector<double> as_double(const HostTensor& t) {
  const std::vector<float> values = t.values();
  return {values.begin(), values.end()};
}

// lengths: valid_lengths for KeyMask::lengths (random prefixes when empty).
std::unique_ptr<Setup> make_setup(const BackwardCase& c, uint64_t seed,
                                  const std::vector<int64_t>& lengths = {}) {
  auto s = std::make_unique<Setup>();
  s->c = c;
  s->q = std::make_unique<HostTensor>(s->q_shape(), c.in, c.layout);
  s->k = std::make_unique<HostTensor>(s->k_shape(), c.in, c.layout);
  s->v = std::make_unique<HostTensor>(s->v_shape(), c.in, c.layout);
  s->d_out = std::make_unique<HostTensor>(Shape{c.batch, c.heads, c.lq, c.dv}, c.in, c.layout);
  s->out = std::make_unique<HostTensor>(Shape{c.batch, c.heads, c.lq, c.dv}, c.out, c.layout);
  // Scores of a few units, so that softmax rows are neither flat nor one-hot.
  fill_uniform(*s->q, seed, -2.0f, 2.0f);
  fill_uniform(*s->k, seed + 1, -2.0f, 2.0f);
  fill_uniform(*s->v, seed + 2);
  fill_uniform(*s->d_out, seed + 3);
  Random random(seed + 4);
  AttentionOptions& o = s->options;
  o.causal = c.causal;
  o.window = c.window;
  o.pattern = c.pattern;
  if (c.key == KeyMask::additive || c.key == KeyMask::both) {
    s->additive.resize(static_cast<size_t>(c.batch * c.lk));
    for (float& x : s->additive)
      x = random.uniform(0.0f, 1.0f) < 0.1f ? -kInf : random.uniform(-1.0f, 1.0f);
    if (!s->additive.empty()) s->additive[0] = -kInf;
    o.mask.additive = s->additive.data();
  }
  if (c.key == KeyMask::lengths || c.key == KeyMask::both) {
    s->lengths = lengths;
    for (int64_t b = 0; b < c.batch && lengths.empty(); ++b)
      s->lengths.push_back(b == 0 ? c.lk : random.integer(0, c.lk));
    o.mask.valid_lengths = s->lengths.data();
  }
  if (c.score != ScoreMask::none) {
    const Shape shape{c.batch, c.heads, c.lq, c.lk};
    std::array<int64_t, 4> stride = contiguous_strides(shape);
    if (c.score == ScoreMask::per_key) stride = {0, 0, 0, 1};
    if (c.score == ScoreMask::shared_heads) stride = {c.lq * c.lk, 0, c.lk, 1};
    int64_t slots = 1;
    for (int a = 0; a < 4; ++a) slots += (shape[a] - 1) * stride[a];
    s->score_storage.resize(static_cast<size_t>(std::max<int64_t>(slots, 1)));
    for (float& x : s->score_storage)
      x = random.uniform(0.0f, 1.0f) < 0.05f ? -kInf : random.uniform(-2.0f, 2.0f);
    o.score_mask = {s->score_storage.data(), DType::f32, shape, stride};
  }

  NaiveProblem& n = s->naive;
  n.batch = c.batch, n.heads = c.heads, n.kv_heads = c.kv_heads, n.lq = c.lq, n.lk = c.lk;
  n.d = c.d, n.dv = c.dv;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.d)));
  n.scale = scale;
  n.q = as_double(*s->q), n.k = as_double(*s->k), n.v = as_double(*s->v);
  n.d_out = as_double(*s->d_out);
  n.bias.assign(static_cast<size_t>(c.batch * c.heads * c.lq * c.lk), 0.0f);
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.heads; ++h)
      for (int64_t i = 0; i < c.lq; ++i)
        for (int64_t j = 0; j < c.lk; ++j) {
          float bias = 0.0f;
          const auto& sm = o.score_mask;
          if (sm.data) {
            bias = static_cast<const float*>(
                sm.data)[b * sm.stride[0] + h * sm.stride[1] + i * sm.stride[2] + j * sm.stride[3]];
          }
          if (o.mask.additive) bias += o.mask.additive[b * c.lk + j];
          n.bias[n.entry(b, h, i, j)] = bias;
        }
  select_attended(n, o, scale, c.pattern);
  naive_forward(n, s->out_exact, s->lse_exact);
  s->out->for_each_index([&](int64_t b, int64_t h, int64_t i, int64_t x) {
    s->out->set(b, h, i, x, static_cast<float>(s->out_exact[n.qi(b, h, i) * n.dv + x]));
  });
  s->lse.assign(s->lse_exact.begin(), s->lse_exact.end());
  naive_backward(n, s->out_exact, s->lse_exact, s->dq, s->dk, s->dv);
  if (c.out == DType::bf16) {
    naive_backward(n, as_double(*s->out), s->lse_exact, s->dq_given, s->dk_given, s->dv_given);
  } else {
    s->dq_given = s->dq, s->dk_given = s->dk, s->dv_given = s->dv;
  }
  return s;
}

struct Gradients {
  HostTensor dq, dk, dv;
};

Gradients run_backward(const Setup& s, AttentionOptions options,
                       Layout layout = Layout::contiguous) {
  Gradients g{HostTensor(s.q_shape(), s.c.grad, layout), HostTensor(s.k_shape(), s.c.grad, layout),
              HostTensor(s.v_shape(), s.c.grad, layout)};
  // A sentinel in every slot shows elements left unwritten.
  g.dq.fill_storage(1234.5f), g.dk.fill_storage(1234.5f), g.dv.fill_storage(1234.5f);
  attention_backward(s.q->view(), s.k->view(), s.v->view(), s.out->view(), s.d_out->view(),
                     s.lse.data(), g.dq.mutable_view(), g.dk.mutable_view(), g.dv.mutable_view(),
                     options);
  return g;
}

// max |got - want| <= tolerance * max |want| (the gradient's scale), all finite. A
// gradient that is exactly 0 (one key: dS = dP - D = 0) still carries the rounding of its
// terms: `floor` bounds the scale from below (callers pass 1 % of the other gradients').
::testing::AssertionResult close_to(const HostTensor& got, const std::vector<double>& want,
                                    double tolerance, double floor = 0.0) {
  const std::vector<float> values = got.values();
  double scale = floor;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  double worst = 0.0;
  size_t worst_at = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return ::testing::AssertionFailure() << "non-finite " << values[i] << " at flat index " << i;
    }
    const double diff = std::fabs(values[i] - want[i]);
    if (diff > worst) worst = diff, worst_at = i;
  }
  if (worst <= tolerance * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "max |diff| " << worst << " at flat index " << worst_at << " (got " << values[worst_at]
         << ", want " << want[worst_at] << ") exceeds " << tolerance << " x scale " << scale;
}

double joint_scale(const Setup& s) {
  double scale = 0.0;
  for (const auto* grad : {&s.dq_given, &s.dk_given, &s.dv_given})
    for (double x : *grad) scale = std::max(scale, std::fabs(x));
  return scale;
}

// fp32 gradients: accumulations of a few hundred fp32 terms; bf16 gradients: one rounding
// to 8 significant bits (2^-9 relative) on top.
double tolerance_for(DType grad) {
  return grad == DType::f32 ? 2e-5 : 1.0 / 256 + 2e-5;
}

std::vector<BackwardCase> build_grid() {
  constexpr DType f32 = DType::f32, bf16 = DType::bf16;
  using S = ScoreMask;
  using K = KeyMask;
  using L = Layout;
  std::vector<BackwardCase> cases;
  // Shapes, odd lengths, Lq != Lk, head dimensions, GQA ratios.
  cases.push_back({1, 1, 1, 1, 1, 32, 32});
  cases.push_back({2, 2, 2, 5, 7, 64, 64});
  cases.push_back(
      {1, 2, 1, 127, 130, 80, 48, true, 0, S::none, K::additive, f32, f32, f32, {}, L::transposed});
  cases.push_back({1, 4, 1, 130, 127, 128, 128, true, 17});
  cases.push_back({2, 8, 1, 33, 300, 32, 16, false, 0, S::full, K::lengths});
  cases.push_back(
      {1, 2, 2, 130, 257, 256, 256, false, 0, S::none, K::none, f32, f32, f32, {}, L::padded});
  cases.push_back({1, 2, 1, 300, 5, 64, 64, true});  // Lq > Lk: the first rows see nothing
  cases.push_back({2, 4, 2, 65, 200, 64, 32, false, 40, S::shared_heads, K::both});
  cases.push_back({1, 2, 1, 200, 200, 64, 64, true, 0, S::per_key, K::none});
  // N:M patterns (key blocks of 128 keys for M | 128, of 126 for 3:7), with the options.
  cases.push_back({2, 2, 1, 130, 300, 64, 64, true, 0, S::none, K::both, f32, f32, f32, {2, 4}});
  cases.push_back({1, 4, 2, 127, 130, 32, 80, false, 0, S::full, K::none, f32, f32, f32, {1, 4}});
  cases.push_back(
      {1, 2, 2, 100, 257, 64, 64, true, 50, S::per_key, K::additive, f32, f32, f32, {2, 8}});
  cases.push_back({2,
                   2,
                   1,
                   130,
                   300,
                   80,
                   64,
                   false,
                   0,
                   S::none,
                   K::lengths,
                   f32,
                   f32,
                   f32,
                   {3, 7},
                   L::transposed});
  cases.push_back(
      {1, 2, 1, 5, 260, 64, 32, true, 200, S::shared_heads, K::none, f32, f32, f32, {3, 7}});
  // bf16 inputs: out in f32 or bf16, gradients in f32 or bf16.
  cases.push_back({1, 2, 1, 127, 130, 64, 64, true, 0, S::none, K::additive, bf16, f32, f32});
  cases.push_back(
      {1, 2, 2, 65, 140, 64, 64, false, 0, S::full, K::none, bf16, bf16, bf16, {}, L::padded});
  cases.push_back({2, 2, 1, 100, 130, 32, 32, false, 0, S::none, K::both, bf16, f32, bf16, {2, 4}});
  return cases;
}

class BackwardGrid : public ::testing::TestWithParam<BackwardCase> {};

TEST_P(BackwardGrid, ReferenceMatchesNaive) {
  const auto s = make_setup(GetParam(), 11);
  AttentionOptions options = s->options;
  options.impl = AttentionImpl::reference;
  options.threads = 2;
  const Gradients g = run_backward(*s, options);
  const double tolerance = GetParam().grad == DType::f32 ? 1e-6 : tolerance_for(DType::bf16);
  EXPECT_TRUE(close_to(g.dq, s->dq, tolerance)) << "dq";
  EXPECT_TRUE(close_to(g.dk, s->dk, tolerance)) << "dk";
  EXPECT_TRUE(close_to(g.dv, s->dv, tolerance)) << "dv";
}

TEST_P(BackwardGrid, FusedMatchesNaiveOnEveryIsa) {
  const auto s = make_setup(GetParam(), 11);
  for (Isa isa : all_isas()) {
    if (!isa_supported(isa)) continue;
    AttentionOptions options = s->options;
    options.isa = isa;
    options.threads = 2;
    // Gradients in the layout of the inputs, so strided outputs are covered too.
    const Gradients g = run_backward(*s, options, GetParam().layout);
    const double tolerance = tolerance_for(GetParam().grad);
    const double floor = 0.01 * joint_scale(*s);
    EXPECT_TRUE(close_to(g.dq, s->dq_given, tolerance, floor)) << "dq on " << isa_name(isa);
    EXPECT_TRUE(close_to(g.dk, s->dk_given, tolerance, floor)) << "dk on " << isa_name(isa);
    EXPECT_TRUE(close_to(g.dv, s->dv_given, tolerance, floor)) << "dv on " << isa_name(isa);
  }
}

TEST_P(BackwardGrid, FusedIsBitIdenticalForAnyThreadCount) {
  const auto s = make_setup(GetParam(), 12);
  AttentionOptions options = s->options;
  options.threads = 1;
  const Gradients one = run_backward(*s, options);
  for (int threads : {2, 3}) {
    options.threads = threads;
    const Gradients many = run_backward(*s, options);
    EXPECT_EQ(many.dq.bytes(), one.dq.bytes()) << threads << " threads";
    EXPECT_EQ(many.dk.bytes(), one.dk.bytes()) << threads << " threads";
    EXPECT_EQ(many.dv.bytes(), one.dv.bytes()) << threads << " threads";
  }
}

// The one-pass schedule (a task per key/value head, every tile once) against the two-pass
// one (tiles recomputed for dQ): the same micro-GEMM calls in the same order, so the same
// bits, on every ISA, whichever the thread count picks by itself.
TEST_P(BackwardGrid, SinglePassIsBitIdenticalToTwoPasses) {
  const auto s = make_setup(GetParam(), 14);
  for (Isa isa : all_isas()) {
    if (!isa_supported(isa)) continue;
    AttentionOptions options = s->options;
    options.isa = isa;
    options.threads = 2;
    auto run = [&](detail::BackwardSchedule schedule) {
      Gradients g{HostTensor(s->q_shape(), s->c.grad), HostTensor(s->k_shape(), s->c.grad),
                  HostTensor(s->v_shape(), s->c.grad)};
      g.dq.fill_storage(1234.5f), g.dk.fill_storage(1234.5f), g.dv.fill_storage(1234.5f);
      const detail::BackwardProblem problem = detail::validate_backward(
          s->q->view(), s->k->view(), s->v->view(), s->out->view(), s->d_out->view(), s->lse.data(),
          g.dq.mutable_view(), g.dk.mutable_view(), g.dv.mutable_view(), options);
      detail::run_backward_fused(problem, schedule);
      return g;
    };
    const Gradients one = run(detail::BackwardSchedule::single_pass);
    const Gradients two = run(detail::BackwardSchedule::two_pass);
    EXPECT_EQ(one.dq.bytes(), two.dq.bytes()) << "dq on " << isa_name(isa);
    EXPECT_EQ(one.dk.bytes(), two.dk.bytes()) << "dk on " << isa_name(isa);
    EXPECT_EQ(one.dv.bytes(), two.dv.bytes()) << "dv on " << isa_name(isa);
    // And the single pass is right, not just consistent.
    const double floor = 0.01 * joint_scale(*s);
    const double tolerance = tolerance_for(GetParam().grad);
    EXPECT_TRUE(close_to(one.dq, s->dq_given, tolerance, floor)) << "dq on " << isa_name(isa);
    EXPECT_TRUE(close_to(one.dk, s->dk_given, tolerance, floor)) << "dk on " << isa_name(isa);
    EXPECT_TRUE(close_to(one.dv, s->dv_given, tolerance, floor)) << "dv on " << isa_name(isa);
  }
}

// The library's own forward (its out and log-sum-exp, every ISA) feeding the backward: the
// kept set the backward recomputes must be the forward's, or the gradients move far
// beyond rounding.
TEST_P(BackwardGrid, FusedForwardThenFusedBackward) {
  const BackwardCase& c = GetParam();
  const auto s = make_setup(c, 13);
  for (Isa isa : all_isas()) {
    if (!isa_supported(isa)) continue;
    AttentionOptions options = s->options;
    options.isa = isa;
    options.threads = 2;
    HostTensor out(Shape{c.batch, c.heads, c.lq, c.dv}, c.out, c.layout);
    std::vector<float> lse(static_cast<size_t>(c.batch * c.heads * c.lq));
    AttentionOptions forward = options;
    forward.log_sum_exp = lse.data();
    attention(s->q->view(), s->k->view(), s->v->view(), out.mutable_view(), forward);
    Gradients g{HostTensor(s->q_shape(), c.grad), HostTensor(s->k_shape(), c.grad),
                HostTensor(s->v_shape(), c.grad)};
    attention_backward(s->q->view(), s->k->view(), s->v->view(), out.view(), s->d_out->view(),
                       lse.data(), g.dq.mutable_view(), g.dk.mutable_view(), g.dv.mutable_view(),
                       options);
    // bf16 out rounds D = dO·O; the bf16-out cases carry that in their tolerance. So does
    // the avx512_bf16 forward with bf16 inputs, which rounds P to bf16 for its vdpbf16ps P·V
    // (docs/benchmarks.md): its out, and so D, is only as close as bf16.
    const bool rounded_out =
        c.out == DType::bf16 || (isa == Isa::avx512_bf16 && c.in == DType::bf16);
    const double tolerance = rounded_out ? tolerance_for(DType::bf16) : tolerance_for(c.grad);
    const double floor = 0.01 * joint_scale(*s);
    EXPECT_TRUE(close_to(g.dq, s->dq, tolerance, floor)) << "dq on " << isa_name(isa);
    EXPECT_TRUE(close_to(g.dk, s->dk, tolerance, floor)) << "dk on " << isa_name(isa);
    EXPECT_TRUE(close_to(g.dv, s->dv, tolerance, floor)) << "dv on " << isa_name(isa);
  }
}

INSTANTIATE_TEST_SUITE_P(Grid, BackwardGrid, ::testing::ValuesIn(build_grid()),
                         [](const auto& info) { return info.param.name(); });

// The naive gradient (and so the reference's) against central differences of
// L = Σ dO · out, with the attended set held fixed as the contract says.
void check_finite_differences(const BackwardCase& c) {
  const auto s = make_setup(c, 21);
  AttentionOptions options = s->options;
  options.impl = AttentionImpl::reference;
  const Gradients g = run_backward(*s, options);
  const auto loss = [&](const NaiveProblem& n) {
    std::vector<double> out, lse;
    naive_forward(n, out, lse);
    double sum = 0.0;
    for (size_t i = 0; i < out.size(); ++i) sum += n.d_out[i] * out[i];
    return sum;
  };
  const double h = 1e-5;
  const auto differences = [&](std::vector<double> NaiveProblem::*member) {
    NaiveProblem n = s->naive;
    std::vector<double> result((n.*member).size());
    for (size_t i = 0; i < result.size(); ++i) {
      const double x = (n.*member)[i];
      (n.*member)[i] = x + h;
      const double up = loss(n);
      (n.*member)[i] = x - h;
      result[i] = (up - loss(n)) / (2 * h);
      (n.*member)[i] = x;
    }
    return result;
  };
  EXPECT_TRUE(close_to(g.dq, differences(&NaiveProblem::q), 1e-5)) << "dq";
  EXPECT_TRUE(close_to(g.dk, differences(&NaiveProblem::k), 1e-5)) << "dk";
  EXPECT_TRUE(close_to(g.dv, differences(&NaiveProblem::v), 1e-5)) << "dv";
}

TEST(AttentionBackward, ReferenceMatchesFiniteDifferencesDense) {
  check_finite_differences({1, 2, 1, 4, 6, 5, 3, true, 0, ScoreMask::full, KeyMask::additive});
}

TEST(AttentionBackward, ReferenceMatchesFiniteDifferencesSparse) {
  check_finite_differences({1,
                            2,
                            2,
                            5,
                            11,
                            4,
                            3,
                            false,
                            4,
                            ScoreMask::none,
                            KeyMask::none,
                            DType::f32,
                            DType::f32,
                            DType::f32,
                            {2, 4}});
}

// Rows that see no key (valid length 0, causal with Lq > Lk, a window past the keys) get
// zero gradients, and keys nobody attends to get zero dk and dv; nothing is NaN.
// The backward tile's N:M pruning (counted for all columns at once) keeps exactly the set
// of sparse::select_group on every ISA, for every pattern, on rows made of ties, ±0, ±inf,
// NaN and -inf-masked runs, and on plain random rows.
TEST(AttentionBackward, PruneKeepsTheSelectGroupSet) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float specials[] = {-kInf, kInf, nan, 0.0f, -0.0f, 1.0f, -1.0f, 2.0f, 1e30f, -1e30f};
  Random random(21);
  for (Isa isa : all_isas()) {
    if (!isa_supported(isa)) continue;
    const kernels::BackwardKernels& k = kernels::backward_kernels(isa);
    for (int m = 2; m <= 8; ++m) {
      const int64_t block_keys = kernels::backward_block_keys(m);
      for (int n = 1; n < m; ++n) {
        for (int trial = 0; trial < 300; ++trial) {
          std::array<float, kernels::kKeyBlock> row;
          row.fill(-kInf);
          const int kind = trial % 4;
          for (int64_t j = 0; j < block_keys; ++j) {
            const float special = specials[random.integer(0, std::size(specials) - 1)];
            const float plain = random.uniform(-3.0f, 3.0f);
            // Specials only, a mix, plain values, or groups of one repeated value.
            row[j] = kind == 0   ? special
                     : kind == 1 ? (random.integer(0, 1) ? special : plain)
                     : kind == 2 ? plain
                     : j % m == 0 || random.integer(0, 3) == 0 ? special
                                                               : row[j - 1];
          }
          if (trial % 5 == 0) {  // a masked run, as causal or window limits leave
            const int64_t begin = random.integer(0, block_keys),
                          end = random.integer(begin, block_keys);
            std::fill(row.begin() + begin, row.begin() + end, -kInf);
          }
          std::array<float, kernels::kKeyBlock> want = row, got = row;
          for (int64_t g = 0; g < block_keys; g += m) {
            int kept[8];
            sparse::select_group(row.data() + g, m, n, m, kept);
            for (int t = 0, next = 0; t < m; ++t) {
              if (next < n && kept[next] == t) {
                ++next;
              } else {
                want[g + t] = -kInf;
              }
            }
          }
          k.prune(got.data(), n, m);
          for (int64_t j = 0; j < kernels::kKeyBlock; ++j) {
            ASSERT_EQ(std::bit_cast<uint32_t>(got[j]), std::bit_cast<uint32_t>(want[j]))
                << isa_name(isa) << " " << n << ":" << m << " trial " << trial << " column " << j;
          }
        }
      }
    }
  }
}

TEST(AttentionBackward, RowsThatSeeNothingGiveZeros) {
  const BackwardCase c{2, 2, 1, 40, 10, 32, 32, true, 3, ScoreMask::none, KeyMask::lengths};
  const auto s = make_setup(c, 5, {10, 0});
  for (AttentionImpl impl : {AttentionImpl::reference, AttentionImpl::fused}) {
    AttentionOptions options = s->options;
    options.impl = impl;
    const Gradients g = run_backward(*s, options);
    EXPECT_TRUE(close_to(g.dq, s->dq, 2e-5)) << impl_name(impl);
    EXPECT_TRUE(close_to(g.dk, s->dk, 2e-5)) << impl_name(impl);
    EXPECT_TRUE(close_to(g.dv, s->dv, 2e-5)) << impl_name(impl);
    for (int64_t h = 0; h < c.heads; ++h)
      for (int64_t i = 0; i < c.lq; ++i)
        for (int64_t x = 0; x < c.d; ++x) {
          EXPECT_EQ(g.dq.get(1, h, i, x), 0.0f);  // batch 1 has no valid key
          if (i < 30) {                           // causal: row i sees keys j <= i - 30
            EXPECT_EQ(g.dq.get(0, h, i, x), 0.0f);
          }
        }
    for (int64_t j = 0; j < c.lk; ++j)
      for (int64_t x = 0; x < c.d; ++x) EXPECT_EQ(g.dk.get(1, 0, j, x), 0.0f);
  }
}

// Lq = 0: dk and dv are zeros; Lk = 0: dq is zeros.
TEST(AttentionBackward, EmptySequencesGiveZeros) {
  for (const auto& [lq, lk] : {std::pair<int64_t, int64_t>{0, 5}, {5, 0}}) {
    const auto s = make_setup({1, 2, 1, lq, lk, 8, 8}, 3);
    for (AttentionImpl impl : {AttentionImpl::reference, AttentionImpl::fused}) {
      AttentionOptions options = s->options;
      options.impl = impl;
      const Gradients g = run_backward(*s, options);
      for (const HostTensor* t : {&g.dq, &g.dk, &g.dv})
        for (float x : t->values()) EXPECT_EQ(x, 0.0f) << impl_name(impl);
    }
  }
}

TEST(AttentionBackward, ErrorsNameTheArgument) {
  const auto s = make_setup({1, 2, 1, 4, 6, 8, 8}, 1);
  HostTensor dq(s->q_shape(), DType::f32), dk(s->k_shape(), DType::f32),
      dv(s->v_shape(), DType::f32);
  const auto call = [&](auto&& change) {
    ConstTensorView out = s->out->view(), d_out = s->d_out->view();
    TensorView dqv = dq.mutable_view(), dkv = dk.mutable_view(), dvv = dv.mutable_view();
    const float* lse = s->lse.data();
    change(out, d_out, lse, dqv, dkv, dvv);
    return message_of<InvalidArgument>([&] {
      attention_backward(s->q->view(), s->k->view(), s->v->view(), out, d_out, lse, dqv, dkv, dvv);
    });
  };
  EXPECT_TRUE(starts_with(call([](auto&, auto&, auto& lse, auto&, auto&, auto&) { lse = nullptr; }),
                          "log_sum_exp: expected the forward's [B, Hq, Lq] = [1, 2, 4]"));
  std::vector<uint16_t> bf16(64);
  EXPECT_EQ(call([&](auto&, auto& d_out, auto&, auto&, auto&, auto&) {
              d_out.dtype = DType::bf16;
              d_out.data = bf16.data();
            }),
            "d_out: expected dtype f32 (same as q), got bf16");
  EXPECT_EQ(call([](auto&, auto&, auto&, auto& dq, auto&, auto&) { dq.shape[3] = 7; }),
            "dq: expected shape [1, 2, 4, 8] (shape of q), got [1, 2, 4, 7]");
  EXPECT_EQ(call([](auto& out, auto&, auto&, auto&, auto&, auto&) { out.shape[2] = 3; }),
            "out: expected shape [1, 2, 4, 8] (B, Hq, Lq of q, dv of v), got [1, 2, 3, 8]");
  EXPECT_TRUE(
      starts_with(call([](auto&, auto&, auto&, auto&, auto& dk, auto&) { dk.stride[2] = 0; }),
                  "dk: expected strides giving every element its own memory"));
  EXPECT_TRUE(
      starts_with(call([](auto&, auto&, auto&, auto& dq, auto&, auto& dv) { dv.data = dq.data; }),
                  "dv: expected memory disjoint from dq"));
  EXPECT_TRUE(starts_with(call([&](auto&, auto&, auto&, auto& dq, auto&, auto&) {
                            dq.data = const_cast<void*>(s->q->view().data);
                          }),
                          "dq: expected memory disjoint from q"));
  EXPECT_TRUE(starts_with(call([&](auto&, auto&, auto& lse, auto&, auto& dk, auto&) {
                            lse = static_cast<const float*>(dk.data);
                          }),
                          "dk: expected memory disjoint from log_sum_exp"));
}

}  // namespace
}  // namespace dfss::test
