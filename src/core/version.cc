#include "dfss/version.h"

namespace dfss {
const char* version() { return DFSS_VERSION; }
}  // namespace dfss
