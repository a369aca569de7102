#include <algorithm>
#include <charconv>
#include <string_view>

#include "attention/selected.h"
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
  if (dense()) return "dense";
  if (nm()) return std::to_string(n) + ":" + std::to_string(m);
  if (!predicted) return "topk:" + std::to_string(keep);
  return "dsa:" + std::to_string(keep) + ":block=" + std::to_string(block);
}

namespace {

// The whole of `text` as a positive integer, or 0.
int64_t parse_count(std::string_view text) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && value > 0 ? value : 0;
}

}  // namespace

SparsityPattern parse_pattern(const std::string& text, const std::string& argument_name) {
  if (text == "dense") return {};
  const auto fail = [&](const std::string& why) -> SparsityPattern {
    throw InvalidArgument(argument_name +
                          ": expected 'dense', 'N:M' with 1 <= N < M <= 8 (e.g. 2:4, 1:2, 2:8), "
                          "'topk:K' or 'dsa:K[:block=B]' (K >= 1; B a power of two <= 128 "
                          "dividing K, default 16)" +
                          why + "; got '" + text + "'");
  };
  const std::string_view all(text);
  const size_t colon = all.find(':');
  if (colon == std::string_view::npos) return fail("");
  const std::string_view head = all.substr(0, colon), rest = all.substr(colon + 1);
  if (head == "topk" || head == "dsa") {
    SparsityPattern pattern;
    pattern.predicted = head == "dsa";
    // ':' rather than ',' before the option: lists of patterns are comma-separated.
    const size_t separator = rest.find(':');
    pattern.keep = parse_count(rest.substr(0, separator));
    if (pattern.keep == 0) return fail("");
    if (separator != std::string_view::npos) {
      const std::string_view option = rest.substr(separator + 1);
      if (!pattern.predicted || option.substr(0, 6) != "block=") return fail("");
      pattern.block = parse_count(option.substr(6));
    } else if (pattern.predicted) {
      pattern.block = std::min(kDsaDefaultBlock, pattern.keep & -pattern.keep);
    }
    const int64_t b = pattern.block;
    if (b < 1 || b > kDsaMaxBlock || (b & (b - 1)) != 0 || pattern.keep % b != 0)
      return fail(" (block " + std::to_string(b) + ")");
    return pattern;
  }
  int n = 0, m = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [n_end, n_error] = std::from_chars(begin, begin + colon, n);
  auto [m_end, m_error] = std::from_chars(begin + colon + 1, end, m);
  if (n_error != std::errc() || m_error != std::errc() || n_end != begin + colon || m_end != end)
    return fail("");
  if (!(1 <= n && n < m && m <= 8)) return fail("");
  return {n, m};
}

std::string attention_kernel_name(AttentionImpl impl, DType dtype, Isa isa,
                                  SparsityPattern pattern) {
  if (impl == AttentionImpl::reference)
    return std::string(dtype_name(dtype)) + "_attn_reference__double";
  if (pattern.selects_keys()) return detail::selected_kernel_name(dtype, resolve_isa(isa), pattern);
  const bool sparse = !pattern.dense();
  if (impl == AttentionImpl::fused && sparse)
    return kernels::sparse_fused_kernels(resolve_isa(isa), dtype, pattern).sparse_fused_name;
  const kernels::AttentionKernels& kernels =
      kernels::attention_kernels(resolve_isa(isa), dtype, sparse);
  if (impl == AttentionImpl::fused) return kernels.fused_name;
  return sparse ? kernels.sparse_unfused_name : kernels.unfused_name;
}

}  // namespace dfss
