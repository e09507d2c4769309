/// @file core/counting_allocator.h @brief CountingAllocator: the statistics, peak reset and limit an allocator keeps under one mutex (the CPU allocator, the CUDA pinned host allocator).
#pragma once
#include <algorithm>
#include <cstdint>
#include <mutex>

#include "core/allocator.h"

namespace ember {

/// An Allocator's bookkeeping. Subclasses implement allocate/deallocate with mu_ held and keep stats_
/// through the count_* helpers, which keep peak and cached bytes consistent with current and reserved.
class CountingAllocator : public Allocator {
 public:
  AllocatorStats stats() const override {
    std::lock_guard<std::mutex> lk(mu_);
    return stats_;
  }
  void reset_peak() override {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.peak_bytes = stats_.current_bytes;
    stats_.peak_reserved_bytes = stats_.reserved_bytes;
  }
  /// A limit on current bytes (0 = none), checked by the subclass's allocate().
  void set_limit(int64_t bytes) override {
    std::lock_guard<std::mutex> lk(mu_);
    limit_ = bytes;
  }

 protected:
  /// True when `bytes` more in use stay within the limit.
  bool within_limit(int64_t bytes) const { return limit_ == 0 || stats_.current_bytes + bytes <= limit_; }
  /// `bytes` handed out (positive) or returned (negative).
  void count_in_use(int64_t bytes) {
    stats_.current_bytes += bytes;
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
    stats_.cached_bytes = stats_.reserved_bytes - stats_.current_bytes;
  }
  /// `bytes` obtained from the system (positive) or given back (negative).
  void count_reserved(int64_t bytes) {
    stats_.reserved_bytes += bytes;
    stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
    stats_.cached_bytes = stats_.reserved_bytes - stats_.current_bytes;
  }

  mutable std::mutex mu_;
  AllocatorStats stats_;
  int64_t limit_ = 0;
};

}  // namespace ember
