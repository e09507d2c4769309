/// @file core/allocator.cpp @brief The CPU allocator (64-byte aligned, with stats and an optional limit), the allocator registry and the pinned host allocator registry.
#include "core/allocator.h"

#include <cstdlib>
#include <mutex>

#include "core/counting_allocator.h"
#include "core/error.h"

namespace ember {
namespace {

class CpuAllocator final : public CountingAllocator {
 public:
  void* allocate(size_t bytes) override {
    std::lock_guard<std::mutex> lk(mu_);
    const auto rounded = static_cast<int64_t>((bytes + 63) / 64 * 64);
    EMBER_CHECK(within_limit(rounded), "cpu out of memory: requested ", bytes, " bytes with ", stats_.current_bytes,
                " bytes in use and a limit of ", limit_, " bytes");
    void* p = rounded ? std::aligned_alloc(64, static_cast<size_t>(rounded)) : nullptr;
    EMBER_CHECK(p != nullptr || rounded == 0, "cpu out of memory: requested ", bytes, " bytes with ",
                stats_.current_bytes, " bytes in use");
    count_reserved(rounded);  // nothing is cached: reserved = current
    count_in_use(rounded);
    ++stats_.allocations;
    return p;
  }
  void deallocate(void* p, size_t bytes) override {
    std::lock_guard<std::mutex> lk(mu_);
    std::free(p);
    const auto rounded = static_cast<int64_t>((bytes + 63) / 64 * 64);
    count_in_use(-rounded);
    count_reserved(-rounded);
  }
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
    static CpuAllocator cpu;
    return cpu;
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
