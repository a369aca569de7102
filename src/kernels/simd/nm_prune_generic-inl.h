// ISAs without an in-register N:M pruning leave every row to the generic code.

namespace dfss::kernels::DFSS_KERNEL_NS {

inline bool prune_row_fast(float*, int, int) {
  return false;
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
