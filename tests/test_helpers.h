// Small helpers shared by the tests of error paths and file formats.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <string>

namespace dfss::test {

// The message of the E that `f` throws; fails the test if it throws nothing.
template <typename E, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

inline bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace dfss::test
