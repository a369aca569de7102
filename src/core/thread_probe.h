// Finding out, before an OpenMP region, whether its threads can be created at all: libgomp
// prints "Thread creation failed" and exits the process when pthread_create fails (too many
// threads for `ulimit -u`, no address space for their stacks under `ulimit -v`), which a
// library must not do to its caller.
#pragma once

#include <string>

namespace dfss::detail {

// Starts `threads` - 1 threads (what a region of `threads` threads adds to the calling one)
// with the stack size OpenMP gives its threads (OMP_STACKSIZE or GOMP_STACKSIZE when set,
// else the default), keeps them all alive at once, then joins them. Throws
// dfss::Unsupported naming `argument` (e.g. "--threads 64") when one cannot be created.
// A count that succeeded once is not probed again; process-wide OpenMP state is untouched.
void require_threads(int threads, const std::string& argument);

}  // namespace dfss::detail
