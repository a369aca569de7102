// Out-of-memory handling around the model's allocations and oneDNN calls: every failure
// becomes a dfss::OutOfMemory saying what was being allocated, never a crash.
#pragma once

#include <cstddef>
#include <new>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "dfss/errors.h"

namespace dfss::model {

// "48 MB", rounded up, for messages.
std::string megabytes(size_t bytes);

// Address space the model keeps free before each call into oneDNN: oneDNN builds some JIT
// kernels inside its calls with allocations it does not check (see
// build_onednn_gemm_kernels() in linear.h), so running out there would crash instead of
// failing. Scratchpads are allocated by the model itself, with checks.
inline constexpr size_t kOneDnnHeadroomBytes = size_t{32} << 20;

// Throws OutOfMemory("out of memory while <what> ...") unless kOneDnnHeadroomBytes of
// address space can be reserved now (released at once; nothing is touched).
void require_onednn_headroom(const std::string& what);

// Runs `step()`; std::bad_alloc and oneDNN's out-of-memory status become
// OutOfMemory("out of memory while <what>"). Other oneDNN errors pass through.
template <typename Step>
decltype(auto) naming_allocation_failures(const std::string& what, Step&& step) {
  try {
    return step();
  } catch (const std::bad_alloc&) {
    throw OutOfMemory("out of memory while " + what);
  } catch (const dnnl::error& e) {
    if (e.status == dnnl_out_of_memory) throw OutOfMemory("out of memory while " + what);
    throw;
  }
}

}  // namespace dfss::model
