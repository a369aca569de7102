// The int8 linear layers' quantize and dequantize kernels and the bf16 layers' rounding, written
// once on the vector operations of the including translation unit (DFSS_KERNEL_NS, its vec_*-inl.h
// and simd/epilogue-inl.h). Every lane does the same IEEE operations in the same order on every ISA
// (no FMA contraction: the build is ISO C++), so the results are the same bits.

namespace dfss::kernels::DFSS_KERNEL_NS {

// Rounds whole-number-or-not v in [0, 2^22) to the nearest integer, ties to even: adding
// 1.5 · 2^23 leaves no fraction bits, subtracting it back is exact.
inline Reg round_small(Reg v) {
  const Reg magic = vset1(12582912.0f);
  return vsub(vadd(v, magic), magic);
}

// q[c] = round(clamp(x[c] · inverse + zero_point, 0, 255)) for c < cols.
inline void quantize_values(const float* x, int64_t cols, float inverse, float zero_point,
                            uint8_t* q) {
  const int64_t whole = cols - cols % kLanes;
  const Reg inverse_v = vset1(inverse), zero_point_v = vset1(zero_point);
  const Reg floor_v = vzero(), ceiling_v = vset1(255.0f);
  const auto quantize = [&](Reg v) {
    const Reg shifted = vadd(vmul(v, inverse_v), zero_point_v);
    return round_small(vmin(vmax(shifted, floor_v), ceiling_v));
  };
  for (int64_t c = 0; c < whole; c += kLanes) vstore_u8(q + c, quantize(vload(x + c)));
  if (whole < cols) {
    float tail[kLanes] = {};
    for (int64_t c = whole; c < cols; ++c) tail[c - whole] = x[c];
    uint8_t bytes[kLanes];
    vstore_u8(bytes, quantize(vload(tail)));
    for (int64_t c = whole; c < cols; ++c) q[c] = bytes[c - whole];
  }
}

inline void quantize_row(const QuantizeRow& row) {
  const float* x = row.x;
  const int64_t cols = row.cols;
  const int64_t whole = cols - cols % kLanes;
  // Padding lanes hold 0, which the range includes anyway.
  float tail[kLanes] = {};
  for (int64_t c = whole; c < cols; ++c) tail[c - whole] = x[c];

  Reg lo = vzero(), hi = vzero(), not_finite = vzero();  // x − x: NaN for NaN and ±inf
  const auto scan = [&](Reg v) {
    lo = vmin(lo, v);
    hi = vmax(hi, v);
    not_finite = vadd(not_finite, vsub(v, v));
  };
  for (int64_t c = 0; c < whole; c += kLanes) scan(vload(x + c));
  if (whole < cols) scan(vload(tail));

  float lanes[kLanes];
  vstore(lanes, not_finite);
  bool finite = true;
  for (float v : lanes) finite = finite && v == 0.0f;
  vstore(lanes, lo);
  float low = 0.0f;
  for (float v : lanes) low = v < low ? v : low;
  vstore(lanes, hi);
  float high = 0.0f;
  for (float v : lanes) high = v > high ? v : high;
  if (!finite) {
    *row.scale = std::numeric_limits<float>::quiet_NaN();
    *row.zero_point = 0;
    for (int64_t c = 0; c < cols; ++c) row.q[c] = 0;
    return;
  }
  // Each bound divided first: high − low may overflow.
  float scale = high / 255.0f - low / 255.0f;
  // A row of zeros, or one so small that 1 / scale would overflow: all its q are zero_point.
  if (!(scale >= std::numeric_limits<float>::min())) scale = 1.0f;
  const float inverse = 1.0f / scale;
  float zero_point = std::nearbyint(-low * inverse);
  zero_point = zero_point < 0.0f ? 0.0f : zero_point > 255.0f ? 255.0f : zero_point;
  *row.scale = scale;
  *row.zero_point = static_cast<int32_t>(zero_point);

  quantize_values(x, cols, inverse, zero_point, row.q);
}

inline void quantize_row_static(const QuantizeRowStatic& row) {
  const int64_t whole = row.cols - row.cols % kLanes;
  float tail[kLanes] = {};
  for (int64_t c = whole; c < row.cols; ++c) tail[c - whole] = row.x[c];
  Reg not_finite = vzero();
  for (int64_t c = 0; c < whole; c += kLanes) {
    const Reg v = vload(row.x + c);
    not_finite = vadd(not_finite, vsub(v, v));
  }
  const Reg last = vload(tail);
  not_finite = vadd(not_finite, vsub(last, last));
  float lanes[kLanes];
  vstore(lanes, not_finite);
  bool finite = true;
  for (float v : lanes) finite = finite && v == 0.0f;
  if (!finite) {
    *row.row_scale = std::numeric_limits<float>::quiet_NaN();
    for (int64_t c = 0; c < row.cols; ++c) row.q[c] = 0;
    return;
  }
  *row.row_scale = row.scale;
  quantize_values(row.x, row.cols, 1.0f / row.scale, static_cast<float>(row.zero_point), row.q);
}

inline void dequantize_row(const DequantizeRow& row) {
  const Reg row_scale = vset1(row.row_scale);
  const Reg zero_point = vset1(static_cast<float>(row.zero_point));
  const auto finish = [&](const int32_t* acc, const float* col_scale, const float* col_sum,
                          const float* bias, float* y) {
    const Reg centered = vsub(vload_int32(acc), vmul(zero_point, vload(col_sum)));
    const Reg result = vfmadd(centered, vmul(row_scale, vload(col_scale)), vload(bias));
    const Reg old = row.epilogue == FusedEpilogue::add_residual ? vload(y) : vzero();
    vstore(y, apply_epilogue(result, old, row.epilogue));
  };
  const int64_t cols = row.cols;
  const int64_t whole = cols - cols % kLanes;
  for (int64_t c = 0; c < whole; c += kLanes) {
    finish(row.acc + c, row.col_scale + c, row.col_sum + c, row.bias + c, row.y + c);
  }
  if (whole == cols) return;
  // The last columns through buffers, padded with zeros.
  int32_t acc[kLanes] = {};
  float col_scale[kLanes] = {}, col_sum[kLanes] = {}, bias[kLanes] = {}, y[kLanes] = {};
  for (int64_t c = whole; c < cols; ++c) {
    acc[c - whole] = row.acc[c];
    col_scale[c - whole] = row.col_scale[c];
    col_sum[c - whole] = row.col_sum[c];
    bias[c - whole] = row.bias[c];
    y[c - whole] = row.y[c];
  }
  finish(acc, col_scale, col_sum, bias, y);
  for (int64_t c = whole; c < cols; ++c) row.y[c] = y[c - whole];
}

inline void round_row_to_bf16(const Bf16Row& row) {
  const int64_t whole = row.cols - row.cols % kLanes;
  for (int64_t c = 0; c < whole; c += kLanes) vstore_bf16(row.y + c, vload(row.x + c));
  if (whole == row.cols) return;
  float tail[kLanes] = {};
  uint16_t rounded[kLanes];
  for (int64_t c = whole; c < row.cols; ++c) tail[c - whole] = row.x[c];
  vstore_bf16(rounded, vload(tail));
  for (int64_t c = whole; c < row.cols; ++c) row.y[c] = rounded[c - whole];
}

inline QuantizeKernels make_quantize_kernels(const char* name) {
  return QuantizeKernels{name, &quantize_row, &quantize_row_static, &dequantize_row,
                         &round_row_to_bf16};
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
