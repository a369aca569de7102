// The block-sparse linear kernel body, written once on the vector operations of the
// including translation unit (DFSS_KERNEL_NS, its vec_*-inl.h and simd/epilogue-inl.h).
//
// One block shares its kept columns, so each kept activation x[t][c] is broadcast once and
// multiplied into every output row of the block: the inner loop is a dense FMA body
// (tile_rows tokens x block_rows outputs in registers) over the block's kept columns, the
// only sparse step being the column index of the broadcast.

namespace dfss::kernels::DFSS_KERNEL_NS {

// Stores row `acc` ([kRegs] vectors: outputs c0 .. c0 + kRegs * kLanes) of token row y,
// through a buffer where the block's last outputs do not exist.
template <int kRegs>
inline void sparse_gemm_store(const SparseGemmPanel& panel, const Reg* acc, float* y_row, int c0) {
  const int valid = panel.outputs - c0;
  if (valid >= kRegs * kLanes) {
    for (int v = 0; v < kRegs; ++v) {
      float* at = y_row + c0 + v * kLanes;
      const Reg old = panel.epilogue == SparseGemmEpilogue::add_residual ? vload(at) : vzero();
      vstore(at, apply_epilogue(acc[v], old, panel.epilogue));
    }
    return;
  }
  float buffer[kRegs * kLanes] = {};
  for (int i = 0; i < valid; ++i) buffer[i] = y_row[c0 + i];
  for (int v = 0; v < kRegs; ++v) {
    const Reg old = vload(buffer + v * kLanes);
    vstore(buffer + v * kLanes, apply_epilogue(acc[v], old, panel.epilogue));
  }
  for (int i = 0; i < valid; ++i) y_row[c0 + i] = buffer[i];
}

// kRows tokens from t0 x kRegs vectors of outputs from c0.
template <int kRows, int kRegs>
inline void sparse_gemm_tile(const SparseGemmPanel& panel, int64_t t0, int c0) {
  // Locals, not reads through `panel`, and accumulators that never have their address
  // taken inside the loop: otherwise the compiler keeps them in memory across stores.
  const float* x_tile = panel.x + t0 * panel.x_stride;
  const int64_t x_stride = panel.x_stride;
  const int32_t* columns = panel.columns;
  const int64_t kept = panel.kept, stride = panel.block_rows;
  Reg acc[kRows][kRegs];
  for (int v = 0; v < kRegs; ++v) {
    const Reg bias = vload(panel.bias + c0 + v * kLanes);
    for (int r = 0; r < kRows; ++r) acc[r][v] = bias;
  }
  const float* w = panel.values + c0;
#pragma GCC unroll 4
  for (int64_t j = 0; j < kept; ++j, w += stride) {
    // Row r's element is at x_column + r * x_stride: one address per column, the rows
    // reached by the addressing mode.
    const float* x_column = x_tile + columns[j];
    Reg w_regs[kRegs];
    for (int v = 0; v < kRegs; ++v) w_regs[v] = vload(w + v * kLanes);
    for (int r = 0; r < kRows; ++r) {
      const Reg xb = vbroadcast(x_column + r * x_stride);
      for (int v = 0; v < kRegs; ++v) acc[r][v] = vfmadd(xb, w_regs[v], acc[r][v]);
    }
  }
  // Unrolled, so that every acc[r][v] is a fixed register: a loop indexing acc would make
  // the compiler store the accumulators to memory on every step of the loop above.
#pragma GCC unroll 16
  for (int r = 0; r < kRows; ++r) {
    Reg row[kRegs];
    for (int v = 0; v < kRegs; ++v) row[v] = acc[r][v];
    sparse_gemm_store<kRegs>(panel, row, panel.y + (t0 + r) * panel.y_stride, c0);
  }
}

// The last `rows` (< kRows) tokens, by the tile of that many rows.
template <int kRows, int kRegs>
inline void sparse_gemm_tail(const SparseGemmPanel& panel, int64_t t0, int c0, int64_t rows) {
  if constexpr (kRows > 0) {
    if (rows == kRows) return sparse_gemm_tile<kRows, kRegs>(panel, t0, c0);
    sparse_gemm_tail<kRows - 1, kRegs>(panel, t0, c0, rows);
  }
}

// Every token of the panel for outputs c0 .. c0 + kRegs * kLanes.
template <int kRegs>
inline void sparse_gemm_columns(const SparseGemmPanel& panel, int c0) {
  // 12 accumulators (of 16 registers on AVX2) leave room for the weights and a broadcast.
  constexpr int kRows = 12 / kRegs;
  int64_t t0 = 0;
  for (; t0 + kRows <= panel.tokens; t0 += kRows) sparse_gemm_tile<kRows, kRegs>(panel, t0, c0);
  sparse_gemm_tail<kRows - 1, kRegs>(panel, t0, c0, panel.tokens - t0);
}

inline void sparse_gemm_block_panel(const SparseGemmPanel& panel) {
  int c0 = 0;
  for (; c0 + 2 * kLanes <= panel.block_rows; c0 += 2 * kLanes) sparse_gemm_columns<2>(panel, c0);
  if (c0 < panel.block_rows) sparse_gemm_columns<1>(panel, c0);
}

// Output `row` of the block for kVecs * kLanes tokens from t0 (tokens in the lanes): every
// kept column is one broadcast weight times kVecs contiguous vectors of x_packed.
template <int kVecs>
inline void sparse_gemm_row_tile(const SparseGemmPanel& panel, int64_t t0, int row) {
  const int32_t* columns = panel.columns;
  const int64_t kept = panel.kept, stride = panel.block_rows;
  const float* x_tile = panel.x_packed + t0;
  const int64_t x_stride = panel.x_packed_stride;
  Reg acc[kVecs];
  const Reg bias = vset1(panel.bias[row]);
  for (int i = 0; i < kVecs; ++i) acc[i] = bias;
  const float* w = panel.values + row;
  for (int64_t j = 0; j < kept; ++j, w += stride) {
    const float* x_column = x_tile + columns[j] * x_stride;
    const Reg wb = vbroadcast(w);
    for (int i = 0; i < kVecs; ++i) acc[i] = vfmadd(vload(x_column + i * kLanes), wb, acc[i]);
  }
  // Tokens are lanes: y's column `row` is written element by element.
#pragma GCC unroll 16
  for (int i = 0; i < kVecs; ++i) {
    float lanes[kLanes];
    const int64_t first = t0 + i * kLanes;
    const int64_t count = panel.tokens - first < kLanes ? panel.tokens - first : kLanes;
    float* y = panel.y + first * panel.y_stride + row;
    for (int l = 0; l < kLanes; ++l) lanes[l] = l < count ? y[l * panel.y_stride] : 0.0f;
    vstore(lanes, apply_epilogue(acc[i], vload(lanes), panel.epilogue));
    for (int l = 0; l < count; ++l) y[l * panel.y_stride] = lanes[l];
  }
}

template <int kVecs>
inline void sparse_gemm_row_tail(const SparseGemmPanel& panel, int64_t t0, int row, int64_t vecs) {
  if constexpr (kVecs > 0) {
    if (vecs == kVecs) return sparse_gemm_row_tile<kVecs>(panel, t0, row);
    sparse_gemm_row_tail<kVecs - 1>(panel, t0, row, vecs);
  }
}

inline void sparse_gemm_rows_panel(const SparseGemmPanel& panel) {
  // 12 vector accumulators, as in sparse_gemm_columns.
  constexpr int kVecs = 12;
  const int64_t vecs = (panel.tokens + kLanes - 1) / kLanes;
  for (int row = 0; row < panel.outputs; ++row) {
    int64_t v0 = 0;
    for (; v0 + kVecs <= vecs; v0 += kVecs) sparse_gemm_row_tile<kVecs>(panel, v0 * kLanes, row);
    sparse_gemm_row_tail<kVecs - 1>(panel, v0 * kLanes, row, vecs - v0);
  }
}

inline SparseGemmKernels make_sparse_gemm_kernels(const char* name) {
  return {name, kLanes, sparse_gemm_block_panel, sparse_gemm_rows_panel};
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
