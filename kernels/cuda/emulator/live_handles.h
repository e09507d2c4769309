/// @file kernels/cuda/emulator/live_handles.h @brief The set of live handles of an emulated library, so a destroyed or never created handle is reported with the library's status instead of being dereferenced.
#pragma once
#include <mutex>
#include <set>

namespace ember::emu {

/// Handles of type T* created and not yet destroyed (thread-safe).
template <class T>
class LiveHandles {
 public:
  /// Takes ownership of a new handle.
  T* add(T* h) {
    std::lock_guard lock(m_);
    live_.insert(h);
    return h;
  }
  /// Deletes `h`; false (nothing done) when it is not live.
  bool remove(T* h) {
    {
      std::lock_guard lock(m_);
      if (live_.erase(h) == 0) return false;
    }
    delete h;
    return true;
  }
  /// True when `h` was created and not destroyed (nullptr is never live).
  bool contains(const T* h) {
    std::lock_guard lock(m_);
    return live_.count(h) != 0;
  }

 private:
  std::mutex m_;
  std::set<const T*> live_;
};

}  // namespace ember::emu
