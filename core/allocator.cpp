/// @file core/allocator.cpp @brief The CPU allocator (64-byte aligned, caching freed blocks of the same size, with stats and an optional limit), the allocator registry and the pinned host allocator registry.
#include "core/allocator.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <map>
#include <mutex>

#include "core/counting_allocator.h"
#include "core/error.h"

namespace ember {
namespace {

#if defined(__SANITIZE_ADDRESS__)
#define EMBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMBER_ASAN 1
#endif
#endif
#ifdef EMBER_ASAN
#include <sanitizer/asan_interface.h>
#endif

/// A cached block is poisoned under AddressSanitizer, so a use after free of a tensor's memory is still
/// reported (as a use after poison) although the block stays allocated.
void poison(void* p, int64_t bytes) {
#ifdef EMBER_ASAN
  ASAN_POISON_MEMORY_REGION(p, static_cast<size_t>(bytes));
#else
  (void)p, (void)bytes;
#endif
}
void unpoison(void* p, int64_t bytes) {
#ifdef EMBER_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, static_cast<size_t>(bytes));
#else
  (void)p, (void)bytes;
#endif
}

/// The CPU allocator: 64-byte aligned blocks from the C library, and a cache of freed blocks of at least
/// kCachedMin bytes handed out again to a request of the same rounded size. A training loop allocates
/// the same shapes every micro-batch; without the cache each large block went back to the kernel
/// (glibc's mmap threshold) and its pages were faulted in and zeroed again on the next micro-batch.
/// The cache never makes reserved memory exceed max(kCacheFloor, the most bytes ever in use); beyond
/// that, the largest cached blocks are released first. empty_cache() releases everything cached.
class CpuAllocator final : public CountingAllocator {
 public:
  static constexpr int64_t kCachedMin = int64_t{64} << 10;   ///< smaller blocks: glibc's bins reuse them already
  static constexpr int64_t kCacheFloor = int64_t{256} << 20;  ///< reserved may reach this whatever the high water

  void* allocate(size_t bytes) override {
    std::lock_guard<std::mutex> lk(mu_);
    const int64_t rounded = round(bytes);
    EMBER_CHECK(within_limit(rounded), "cpu out of memory: requested ", bytes, " bytes with ", stats_.current_bytes,
                " bytes in use and a limit of ", limit_, " bytes");
    if (auto it = cached_.find(rounded); it != cached_.end()) {
      void* p = it->second;
      cached_.erase(it);
      unpoison(p, rounded);
      hand_out(rounded);
      return p;
    }
    release_cached(ceiling(stats_.current_bytes + rounded) - rounded);  // keep reserved within the ceiling
    void* p = rounded ? std::aligned_alloc(64, static_cast<size_t>(rounded)) : nullptr;
    if (p == nullptr && rounded != 0) {  // the system is short: give back everything cached and retry
      release_cached(0);
      p = std::aligned_alloc(64, static_cast<size_t>(rounded));
    }
    EMBER_CHECK(p != nullptr || rounded == 0, "cpu out of memory: requested ", bytes, " bytes with ",
                stats_.current_bytes, " bytes in use");
    count_reserved(rounded);
    hand_out(rounded);
    return p;
  }

  void deallocate(void* p, size_t bytes) override {
    std::lock_guard<std::mutex> lk(mu_);
    const int64_t rounded = round(bytes);
    count_in_use(-rounded);
    if (p == nullptr) return;
    const int64_t ceil = ceiling(stats_.current_bytes);
    if (rounded >= kCachedMin && stats_.current_bytes + rounded <= ceil) {
      release_cached(ceil);  // reserved still counts p: the others make room for it
      poison(p, rounded);
      cached_.emplace(rounded, p);
      return;
    }
    std::free(p);
    count_reserved(-rounded);
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lk(mu_);
    release_cached(0);
  }

 private:
  static int64_t round(size_t bytes) { return static_cast<int64_t>((bytes + 63) / 64 * 64); }
  void hand_out(int64_t rounded) {
    count_in_use(rounded);
    ++stats_.allocations;
    high_water_ = std::max(high_water_, stats_.current_bytes);
  }
  /// The most a cache may hold together with `in_use` bytes in use.
  int64_t ceiling(int64_t in_use) const { return std::max({kCacheFloor, high_water_, in_use}); }
  /// Frees cached blocks, largest first, until reserved bytes are at most `reserved_target`.
  void release_cached(int64_t reserved_target) {
    while (!cached_.empty() && stats_.reserved_bytes > reserved_target) {
      auto last = std::prev(cached_.end());
      unpoison(last->second, last->first);
      std::free(last->second);
      count_reserved(-last->first);
      cached_.erase(last);
    }
  }

  std::multimap<int64_t, void*> cached_;  ///< rounded size -> free block
  int64_t high_water_ = 0;                ///< the most bytes ever in use at once
};

AllocatorFactory& slot(DeviceType t) {
  static AllocatorFactory slots[kNumDeviceTypes] = {nullptr, nullptr};
  return slots[static_cast<int>(t)];
}

PinnedAllocatorFactory& pinned_slot(DeviceType t) {
  static PinnedAllocatorFactory slots[kNumDeviceTypes] = {nullptr, nullptr};
  return slots[static_cast<int>(t)];
}

}  // namespace

Allocator& allocator_for(Device d) {
  if (d.is_cpu()) {
    static CpuAllocator* cpu = new CpuAllocator;  // never destroyed: tensors may be freed during static destruction
    return *cpu;
  }
  AllocatorFactory f = slot(d.type);
  EMBER_CHECK(f != nullptr, "no allocator for device ", d.str(),
              ": Ember was built without CUDA or the CUDA backend is not linked");
  return f(d.index);
}

bool has_allocator(DeviceType t) { return t == DeviceType::CPU || slot(t) != nullptr; }
void register_allocator(DeviceType t, AllocatorFactory f) { slot(t) = f; }
void register_pinned_allocator(DeviceType t, PinnedAllocatorFactory f) { pinned_slot(t) = f; }
bool has_pinned_allocator(DeviceType t) { return pinned_slot(t) != nullptr; }
Allocator& pinned_allocator(DeviceType t) {
  PinnedAllocatorFactory f = pinned_slot(t);
  EMBER_CHECK(f != nullptr, "no pinned host memory for ", device_type_name(t),
              t == DeviceType::CPU ? ": pinned memory is memory a device copies from asynchronously, the CPU has none"
                                   : ": Ember was built without CUDA or the CUDA backend is not linked");
  return f();
}
AllocatorStats allocator_stats(Device d) { return allocator_for(d).stats(); }
void reset_peak_stats(Device d) { allocator_for(d).reset_peak(); }

}  // namespace ember
