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
  for (AttentionImpl impl : {AttentionImpl::reference, AttentionImpl::unfused, AttentionImpl::fused}) {
    if (text == impl_name(impl)) return impl;
  }
  throw InvalidArgument(argument_name + ": expected one of reference, unfused, fused; got '" + text + "'");
}

std::string attention_kernel_name(AttentionImpl impl, DType dtype, Isa isa) {
  if (impl == AttentionImpl::reference) return std::string(dtype_name(dtype)) + "_attn_reference__double";
  const kernels::AttentionKernels& kernels = kernels::attention_kernels(resolve_isa(isa), dtype);
  return impl == AttentionImpl::fused ? kernels.fused_name : kernels.unfused_name;
}

}  // namespace dfss
