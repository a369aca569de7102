// Scaled dot-product attention: out = softmax(scale * Q Kᵀ + mask) V.
//
// Layout: Q [B, Hq, Lq, d], K [B, Hkv, Lk, d], V [B, Hkv, Lk, dv], out [B, Hq, Lq, dv], any
// non-negative strides (in elements). 1 <= d, dv <= 256; B, Hq, Lq, Lk >= 0.
// Grouped-query attention: Hkv divides Hq (Hkv = Hq: multi-head; Hkv = 1: multi-query) and
// query head h reads key/value head h / (Hq / Hkv); K and V are never copied per head.
// Q, K and V share one dtype (f32, or bf16 held as uint16_t); accumulation is always
// fp32 (double in the reference); out is f32 or bf16.
//
// Edge cases, defined:
// - Masked scores are -inf. A query row whose scores are all -inf (every key padded or
//   causally hidden, Lk = 0, or scores that are -inf themselves) produces zeros.
// - Lq = 0, Lk = 0, B = 0 or H = 0 are valid; nothing is read that does not exist.
// - NaN and Inf in q, k and v flow through IEEE arithmetic: a NaN score makes its row
//   NaN, a +inf score gives NaN (inf - inf in the softmax), as a naive softmax would. No
//   crash, no hang, no out-of-bounds access. Masks are checked instead: a NaN or +inf in
//   options.mask.additive or options.score_mask is refused (InvalidArgument naming the
//   mask and the index of the first bad value); -inf masks a score.
// - Sizes: every shape and stride product is checked (no signed overflow); a shape whose
//   element count or row-major strides do not fit in int64 is refused as too large.
//   impl = unfused materializes one head's Lq x Lk scores and refuses problems where that
//   exceeds kMaxUnfusedScoreBytes (the fused implementation has no such limit).
// - Threads: options.threads is at most kMaxThreads. Before the first parallel region the
//   threads it needs are started once (and kept no longer) to check they can be: libgomp
//   would otherwise end the process when the thread or address-space limits forbid them;
//   such a failure throws dfss::Unsupported instead.
// - Results are bit-identical for any thread count. Different implementations and ISAs
//   agree to rounding (fp32: <= 1e-5 relative to the output's scale).
//
// Errors: a wrong rank, shape, stride, dtype or option throws dfss::InvalidArgument (or
// dfss::Unsupported for an ISA the CPU lacks) naming the argument and the expected vs
// actual value. Validation happens before anything is written to `out`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "dfss/cpu.h"
#include "dfss/tensor.h"

namespace dfss {

// Upper bound of AttentionOptions::threads: far above real machines, far below what
// exhausts the process.
inline constexpr int kMaxThreads = 1024;

// impl = unfused refuses a problem whose per-head score buffers (Lq x Lk fp32 scores, plus
// a materialized score mask; under N:M the kept values and columns; rows and keys padded to
// the kernels' tiles) exceed this many bytes: 4 GiB, so dense Lq = Lk = 32000 runs and 65536
// is refused. The fused implementation needs O(tile) scratch only.
inline constexpr int64_t kMaxUnfusedScoreBytes = int64_t{1} << 32;

enum class AttentionImpl {
  reference,  // plain loops, double accumulation: the oracle
  unfused,    // materializes the Lq x Lk score matrix per (batch, head): GEMM, softmax, GEMM
  fused,      // flash-style tiles with an online softmax; O(tile) scratch per thread
};

const char* impl_name(AttentionImpl impl);

// Sparsity of the attention scores, one of:
// - dense (the default): every visible key.
// - N:M, dynamic fine-grained structured sparsity (DFSS). Along the key axis, aligned
//   groups of M consecutive columns start at column 0; in each group only the N largest
//   scores s = scale*q·k + mask survive (signed value; ties go to the lower column; NaN
//   ranks above everything, so it is kept and makes its row NaN). A partial last group
//   behaves as if padded with -inf columns. Masked scores are -inf before selection, so a
//   masked score is kept only where its group has fewer than N unmasked ones, and then
//   carries no weight. Softmax and the value product run over the kept entries only.
// - topk:K, exact top-k attention: each query row keeps the K highest-ranked of its scores
//   (the rank order of dfss/topk.h: larger first, ties to the lower key, NaN as +inf) among
//   the keys the causal rule, the sliding window and the key-padding length let it see
//   (all of them when it sees K or fewer: then it equals dense). Additive masks are part
//   of the scores, so a -inf-masked key is kept only when fewer than K others remain, and
//   then carries no weight.
// - dsa:K[:block=B], predicted sparse attention (DSA): a cheap predictor chooses the keys,
//   the attention over them is exact. Keys are pooled in aligned blocks of B (a power of
//   two, 1 to 128, dividing K; default 16, or the largest power of two dividing K when
//   that is smaller): a block's predictor key is the fp32 mean of its
//   present keys (summed in key order), its predicted score fma(q·k̄, scale, bias) with the
//   largest additive mask of its keys as bias. Each row keeps the K/B highest-ranked blocks
//   (same rank order) among those holding a key it sees, then runs exact fp32 scores,
//   softmax and P·V on their keys (hidden ones weigh nothing). With B = 1 the predictor is
//   exact and dsa:K equals topk:K.
// Selection compares fp32 scores: the dot product accumulated in key-dimension order with
// fused multiply-adds, then fma(dot, scale, mask), in every implementation and ISA, so the
// kept set does not depend on them (bf16 inputs: N:M per kernel, within rounding).
inline constexpr int64_t kDsaDefaultBlock = 16;
inline constexpr int64_t kDsaMaxBlock = 128;

struct SparsityPattern {
  int n = 0;  // N:M; n = m = 0 otherwise
  int m = 0;
  int64_t keep = 0;        // topk:K and dsa:K: K >= 1 keys kept per query row; 0 otherwise
  bool predicted = false;  // dsa:K (keep > 0): chosen by the block predictor
  int64_t block = 1;       // dsa:K: keys per predictor block

