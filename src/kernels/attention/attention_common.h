// Standard headers every per-ISA attention translation unit needs before it opens its
// ISA namespace and includes the -inl.h bodies.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "kernels/attention/flash_kernels.h"
