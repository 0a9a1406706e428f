#include "io/temp_files.h"

#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <mutex>

namespace grok {
namespace {

// A slot goes free -> filling -> ready -> free in the writer's hands; the
// handler takes ready -> removing and never gives it back (the process is
// about to end). So the handler only reads a path whose bytes are complete
// and that nobody overwrites while it unlinks it.
enum : int { kFree, kFilling, kReady, kRemoving };
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs lock-free atomics");

struct Slot {
  std::atomic<int> state{kFree};
  char path[PATH_MAX];  // fixed storage: the handler may not allocate or lock
};

constexpr int kSlots = 16;  // files written at once; one in practice
Slot g_slots[kSlots];

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

extern "C" void remove_temp_files(int sig) {
  for (Slot& s : g_slots) {
    int expected = kReady;
    if (s.state.compare_exchange_strong(expected, kRemoving)) ::unlink(s.path);
  }
  // Die of the signal as its default action would, so the exit status says
  // "killed by SIGTERM". The signal is blocked while this handler runs: the
  // raised one is delivered, with the default action, when it returns.
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void install_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int sig : kSignals) {
      struct sigaction old {};
      // A signal ignored (nohup) or handled by someone else is left alone.
      if (::sigaction(sig, nullptr, &old) != 0 || (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
      struct sigaction sa {};
      sa.sa_handler = remove_temp_files;
      sigemptyset(&sa.sa_mask);
      for (int s : kSignals) sigaddset(&sa.sa_mask, s);  // one handler at a time on a thread
      ::sigaction(sig, &sa, nullptr);
    }
  });
}

}  // namespace

TempFileGuard::TempFileGuard(const std::string& path) {
  // Absolute, so the handler removes the right file whatever the current directory then.
  std::error_code ec;
  std::string abs = std::filesystem::absolute(path, ec).string();
  if (ec) abs = path;
  if (abs.empty() || abs.size() >= PATH_MAX) return;
  install_handlers();
  for (int i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (!g_slots[i].state.compare_exchange_strong(expected, kFilling)) continue;
    std::memcpy(g_slots[i].path, abs.c_str(), abs.size() + 1);
    g_slots[i].state.store(kReady);
    slot_ = i;
    return;
  }
}

TempFileGuard& TempFileGuard::operator=(TempFileGuard&& other) noexcept {
  if (this != &other) {
    release();
    slot_ = other.slot_;
    other.slot_ = -1;
  }
  return *this;
}

void TempFileGuard::release() noexcept {
  if (slot_ < 0) return;
  // Fails only when a handler is removing the file: it keeps the slot.
  int expected = kReady;
  g_slots[slot_].state.compare_exchange_strong(expected, kFree);
  slot_ = -1;
}

int registered_temp_files() {
  int n = 0;
  for (const Slot& s : g_slots) n += s.state.load() == kReady;
  return n;
}

}  // namespace grok
