// Removal of dfss's temporary output files when the process is interrupted. Outputs are
// written under temporary names and renamed into place (see output_file.h); without this,
// SIGINT (Ctrl-C), SIGTERM or SIGHUP during a write would leave the temporary file behind.
#pragma once

#include <string>

namespace dfss::io {

// Installs handlers for SIGINT, SIGTERM and SIGHUP that remove every registered temporary
// file and then die of the same signal (default action), so that the exit status still
// says which signal ended the process. Signals whose disposition is not the default (e.g.
// ignored under nohup, or handled by a host program) are left alone. The dfss CLI calls
// this once at start; a library user may call it or not.
void remove_temporaries_on_signals();

// A temporary file path that the signal handlers remove while the guard lives. At most a
// fixed number of paths (16) can be registered at once; further ones still get removed on
// ordinary errors, only not on signals.
class TemporaryRegistration {
 public:
  TemporaryRegistration() = default;
  explicit TemporaryRegistration(const std::string& path);
  ~TemporaryRegistration() { release(); }
  TemporaryRegistration(TemporaryRegistration&& other) noexcept;
  TemporaryRegistration& operator=(TemporaryRegistration&& other) noexcept;
  TemporaryRegistration(const TemporaryRegistration&) = delete;
  TemporaryRegistration& operator=(const TemporaryRegistration&) = delete;

  // Stops tracking the path (after it was renamed or removed).
  void release();

 private:
  int slot_ = -1;
};

// While alive, the signals above are held back instead of acted on: renaming several files
// into place must not stop halfway. When the last guard ends, a held-back signal takes
// effect (temporaries removed, process ended by the signal).
class SignalsHeldBack {
 public:
  SignalsHeldBack();
  ~SignalsHeldBack();
  SignalsHeldBack(const SignalsHeldBack&) = delete;
  SignalsHeldBack& operator=(const SignalsHeldBack&) = delete;
};

}  // namespace dfss::io
