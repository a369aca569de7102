// The direct decode kernel, written once and compiled per ISA like attention-inl.h (same
// DFSS_KERNEL_NS and vec_<isa>-inl.h). For a few query rows against a long K/V cache,
// packing K and V costs as much as the attention itself, so this reads the rows of K and V
// in place (fp32 directly, bf16 widened a chunk at a time) and runs an online softmax over
// one segment of keys. The dot products run along d, so results differ from the packed
// kernels by rounding only.

namespace dfss::kernels::DFSS_KERNEL_NS {

inline constexpr int64_t kDecodeChunk = kDecodeChunkKeys;

inline float decode_bf16_to_f32(uint16_t x) {
  return std::bit_cast<float>(uint32_t{x} << 16);
}

// q · k over d: two vector accumulators (their sum reduced once), then the scalar tail.
inline float decode_dot(const float* q, const float* k, int64_t d) {
  Reg acc0 = vzero(), acc1 = vzero();
  int64_t x = 0;
  for (; x + 2 * kLanes <= d; x += 2 * kLanes) {
    acc0 = vfmadd(vload(q + x), vload(k + x), acc0);
    acc1 = vfmadd(vload(q + x + kLanes), vload(k + x + kLanes), acc1);
  }
  if (x + kLanes <= d) {
    acc0 = vfmadd(vload(q + x), vload(k + x), acc0);
    x += kLanes;
  }
  float s = vreduce_add(vadd(acc0, acc1));
  for (; x < d; ++x) s = std::fma(q[x], k[x], s);
  return s;
}

// Rows whose cache lines decode_dots requests ahead of their use: the keys of the next
// chunk and the values of this one. A cache too large for L3 is read at memory speed only
// when the reads are in flight while the arithmetic runs (measured on Zen 3: the hardware
// prefetcher alone left one thread at about 9 GB/s).
struct DecodePrefetch {
  const float* next_k = nullptr;
  int64_t next_keys = 0;     // rows of next_k that exist
  const float* v = nullptr;  // null: nothing to prefetch
  int64_t k_stride = 0, k_bytes = 0;
  int64_t v_stride = 0, v_bytes = 0;
};

inline void prefetch_row(const float* row, int64_t bytes) {
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t at = 0; at < bytes; at += 64) __builtin_prefetch(p + at);
}

// s[j] = q · k_j over d for keys [lo, hi), each as decode_dot computes it (two vector
// accumulators, their sum reduced once, then the scalar tail: the same bits), four keys at
// a time so that their fma chains and reductions overlap instead of waiting on each other.
inline void decode_dots(const float* q, const float* k, int64_t k_stride, int64_t d, int64_t lo,
                        int64_t hi, float* s, const DecodePrefetch& ahead) {
  constexpr int kKeys = 4;
  int64_t j = lo;
  for (; j + kKeys <= hi; j += kKeys) {
    if (ahead.v) {
      for (int u = 0; u < kKeys; ++u) {
        if (j + u < ahead.next_keys)
          prefetch_row(ahead.next_k + (j + u) * ahead.k_stride, ahead.k_bytes);
        prefetch_row(ahead.v + (j + u) * ahead.v_stride, ahead.v_bytes);
      }
    }
    const float* key[kKeys];
    Reg acc0[kKeys], acc1[kKeys];
    for (int u = 0; u < kKeys; ++u) {
      key[u] = k + (j + u) * k_stride;
      acc0[u] = acc1[u] = vzero();
    }
    int64_t x = 0;
    for (; x + 2 * kLanes <= d; x += 2 * kLanes) {
      const Reg q0 = vload(q + x), q1 = vload(q + x + kLanes);
      for (int u = 0; u < kKeys; ++u) {
        acc0[u] = vfmadd(q0, vload(key[u] + x), acc0[u]);
        acc1[u] = vfmadd(q1, vload(key[u] + x + kLanes), acc1[u]);
      }
    }
    if (x + kLanes <= d) {
      const Reg q0 = vload(q + x);
      for (int u = 0; u < kKeys; ++u) acc0[u] = vfmadd(q0, vload(key[u] + x), acc0[u]);
      x += kLanes;
    }
    for (int u = 0; u < kKeys; ++u) {
      float sum = vreduce_add(vadd(acc0[u], acc1[u]));
      for (int64_t t = x; t < d; ++t) sum = std::fma(q[t], key[u][t], sum);
      s[j + u] = sum;
    }
  }
  for (; j < hi; ++j) s[j] = decode_dot(q, k + j * k_stride, d);
}

