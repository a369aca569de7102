#pragma once

namespace dfss {
const char* version();
}  // namespace dfss
