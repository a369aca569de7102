#include "io/temporary_cleanup.h"

#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace dfss::io {
namespace {

// The handler may only use async-signal-safe calls and lock-free atomics, so the paths
// live in fixed buffers rather than in std::string.
static_assert(std::atomic<int>::is_always_lock_free);

enum SlotState : int { kFree = 0, kFilling = 1, kLive = 2 };

struct Slot {
  std::atomic<int> state{kFree};
  char path[PATH_MAX];
};

constexpr int kSlots = 16;
Slot slots[kSlots];

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

std::atomic<int> held_back_depth{0};
std::atomic<int> held_back_signal{0};

void remove_live_temporaries() {
  for (Slot& slot : slots) {
    if (slot.state.load() == kLive) ::unlink(slot.path);
  }
}

// Removes the temporaries, then lets `signal_number` end the process as it would have.
void die_of(int signal_number) {
  remove_live_temporaries();
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);  // blocked inside the handler; delivered when it returns
}

extern "C" void on_signal(int signal_number) {
  const int saved_errno = errno;
  if (held_back_depth.load() > 0) {
    held_back_signal.store(signal_number);
  } else {
    die_of(signal_number);
  }
  errno = saved_errno;
}

}  // namespace

void remove_temporaries_on_signals() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  for (int signal_number : kSignals) sigaddset(&action.sa_mask, signal_number);
  for (int signal_number : kSignals) {
    struct sigaction current {};
    if (::sigaction(signal_number, nullptr, &current) != 0) continue;
    if (current.sa_handler != SIG_DFL || (current.sa_flags & SA_SIGINFO)) continue;
    ::sigaction(signal_number, &action, nullptr);
  }
}

TemporaryRegistration::TemporaryRegistration(const std::string& path) {
  if (path.size() >= PATH_MAX) return;
  for (int i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (!slots[i].state.compare_exchange_strong(expected, kFilling)) continue;
    std::memcpy(slots[i].path, path.c_str(), path.size() + 1);
    slots[i].state.store(kLive);
    slot_ = i;
    return;
  }
}

TemporaryRegistration::TemporaryRegistration(TemporaryRegistration&& other) noexcept
    : slot_(other.slot_) {
  other.slot_ = -1;
}

TemporaryRegistration& TemporaryRegistration::operator=(TemporaryRegistration&& other) noexcept {
  if (this != &other) {
    release();
    slot_ = other.slot_;
    other.slot_ = -1;
  }
  return *this;
}

void TemporaryRegistration::release() {
  if (slot_ >= 0) slots[slot_].state.store(kFree);
  slot_ = -1;
}

SignalsHeldBack::SignalsHeldBack() {
  held_back_depth.fetch_add(1);
}

SignalsHeldBack::~SignalsHeldBack() {
  if (held_back_depth.fetch_sub(1) != 1) return;
  const int signal_number = held_back_signal.exchange(0);
  if (signal_number != 0) die_of(signal_number);
}

}  // namespace dfss::io