// o[C vectors] = o * alpha + Σ_{j in [lo, hi)} p[j] v_j, in registers.
template <int C>
inline void decode_pv(const float* p, int64_t lo, int64_t hi, const float* v, int64_t v_stride,
                      float* o, float alpha) {
  Reg acc[C];
  const Reg scale = vset1(alpha);
  for (int c = 0; c < C; ++c) acc[c] = vmul(vload(o + c * kLanes), scale);
  for (int64_t j = lo; j < hi; ++j) {
    const Reg weight = vbroadcast(p + j);
    for (int c = 0; c < C; ++c)
      acc[c] = vfmadd(weight, vload(v + j * v_stride + c * kLanes), acc[c]);
  }
  for (int c = 0; c < C; ++c) vstore(o + c * kLanes, acc[c]);
}

inline void decode_pv_all(const float* p, int64_t lo, int64_t hi, const float* v, int64_t v_stride,
                          int64_t dv, float* o, float alpha) {
  int64_t col = 0;
  // Up to 8 vectors per pass: each accumulator is one fma chain, and 4 chains left the
  // fma units waiting on their latency (AVX2, dv = 64: two passes of 4 took twice as long).
  for (; col + 8 * kLanes <= dv; col += 8 * kLanes)
    decode_pv<8>(p, lo, hi, v + col, v_stride, o + col, alpha);
  switch ((dv - col) / kLanes) {
    case 7: decode_pv<7>(p, lo, hi, v + col, v_stride, o + col, alpha); break;
    case 6: decode_pv<6>(p, lo, hi, v + col, v_stride, o + col, alpha); break;
    case 5: decode_pv<5>(p, lo, hi, v + col, v_stride, o + col, alpha); break;
    case 4: decode_pv<4>(p, lo, hi, v + col, v_stride, o + col, alpha); break;
    case 3: decode_pv<3>(p, lo, hi, v + col, v_stride, o + col, alpha); break;
    case 2: decode_pv<2>(p, lo, hi, v + col, v_stride, o + col, alpha); break;
    case 1: decode_pv<1>(p, lo, hi, v + col, v_stride, o + col, alpha); break;
    default: break;
  }
  col += (dv - col) / kLanes * kLanes;
  // Columns past the last whole vector: scalar, since the rows of V are not padded.
  for (; col < dv; ++col) {
    float acc = o[col] * alpha;
    for (int64_t j = lo; j < hi; ++j) acc = std::fma(p[j], v[j * v_stride + col], acc);
    o[col] = acc;
  }
}

