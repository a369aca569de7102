// Interface between the reduced-precision linear layers (src/model/quantized_linear.*,
// src/model/bf16_linear.*) and their per-ISA kernels: quantizing one row of activations to
// u8, turning one row of int32 GEMM results back into fp32 with the layer's bias and fused
// epilogue, and rounding one row of activations to bf16.
#pragma once

#include <cstdint>

#include "dfss/cpu.h"
#include "kernels/fused_epilogue.h"

namespace dfss::kernels {

// Asymmetric u8 quantization of one row x[0 .. cols), so that x ≈ scale · (q − zero_point):
//   lo = min(0, min x), hi = max(0, max x), scale = hi / 255 − lo / 255 (1 when that is
//   below FLT_MIN: such a row quantizes to zero_point, i.e. to 0),
//   zero_point = round(−lo / scale), q = round(clamp(x / scale + zero_point, 0, 255))
// with x / scale computed as x · (1 / scale) and rounding half to even. 0 is exact. A row
// with a NaN or an infinity gets scale NaN and q = 0, so that its results are NaN.
struct QuantizeRow {
  const float* x;
  int64_t cols;
  uint8_t* q;
  float* scale;
  int32_t* zero_point;
};

// The same with a fixed (calibrated) scale and zero point: q = round(clamp(x · (1 / scale) +
// zero_point, 0, 255)), values outside the calibrated range clamped. *row_scale = scale, or
// NaN (and q = 0) for a row with a NaN or an infinity, so that its results are NaN.
struct QuantizeRowStatic {
  const float* x;
  int64_t cols;
  uint8_t* q;
  float scale;
  int32_t zero_point;
  float* row_scale;
};

// y[c] = epilogue(row_scale · col_scale[c] · (acc[c] − zero_point · col_sum[c]) + bias[c]),
// computed as fma(float(acc[c]) − float(zero_point) · col_sum[c], row_scale · col_scale[c],
// bias[c]) for c < cols: the result of x · Wᵀ + b for a row quantized as above and weights
// W[c] ≈ col_scale[c] · Wq[c] with col_sum[c] = Σ Wq[c].
struct DequantizeRow {
  const int32_t* acc;
  int64_t cols;
  float row_scale;
  int32_t zero_point;
  const float* col_scale;
  const float* col_sum;
  const float* bias;
  float* y;
  FusedEpilogue epilogue;
};

// y[c] = float_to_bf16(x[c]) for c < cols (round to nearest even; NaN stays NaN, quiet): the
// activations of a bf16 linear layer (src/model/bf16_linear.*).
struct Bf16Row {
  const float* x;
  int64_t cols;
  uint16_t* y;
};

struct QuantizeKernels {
  const char* name;
  void (*quantize_row)(const QuantizeRow& row);
  void (*quantize_row_static)(const QuantizeRowStatic& row);
  void (*dequantize_row)(const DequantizeRow& row);
  void (*round_row_to_bf16)(const Bf16Row& row);
};

const QuantizeKernels& quantize_kernels(Isa isa);  // isa already resolved and supported
const QuantizeKernels& quantize_kernels_scalar();
const QuantizeKernels& quantize_kernels_avx2();
const QuantizeKernels& quantize_kernels_avx512();

}  // namespace dfss::kernels
