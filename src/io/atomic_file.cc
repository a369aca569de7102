#include "io/atomic_file.h"

#include "io/output_set.h"

namespace dfss::io {

void write_file_atomically(const std::string& path,
                           std::initializer_list<std::span<const uint8_t>> parts) {
  OutputSet outputs;
  StagedFile& file = outputs.file(outputs.add(path));
  for (std::span<const uint8_t> part : parts) file.write(part);
  outputs.commit();
}

}  // namespace dfss::io
