// Internal invariants of the kernel drivers (scratch sizes, spans, alignment): checked in
// builds configured with DFSS_DEBUG_ASSERTS=ON or DFSS_SANITIZE=ON, compiled out otherwise
// (the condition is then not evaluated). A failure is a dfss bug, not bad input, so it
// prints the condition and its place and aborts rather than throwing.
#pragma once

#if DFSS_DEBUG_ASSERTS

#include <cstdio>
#include <cstdlib>

namespace dfss::detail {

// static: per-ISA kernel files use it too, and a weak copy compiled with AVX-512 flags must
// not be the one baseline code calls (scripts/check-isa-objects.sh).
[[noreturn]] static inline void debug_assert_failed(const char* condition, const char* file,
                                                    int line) {
  std::fprintf(stderr, "dfss: internal error: %s:%d: DFSS_DEBUG_ASSERT(%s) failed\n", file, line,
               condition);
  std::abort();
}

}  // namespace dfss::detail

#define DFSS_DEBUG_ASSERT(condition) \
  ((condition) ? void(0) : ::dfss::detail::debug_assert_failed(#condition, __FILE__, __LINE__))

#else

// sizeof keeps the condition compiled (names stay checked) but never evaluated.
#define DFSS_DEBUG_ASSERT(condition) static_cast<void>(sizeof(!(condition)))

#endif
