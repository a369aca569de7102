// A model file that changes after it was loaded (truncated, or rewritten in place while a
// long `dfss embed` runs) must not crash the process: the weights live in memory that
// dfss owns, not in a mapping of the file that would fault (SIGBUS) on access.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "child_process.h"
#include "dfss/bert.h"
#include "io/safetensors.h"
#include "test_helpers.h"
#include "tiny_bert.h"

namespace dfss {
namespace {

using test::run_in_child;
using test::TinyBert;

// Sums every byte of every tensor, touching all of them.
uint64_t checksum(const io::SafetensorsFile& file) {
  uint64_t sum = 0;
  for (const io::TensorInfo& tensor : file.tensors()) {
    for (uint8_t byte : tensor.bytes) sum += byte;
  }
  return sum;
}

TEST(InputModelChange, TensorsSurviveTheFileBeingTruncated) {
  const TinyBert model;
  const std::string path = model.dir() + "/model.safetensors";
  const uint64_t expected = checksum(io::SafetensorsFile::open(path));
  // In a child: with a mapping, the access after truncation would kill the process.
  EXPECT_EQ(run_in_child([&] {
              const io::SafetensorsFile file = io::SafetensorsFile::open(path);
              std::filesystem::resize_file(path, 0);
              return checksum(file) == expected ? 0 : 1;
            }),
            "");
}

TEST(InputModelChange, EncodingSurvivesTheModelBeingRewritten) {
  // In this process, not a child: libgomp's thread pool does not survive fork(). Without
  // owned weights this test dies with SIGBUS, which fails it all the same.
  const TinyBert model;
  const std::string path = model.dir() + "/model.safetensors";
  const std::vector<std::vector<int32_t>> texts = {{2, 5, 6, 7, 3}, {2, 11, 12, 3}};
  const BertEncoder encoder = BertEncoder::load(model.dir());
  std::vector<float> expected(texts.size() * model.shape().hidden);
  encoder.encode(texts, expected);

  // Truncated, then rewritten in place with other bytes, as a copy over it would be.
  std::filesystem::resize_file(path, 0);
  std::ofstream(path, std::ios::binary) << std::string(64, 'x');
  std::vector<float> out(expected.size());
  encoder.encode(texts, out);
  EXPECT_EQ(out, expected);
}

}  // namespace
}  // namespace dfss