  bool dense() const { return m == 0 && keep == 0; }
  bool nm() const { return m != 0; }
  bool selects_keys() const { return keep != 0; }  // topk:K or dsa:K
  std::string to_string() const;                   // "dense", "N:M", "topk:K" or "dsa:K:block=B"
};

// Parses "dense", "N:M" with 1 <= N < M <= 8, "topk:K" or "dsa:K[:block=B]" (K >= 1; B a
// power of two <= 128 dividing K, default min(16, largest power of two dividing K)); throws
// InvalidArgument naming `argument_name` and the accepted forms otherwise.
SparsityPattern parse_pattern(const std::string& text, const std::string& argument_name);
// Parses "reference", "unfused", "fused"; throws InvalidArgument naming `argument_name`.
AttentionImpl parse_impl(const std::string& text, const std::string& argument_name);

// Key-padding mask, broadcast over heads and query rows. Both parts are optional and
// combine: a key is masked if valid_lengths says so, and `additive` is added to the scaled
// score (0 keeps it, -inf masks it, other values bias it).
struct KeyPaddingMask {
  const float* additive = nullptr;  // [B, Lk] fp32, row b at additive + b * additive_batch_stride
  int64_t additive_batch_stride = -1;      // elements; -1 means Lk (contiguous)
  const int64_t* valid_lengths = nullptr;  // [B]; keys j >= valid_lengths[b] are masked
};

struct AttentionOptions {
  std::optional<float> scale;  // default 1/sqrt(d)
  KeyPaddingMask mask;
  // General additive mask: an f32 view of shape [B, Hq, Lq, Lk] whose strides may be 0 to
  // broadcast (as torch.expand makes them); added to the scaled score like `mask`, and
  // combined with it: the bias is score_mask + mask.additive summed in fp32 in that order,
  // then s = fma(q·k, scale, bias) (N:M selects on exactly these values in every
  // implementation). -inf masks a score. data == nullptr: none.
  ConstTensorView score_mask{};
  bool causal = false;  // query i sees keys j <= i + Lk - Lq
  // Sliding window: when > 0, query i sees only keys j > i + Lk - Lq - window. With causal
  // this is the local attention of Mistral and Gemma (the last `window` keys up to and
  // including the diagonal). Key blocks wholly outside the window are skipped, not masked.
  int64_t window = 0;
  // Optional output: the natural log of each query row's softmax denominator,
  // log Σ_j exp(s_ij) over the keys the row attends to (the kept ones under N:M), as
  // [B, Hq, Lq] contiguous fp32; -inf for a row that sees no key. attention_backward needs it.
  // Requesting it with bf16 inputs and an N:M pattern runs the fp32-widened N:M kernels
  // rather than the AVX512-BF16 pair-combo ones (whose vdpbf16ps dot products are summed in
  // another order): the backward recomputes the scores with the fp32 fma chain, and its kept
  // set must be bit-identical to the forward's. Slower, same semantics.
  float* log_sum_exp = nullptr;
  int threads = 0;  // 0: OpenMP's default; otherwise exactly this many (<= kMaxThreads)
  AttentionImpl impl = AttentionImpl::fused;
  Isa isa = Isa::automatic;  // kernels to use for unfused and fused
  SparsityPattern pattern;   // dense by default
};

void attention(const ConstTensorView& q, const ConstTensorView& k, const ConstTensorView& v,
               const TensorView& out, const AttentionOptions& options = {});

// Gradients of `attention` for d_out = ∂L/∂out: dq [B, Hq, Lq, d], dk [B, Hkv, Lk, d],
// dv [B, Hkv, Lk, dv] (f32 or bf16, any strides; grouped query heads are summed into
// their key/value head). `out` and `log_sum_exp` ([B, Hq, Lq] contiguous) are those of the
// forward call with the same q, k, v and options. Under N:M, topk:K and dsa:K the kept set is
// the forward's (recomputed bit-identically from the same fp32 scores) and is treated as constant:
// gradients flow through the kept entries only. Masks receive no gradient. Rows that see
// no key contribute nothing. options.impl: reference (double, recomputes everything from
// q, k, v) or fused (tiles recomputed from log_sum_exp; no Lq x Lk buffer; unfused runs
// the fused kernels). Results are bit-identical for any thread count.
void attention_backward(const ConstTensorView& q, const ConstTensorView& k,
                        const ConstTensorView& v, const ConstTensorView& out,
                        const ConstTensorView& d_out, const float* log_sum_exp,
                        const TensorView& dq, const TensorView& dk, const TensorView& dv,
                        const AttentionOptions& options = {});

// Name of the kernel `attention` would run for these settings, e.g.
// "f32_attn_fused_r6k128__avx512" (for `dfss info` and benchmarks).
std::string attention_kernel_name(AttentionImpl impl, DType dtype, Isa isa = Isa::automatic,
                                  SparsityPattern pattern = {});

}  // namespace dfss
