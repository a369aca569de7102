// ISAs without an in-register N:M selection leave every row to the generic code.

namespace dfss::kernels::DFSS_KERNEL_NS {

inline bool select_row_fast(const float*, int64_t, int, int, int64_t, KeptIndex, float*, int32_t*) {
  return false;
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
