/// @file kernels/cuda/device_checks.cu @brief Deferred device-side checks: per-device failure records in mapped page-locked host memory and the host's table of pending checks. No kernels here.
#include "kernels/cuda/device_checks.h"

#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/device_context.h"

namespace ember::cuda {
namespace {

constexpr unsigned long long kNoTag = ~0ull;

struct DeviceChecks {
  CheckRecord* host = nullptr;    ///< mapped page-locked memory, read by the host
  CheckRecord* device = nullptr;  ///< the same memory as kernels address it
  unsigned long long next_tag = 0;
  std::map<unsigned long long, std::function<void()>> pending;  ///< by tag, since the last synchronization
};

std::mutex mu;
/// Per device; never destroyed (the page-locked records live as long as the process).
std::vector<std::unique_ptr<DeviceChecks>>& all() {
  static auto* v = new std::vector<std::unique_ptr<DeviceChecks>>();
  return *v;
}

DeviceChecks& checks_of(int device) {
  auto& v = all();
  if (v.size() <= static_cast<size_t>(device)) v.resize(static_cast<size_t>(device) + 1);
  auto& c = v[static_cast<size_t>(device)];
  if (!c) {
    c = std::make_unique<DeviceChecks>();
    void* p = nullptr;
    EMBER_CUDA_CHECK(cudaHostAlloc(&p, sizeof(CheckRecord), cudaHostAllocMapped | cudaHostAllocPortable));
    c->host = static_cast<CheckRecord*>(p);
    *c->host = CheckRecord{0, kNoTag};
    void* d = nullptr;
    EMBER_CUDA_CHECK(cudaHostGetDevicePointer(&d, p, 0));
    c->device = static_cast<CheckRecord*>(d);
  }
  return *c;
}

}  // namespace

DeferredCheck defer_check(std::function<void()> raise) {
  const std::lock_guard<std::mutex> lock(mu);
  DeviceChecks& c = checks_of(current_device());
  const unsigned long long tag = c.next_tag++;
  c.pending.emplace(tag, std::move(raise));
  return {c.device, tag};
}

void raise_device_checks(int device) {
  std::function<void()> raise;
  {
    const std::lock_guard<std::mutex> lock(mu);
    DeviceChecks& c = checks_of(device);
    if (c.host->failures != 0) {
      auto it = c.pending.find(c.host->first_tag);
      if (it != c.pending.end()) raise = std::move(it->second);
      *c.host = CheckRecord{0, kNoTag};
    }
    c.pending.clear();
  }
  if (raise) raise();
}

}  // namespace ember::cuda
