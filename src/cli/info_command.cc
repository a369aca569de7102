#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/commands.h"
#include "dfss/attention.h"
#include "dfss/version.h"

namespace dfss::cli {

void run_info(Isa isa) {
  const char* forced = std::getenv("DFSS_ISA");
  const std::string default_note =
      forced != nullptr && *forced != '\0' ? std::string(" (DFSS_ISA=") + forced + ")" : "";
  const Isa in_use = resolve_isa(isa);

  std::printf("dfss %s\n", version());
  std::printf("isa detected:  %s\n", isa_name(detected_isa()));
  std::printf("isa default:   %s%s\n", isa_name(default_isa()), default_note.c_str());
  std::printf("isa in use:    %s%s\n", isa_name(in_use), isa == Isa::automatic ? "" : " (--isa)");
  std::printf("threads:       %d\n", omp_get_max_threads());
  std::printf("kernels:\n");
  for (AttentionImpl impl : {AttentionImpl::fused, AttentionImpl::unfused}) {
    for (DType dtype : {DType::f32, DType::bf16}) {
      std::printf("  %-8s %-5s %s\n", impl_name(impl), dtype_arg_name(dtype),
                  attention_kernel_name(impl, dtype, in_use).c_str());
    }
  }
}

}  // namespace dfss::cli