inline void decode_segment(const DecodeArgs& a) {
  std::fill(a.o, a.o + a.rows * a.dv, 0.0f);
  std::fill(a.row_max, a.row_max + a.rows, kNegInf);
  std::fill(a.row_sum, a.row_sum + a.rows, 0.0f);
  float* s = a.scratch;                       // [kDecodeChunk] scores, then probabilities
  float* k_f32 = s + kDecodeChunk;            // bf16: [kDecodeChunk][d] widened keys
  float* v_f32 = k_f32 + kDecodeChunk * a.d;  // bf16: [kDecodeChunk][dv] widened values
  for (int64_t key0 = a.key_begin; key0 < a.key_end; key0 += kDecodeChunk) {
    const int64_t n = std::min(kDecodeChunk, a.key_end - key0);
    // The visible keys of the chunk over all rows: only these are read.
    int64_t lo_all = n, hi_all = 0, first_row = -1;
    for (int64_t r = 0; r < a.rows; ++r) {
      const int64_t lo = std::clamp<int64_t>(a.row_begin[r] - key0, 0, n);
      const int64_t hi = std::clamp<int64_t>(a.row_end[r] - key0, 0, n);
      if (lo < hi) lo_all = std::min(lo_all, lo), hi_all = std::max(hi_all, hi);
      if (lo < hi && first_row < 0) first_row = r;
    }
    if (lo_all >= hi_all) continue;
    const float *k, *v;
    int64_t k_stride, v_stride;
    if (a.bf16) {
      const auto* k16 = static_cast<const uint16_t*>(a.k) + key0 * a.k_stride;
      const auto* v16 = static_cast<const uint16_t*>(a.v) + key0 * a.v_stride;
      for (int64_t j = lo_all; j < hi_all; ++j) {
        for (int64_t x = 0; x < a.d; ++x)
          k_f32[j * a.d + x] = decode_bf16_to_f32(k16[j * a.k_stride + x]);
        for (int64_t x = 0; x < a.dv; ++x)
          v_f32[j * a.dv + x] = decode_bf16_to_f32(v16[j * a.v_stride + x]);
      }
      k = k_f32, v = v_f32, k_stride = a.d, v_stride = a.dv;
    } else {
      k = static_cast<const float*>(a.k) + key0 * a.k_stride;
      v = static_cast<const float*>(a.v) + key0 * a.v_stride;
      k_stride = a.k_stride, v_stride = a.v_stride;
    }
    for (int64_t r = 0; r < a.rows; ++r) {
      const int64_t lo = std::clamp<int64_t>(a.row_begin[r] - key0, 0, n);
      const int64_t hi = std::clamp<int64_t>(a.row_end[r] - key0, 0, n);
      if (lo >= hi) continue;
      const float* q = a.q + r * a.d;
      const float* bias = a.bias ? a.bias + r * a.bias_row_stride + (key0 - a.key_begin) : nullptr;
      // Hidden keys are -inf rather than biased: their q·k is never computed (nor read).
      std::fill(s, s + lo, kNegInf);
      DecodePrefetch ahead;
      if (!a.bf16 && r == first_row) {
        ahead.next_keys = std::clamp<int64_t>(a.key_end - key0 - kDecodeChunk, 0, kDecodeChunk);
        if (ahead.next_keys > 0) ahead.next_k = k + kDecodeChunk * k_stride;
        ahead.k_stride = k_stride;
        ahead.k_bytes = a.d * 4;
        ahead.v = v;
        ahead.v_stride = v_stride;
        ahead.v_bytes = a.dv * 4;
      }
      decode_dots(q, k, k_stride, a.d, lo, hi, s, ahead);
      for (int64_t j = lo; j < hi; ++j) s[j] = std::fma(s[j], a.scale, bias ? bias[j] : 0.0f);
      std::fill(s + hi, s + kDecodeChunk, kNegInf);
      constexpr int kVecs = kDecodeChunk / kLanes;
      Reg row_max = vset1(kNegInf);
      for (int c = 0; c < kVecs; ++c) row_max = vmax(row_max, vload(s + c * kLanes));
      float alpha;
      const Reg shift = update_running_max(row_max, a.row_max[r], alpha);
      Reg sum = vzero();
      for (int c = 0; c < kVecs; ++c) {
        const Reg p = exp_shifted(vload(s + c * kLanes), shift);
        vstore(s + c * kLanes, p);
        sum = vadd(sum, p);
      }
      a.row_sum[r] = std::fma(a.row_sum[r], alpha, vreduce_add(sum));
      decode_pv_all(s, lo, hi, v, v_stride, a.dv, a.o + r * a.dv, alpha);
    }
  }
}

// The table with the decode kernel added.
inline AttentionKernels with_decode(AttentionKernels table) {
  table.decode_segment = &decode_segment;
  return table;
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
