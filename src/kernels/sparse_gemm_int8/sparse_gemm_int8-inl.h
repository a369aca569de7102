// The int8 block-sparse linear kernel body, written once on the integer vector operations of
// the including translation unit (DFSS_KERNEL_NS and its ivec_u8s8_*-inl.h).
//
// Per block: the kept columns' activations are gathered once, quad by quad, into
// [quad][token][4] bytes; then every tile of kTileRows outputs x 2 vectors of tokens runs a
// dense multiply-add body over the quads, one broadcast weight word per output row.

namespace dfss::kernels::DFSS_KERNEL_NS {

inline constexpr int kTileRows = 4;  // 8 accumulators of 16 AVX2 registers
inline constexpr int64_t kTileTokens = 2 * kTokenLanes;
static_assert(kInt8SparseTokenTile % kTileTokens == 0);

inline void sparse_gemm_int8_gather(const SparseGemmInt8Panel& p, int64_t padded_tokens) {
  const int64_t stride = p.x_t_stride;
  for (int64_t q = 0; q < p.quads; ++q) {
    const int32_t* c = p.columns + 4 * q;
    const uint8_t *c0 = p.x_t + c[0] * stride, *c1 = p.x_t + c[1] * stride,
                  *c2 = p.x_t + c[2] * stride, *c3 = p.x_t + c[3] * stride;
    uint8_t* out = p.gathered + 4 * q * stride;
    for (int64_t t = 0; t < padded_tokens; t += 16)
      interleave_quad16(c0 + t, c1 + t, c2 + t, c3 + t, out + 4 * t);
  }
}

// Outputs r0 .. r0 + kRows of tokens t0 .. t0 + kTileTokens.
template <int kRows>
inline void sparse_gemm_int8_tile(const SparseGemmInt8Panel& p, int64_t t0, int r0) {
  const uint8_t* g = p.gathered + 4 * t0;
  const int64_t g_step = 4 * p.x_t_stride;
  const int8_t* w = p.values + 4 * r0;
  const int64_t w_step = 4 * int64_t{p.block_rows};
  const int64_t quads = p.quads;
  IReg acc[kRows][2];
  for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = izero();
  for (int64_t q = 0; q < quads; ++q, g += g_step, w += w_step) {
    const IReg x0 = iload_u8x4(g), x1 = iload_u8x4(g + 4 * kTokenLanes);
    for (int r = 0; r < kRows; ++r) {
      const IReg weights = ibroadcast_s8x4(w + 4 * r);
      acc[r][0] = idot_u8s8(acc[r][0], x0, weights);
      acc[r][1] = idot_u8s8(acc[r][1], x1, weights);
    }
  }
  // Tokens are lanes: each output row's results go to a column of acc. Whole tiles of 4
  // rows are transposed in registers.
  const int64_t count = p.tokens - t0 < kTileTokens ? p.tokens - t0 : kTileTokens;
  int32_t* out = p.acc + t0 * p.acc_stride + r0;
  if constexpr (kRows == 4) {
    if (count == kTileTokens) {
      for (int v = 0; v < 2; ++v) {
        const IReg rows[4] = {acc[0][v], acc[1][v], acc[2][v], acc[3][v]};
        istore_transposed4(out + v * kTokenLanes * p.acc_stride, p.acc_stride, rows);
      }
      return;
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
    int32_t lanes[kTileTokens];
    istore(lanes, acc[r][0]);
    istore(lanes + kTokenLanes, acc[r][1]);
    for (int64_t t = 0; t < count; ++t) out[t * p.acc_stride + r] = lanes[t];
  }
}

template <int kRows>
inline void sparse_gemm_int8_row_tail(const SparseGemmInt8Panel& p, int64_t t0, int r0, int rows) {
  if constexpr (kRows > 0) {
    if (rows == kRows) return sparse_gemm_int8_tile<kRows>(p, t0, r0);
    sparse_gemm_int8_row_tail<kRows - 1>(p, t0, r0, rows);
  }
}

inline void sparse_gemm_int8_block_panel(const SparseGemmInt8Panel& p) {
  const int64_t padded = (p.tokens + kTileTokens - 1) / kTileTokens * kTileTokens;
  sparse_gemm_int8_gather(p, padded);
  // Tokens outer: a tile's gathered activations stay in L1 while every row of the block uses
  // them.
  for (int64_t t0 = 0; t0 < p.tokens; t0 += kTileTokens) {
    int r0 = 0;
    for (; r0 + kTileRows <= p.outputs; r0 += kTileRows)
      sparse_gemm_int8_tile<kTileRows>(p, t0, r0);
    sparse_gemm_int8_row_tail<kTileRows - 1>(p, t0, r0, p.outputs - r0);
  }
}

inline void sparse_gemm_int8_transpose(const TransposeU8& job) {
  const int64_t padded = (job.rows + 15) / 16 * 16;
  for (int64_t r0 = 0; r0 < padded; r0 += 16) {
    for (int64_t c0 = 0; c0 < job.cols; c0 += 16) {
      const int64_t rows = job.rows - r0 < 16 ? job.rows - r0 : 16;
      const int64_t cols = job.cols - c0 < 16 ? job.cols - c0 : 16;
      uint8_t* dst = job.x_t + c0 * job.x_t_stride + r0;
      if (rows == 16 && cols == 16) {
        transpose16x16_u8(job.x + r0 * job.x_stride + c0, job.x_stride, dst, job.x_t_stride);
        continue;
      }
      // A partial tile through zero-padded buffers: padding rows become zero columns.
      uint8_t tile[16 * 16] = {}, turned[16 * 16];
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          tile[r * 16 + c] = job.x[(r0 + r) * job.x_stride + c0 + c];
      transpose16x16_u8(tile, 16, turned, 16);
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t r = 0; r < 16; ++r) dst[c * job.x_t_stride + r] = turned[c * 16 + r];
    }
  }
}

inline SparseGemmInt8Kernels make_sparse_gemm_int8_kernels(const char* name) {
  return {name, sparse_gemm_int8_block_panel, sparse_gemm_int8_transpose};
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
