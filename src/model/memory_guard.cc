#include "model/memory_guard.h"

#include <sys/mman.h>

namespace dfss::model {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

}  // namespace

std::string megabytes(size_t bytes) {
  return std::to_string((bytes + kMiB - 1) / kMiB) + " MB";
}

void require_onednn_headroom(const std::string& what) {
  const size_t bytes = kOneDnnHeadroomBytes;
  // PROT_NONE and MAP_NORESERVE: counted against the address-space limit (ulimit -v),
  // which is what a later malloc inside oneDNN would hit, but costs no memory.
  void* probe = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (probe == MAP_FAILED) {
    throw OutOfMemory("out of memory while " + what + " (oneDNN needs " + megabytes(bytes) +
                      " of free address space for its kernels and buffers)");
  }
  munmap(probe, bytes);
}

}  // namespace dfss::model
