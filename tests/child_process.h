// Running a piece of a test in a forked child, for code whose failure mode is a hang or a
// fatal signal (a FIFO that blocks open(), a mapping that faults): the test then fails
// with a description instead of hanging or killing the whole test binary.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace dfss::test {

// Runs `body` (returning an exit code) in a child killed after `seconds`; returns "" if it
// exited with 0, else what happened ("exit code 3", "killed by signal 7 (Bus error)", ...).
template <typename F>
std::string run_in_child(F&& body, unsigned seconds = 20) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    ::alarm(seconds);  // SIGALRM's default action ends a child that hangs
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 98;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status) == 0 ? "" : "exit code " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    return "killed by signal " + std::to_string(signal) + " (" + ::strsignal(signal) +
           (signal == SIGALRM ? ": timed out, a hang" : "") + ")";
  }
  return "stopped";
}

}  // namespace dfss::test
