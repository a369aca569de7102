// Shared helpers for the attention tests: tensors that own their (possibly strided)
// storage, seeded random fills, and the tolerance check used against the reference.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "dfss/attention.h"

namespace dfss::test {

// How a logical [B, H, L, C] tensor is laid out in memory.
enum class Layout {
  contiguous,  // C order
  transposed,  // memory [B, L, H, C], as a projection's output usually is
  padded,      // C order with gaps after every row and every head
};

using Shape = std::array<int64_t, 4>;

// A 4-D tensor owning its storage; every storage slot, gaps included, is initialized.
class HostTensor {
 public:
  HostTensor(Shape shape, DType dtype, Layout layout = Layout::contiguous)
      : shape_(shape), dtype_(dtype) {
    const auto [b, h, l, c] = shape;
    int64_t slots = 0;
    switch (layout) {
      case Layout::contiguous:
        stride_ = contiguous_strides(shape);
        slots = b * h * l * c;
        break;
      case Layout::transposed:
        stride_ = {l * h * c, c, h * c, 1};
        slots = b * h * l * c;
        break;
      case Layout::padded: {
        const int64_t row = c + 3, head = l * row + 5;
        stride_ = {h * head, head, row, 1};
        slots = b * h * head;
        break;
      }
    }
    if (dtype == DType::f32) {
      f32_.assign(static_cast<size_t>(slots), 0.0f);
    } else {
      bf16_.assign(static_cast<size_t>(slots), 0);
    }
  }

  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  int64_t numel() const { return shape_[0] * shape_[1] * shape_[2] * shape_[3]; }

  ConstTensorView view() const { return {storage(), dtype_, shape_, stride_}; }
  TensorView mutable_view() { return {storage(), dtype_, shape_, stride_}; }

  int64_t offset(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    return i0 * stride_[0] + i1 * stride_[1] + i2 * stride_[2] + i3 * stride_[3];
  }
  float get(int64_t i0, int64_t i1, int64_t i2, int64_t i3) const {
    const auto at = static_cast<size_t>(offset(i0, i1, i2, i3));
    return dtype_ == DType::f32 ? f32_[at] : bf16_to_float(bf16_[at]);
  }
  // Rounds to bf16 (nearest even) when the tensor holds bf16.
  void set(int64_t i0, int64_t i1, int64_t i2, int64_t i3, float value) {
    const auto at = static_cast<size_t>(offset(i0, i1, i2, i3));
    if (dtype_ == DType::f32) {
      f32_[at] = value;
    } else {
      bf16_[at] = float_to_bf16(value);
    }
  }

  // Every storage slot, gaps included: a sentinel shows whether anything was written.
  void fill_storage(float value) {
    std::fill(f32_.begin(), f32_.end(), value);
    std::fill(bf16_.begin(), bf16_.end(), float_to_bf16(value));
  }

  // The logical values in C order, as floats.
  std::vector<float> values() const {
    std::vector<float> result;
    result.reserve(static_cast<size_t>(numel()));
    for_each_index(
        [&](int64_t a, int64_t b, int64_t c, int64_t d) { result.push_back(get(a, b, c, d)); });
    return result;
  }

  // The raw storage bytes, for bit-exact comparisons.
  std::vector<unsigned char> bytes() const {
    const auto* begin = static_cast<const unsigned char*>(storage());
    const size_t size = dtype_ == DType::f32 ? f32_.size() * 4 : bf16_.size() * 2;
    return {begin, begin + size};
  }

  template <typename Function>
  void for_each_index(Function&& function) const {
    for (int64_t a = 0; a < shape_[0]; ++a)
      for (int64_t b = 0; b < shape_[1]; ++b)
        for (int64_t c = 0; c < shape_[2]; ++c)
          for (int64_t d = 0; d < shape_[3]; ++d) function(a, b, c, d);
  }

 private:
  const void* storage() const {
    return dtype_ == DType::f32 ? static_cast<const void*>(f32_.data()) : bf16_.data();
  }
  void* storage() { return dtype_ == DType::f32 ? static_cast<void*>(f32_.data()) : bf16_.data(); }

  Shape shape_;
  DType dtype_;
  std::array<int64_t, 4> stride_{};
  std::vector<float> f32_;
  std::vector<uint16_t> bf16_;
};

// SplitMix64: a tiny generator whose sequence is the same on every platform and standard
// library (std::uniform_real_distribution is not).
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi).
  float uniform(float lo, float hi) {
    const double unit = static_cast<double>(next() >> 11) * 0x1.0p-53;
    return static_cast<float>(lo + (hi - lo) * unit);
  }
  // Uniform integer in [lo, hi].
  int64_t integer(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  }

 private:
  uint64_t state_;
};

inline void fill_uniform(HostTensor& tensor, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Random random(seed);
  tensor.for_each_index([&](int64_t a, int64_t b, int64_t c, int64_t d) {
    tensor.set(a, b, c, d, random.uniform(lo, hi));
  });
}

// max |got - want| <= tolerance * max(1, max |want|), where NaN must meet NaN and an
// infinity the same infinity.
inline ::testing::AssertionResult all_close(const std::vector<float>& got,
                                            const std::vector<float>& want, double tolerance) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure()
           << "size " << got.size() << " differs from expected " << want.size();
  }
  double scale = 1.0;
  for (float value : want) {
    if (std::isfinite(value)) scale = std::max(scale, std::fabs(static_cast<double>(value)));
  }
  double worst = 0.0;
  size_t worst_at = 0, failures = 0, first_failure = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    bool ok = false;
    if (std::isnan(w) || std::isnan(g) || std::isinf(w) || std::isinf(g)) {
      ok = (std::isnan(w) && std::isnan(g)) || g == w;
    } else {
      const double diff = std::fabs(g - w);
      if (diff > worst) worst = diff, worst_at = i;
      ok = diff <= tolerance * scale;
    }
    if (!ok && failures++ == 0) first_failure = i;
  }
  if (failures == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << failures << " of " << got.size() << " elements differ; first at flat index "
         << first_failure << ": got " << got[first_failure] << ", expected " << want[first_failure]
         << "; max |diff| " << worst << " at " << worst_at << " (limit " << tolerance * scale
         << ")";
}

// The ISAs the grid covers, in order.
inline const std::vector<Isa>& all_isas() {
  static const std::vector<Isa> isas{Isa::scalar, Isa::avx2, Isa::avx512, Isa::avx512_bf16};
  return isas;
}

}  // namespace dfss::test
