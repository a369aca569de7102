#include <charconv>

#include "dfss/attention.h"
#include "dfss/errors.h"
#include "kernels/attention/flash_kernels.h"

namespace dfss {

const char* impl_name(AttentionImpl impl) {
  switch (impl) {
    case AttentionImpl::reference: return "reference";
    case AttentionImpl::unfused: return "unfused";
    case AttentionImpl::fused: return "fused";
  }
  return "unknown";
}

AttentionImpl parse_impl(const std::string& text, const std::string& argument_name) {
  for (AttentionImpl impl :
       {AttentionImpl::reference, AttentionImpl::unfused, AttentionImpl::fused}) {
    if (text == impl_name(impl)) return impl;
  }
  throw InvalidArgument(argument_name + ": expected one of reference, unfused, fused; got '" +
                        text + "'");
}

std::string SparsityPattern::to_string() const {
  return dense() ? "dense" : std::to_string(n) + ":" + std::to_string(m);
}

SparsityPattern parse_pattern(const std::string& text, const std::string& argument_name) {
  if (text == "dense") return {};
  const auto fail = [&]() -> SparsityPattern {
    throw InvalidArgument(
        argument_name +
        ": expected 'dense' or 'N:M' with 1 <= N < M <= 8 (e.g. 2:4, 1:2, 2:8); got '" + text +
        "'");
  };
  const size_t colon = text.find(':');
  if (colon == std::string::npos) return fail();
  int n = 0, m = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [n_end, n_error] = std::from_chars(begin, begin + colon, n);
  auto [m_end, m_error] = std::from_chars(begin + colon + 1, end, m);
  if (n_error != std::errc() || m_error != std::errc() || n_end != begin + colon || m_end != end)
    return fail();
  if (!(1 <= n && n < m && m <= 8)) return fail();
  return {n, m};
}

std::string attention_kernel_name(AttentionImpl impl, DType dtype, Isa isa,
                                  SparsityPattern pattern) {
  if (impl == AttentionImpl::reference)
    return std::string(dtype_name(dtype)) + "_attn_reference__double";
  const bool sparse = !pattern.dense();
  if (impl == AttentionImpl::fused && sparse)
    return kernels::sparse_fused_kernels(resolve_isa(isa), dtype, pattern).sparse_fused_name;
  const kernels::AttentionKernels& kernels =
      kernels::attention_kernels(resolve_isa(isa), dtype, sparse);
  if (impl == AttentionImpl::fused) return kernels.fused_name;
  return sparse ? kernels.sparse_unfused_name : kernels.unfused_name;
}

}  // namespace dfss
