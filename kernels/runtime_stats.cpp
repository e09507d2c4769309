/// @file kernels/runtime_stats.cpp @brief Process-wide atomic counters of kernel launches and host synchronizations per device type.
#include "kernels/runtime_stats.h"

#include <array>
#include <atomic>

namespace ember::kernels {
namespace {

struct Counters {
  std::atomic<int64_t> launches{0}, syncs{0};
};
constexpr size_t kTypes = kNumDeviceTypes;
std::array<Counters, kTypes>& counters() {
  static std::array<Counters, kTypes> c;
  return c;
}
Counters& of(DeviceType t) { return counters()[static_cast<size_t>(t) % kTypes]; }

}  // namespace

RuntimeStats runtime_stats(DeviceType t) {
  return {of(t).launches.load(std::memory_order_relaxed), of(t).syncs.load(std::memory_order_relaxed)};
}

void reset_runtime_stats() {
  for (Counters& c : counters()) c.launches = 0, c.syncs = 0;
}

void count_kernel_launch(DeviceType t) { of(t).launches.fetch_add(1, std::memory_order_relaxed); }
void count_host_sync(DeviceType t) { of(t).syncs.fetch_add(1, std::memory_order_relaxed); }

}  // namespace ember::kernels
