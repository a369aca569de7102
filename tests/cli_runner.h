// Running the dfss binary from tests: a real process, stdout and stderr captured.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "temp_dir.h"

namespace dfss::test {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Whether this build (and so the dfss binary the tests run) uses AddressSanitizer, which
// reserves terabytes of address space at start: `ulimit -v` tests cannot run under it (the
// plain build runs them).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizerBuild = true;
#else
inline constexpr bool kAddressSanitizerBuild = false;
#endif
#else
inline constexpr bool kAddressSanitizerBuild = false;
#endif

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs `dfss <args>` with the shell; stdout and stderr are captured in files under `dir`.
// `shell_prefix` goes before the command (e.g. "ulimit -v N && ", "timeout -s KILL 30 ").
inline CliResult run_cli(const TempDir& dir, const std::string& args,
                         const std::string& shell_prefix = "") {
  const std::string out = dir.file("stdout.txt"), err = dir.file("stderr.txt");
  const std::string command = shell_prefix + "'" + DFSS_CLI_PATH + "' " + args + " >'" + out +
                              "' 2>'" + err + "' </dev/null";
  const int status = std::system(command.c_str());
  CliResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

}  // namespace dfss::test
