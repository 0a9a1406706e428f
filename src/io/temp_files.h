// Temporary files being written, removed if the process is killed by
// SIGINT, SIGTERM or SIGHUP: a half-written OUT.gguf.tmp can be hundreds of
// GB. Writers hold a TempFileGuard while the file exists; the first guard
// installs the signal handlers (where the signal still has its default
// action), which remove every registered file and then let the signal kill
// the process as it would have, so its exit status still names the signal.
#pragma once

#include <string>

namespace grok {

class TempFileGuard {
 public:
  TempFileGuard() = default;
  // Registers `path` (before it is created). A path too long for the fixed
  // registry, or a registry full, is not registered (and not removed on a
  // signal); the write goes on.
  explicit TempFileGuard(const std::string& path);
  TempFileGuard(TempFileGuard&& other) noexcept : slot_(other.slot_) { other.slot_ = -1; }
  TempFileGuard& operator=(TempFileGuard&& other) noexcept;
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  ~TempFileGuard() { release(); }

  // Unregisters: call once the file is renamed into place or removed.
  void release() noexcept;
  bool registered() const { return slot_ >= 0; }

 private:
  int slot_ = -1;
};

// How many paths are registered now (for tests).
int registered_temp_files();

}  // namespace grok
