#include "core/thread_probe.h"

#include <pthread.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dfss/errors.h"

namespace dfss::detail {
namespace {

// The largest thread count proven to start in this process.
std::atomic<int> proven_threads{1};
std::mutex probe_mutex;

// OMP_STACKSIZE as libgomp reads it: a positive number with an optional B, K, M or G suffix
// (K when none). Unset or malformed: the default stack size, as libgomp then uses.
std::optional<size_t> parse_stack_size(const char* text) {
  if (text == nullptr) return std::nullopt;
  while (std::isspace(static_cast<unsigned char>(*text))) ++text;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (end == text || value == 0) return std::nullopt;
  while (std::isspace(static_cast<unsigned char>(*end))) ++end;
  unsigned shift = 10;
  switch (std::toupper(static_cast<unsigned char>(*end))) {
    case '\0': break;
    case 'B': shift = 0; break;
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    default: return std::nullopt;
  }
  if (*end != '\0') ++end;
  while (std::isspace(static_cast<unsigned char>(*end))) ++end;
  if (*end != '\0' || value > (SIZE_MAX >> shift)) return std::nullopt;
  return static_cast<size_t>(value) << shift;
}

std::optional<size_t> openmp_stack_size() {
  if (auto size = parse_stack_size(std::getenv("OMP_STACKSIZE"))) return size;
  return parse_stack_size(std::getenv("GOMP_STACKSIZE"));
}

struct ProbeState {
  std::atomic<bool> release{false};
};

void* wait_for_release(void* state) {
  auto& release = static_cast<ProbeState*>(state)->release;
  release.wait(false);
  return nullptr;
}

// Starts `count` threads that live until all have started; returns the error of the first
// pthread_create that failed, or 0.
int start_threads_together(int count) {
  pthread_attr_t attributes;
  const bool sized = pthread_attr_init(&attributes) == 0;
  pthread_attr_t* attr = nullptr;
  if (const auto stack_size = openmp_stack_size(); sized && stack_size) {
    // An unusable size is left for libgomp to report, as it would without the probe.
    if (pthread_attr_setstacksize(&attributes, *stack_size) == 0) attr = &attributes;
  }
  ProbeState state;
  std::vector<pthread_t> started;
  started.reserve(static_cast<size_t>(count));
  int error = 0;
  for (int i = 0; i < count && error == 0; ++i) {
    pthread_t thread;
    error = pthread_create(&thread, attr, wait_for_release, &state);
    if (error == 0) started.push_back(thread);
  }
  state.release.store(true);
  state.release.notify_all();
  for (pthread_t thread : started) pthread_join(thread, nullptr);
  if (sized) pthread_attr_destroy(&attributes);
  return error;
}

}  // namespace

void require_threads(int threads, const std::string& argument) {
  if (threads <= proven_threads.load()) return;
  const std::lock_guard lock(probe_mutex);
  if (threads <= proven_threads.load()) return;
  if (const int error = start_threads_together(threads - 1)) {
    throw Unsupported(argument + ": cannot start " + std::to_string(threads) +
                      " threads (pthread_create: " + std::strerror(error) +
                      "); expected a count the process limits allow: lower it, or raise the "
                      "thread limit (ulimit -u) or the address space (ulimit -v)");
  }
  proven_threads.store(threads);
}

}  // namespace dfss::detail
