/// @file kernels/cuda/emulator/device_work.cpp @brief Interim eager implementation of device_work.h over the header-only runtime (one device, work runs at once).
#include "kernels/cuda/emulator/device_work.h"

#include <chrono>
#include <thread>

#include "kernels/cuda/emulator/runtime.h"

namespace ember::emu {

cudaError_t enqueue(cudaStream_t, const char* name, std::vector<DeviceSpan> spans, std::function<WorkStatus()> work) {
  count_library_call(name);
  for (const DeviceSpan& s : spans)
    if (s.bytes != 0 && !detail::is_device_range(s.p, s.bytes)) {
      device_fault(std::string(name) + ": " + s.what + " is not device memory");
      return cudaSuccess;
    }
  while (work() == WorkStatus::pending) std::this_thread::sleep_for(std::chrono::microseconds(50));
  return cudaSuccess;
}

void device_fault(std::string message, cudaError_t error) { detail::fail(error, std::move(message)); }
int current_device() { return 0; }
int stream_device(cudaStream_t) { return 0; }
int device_of(const void* p, std::size_t bytes) { return detail::is_device_range(p, bytes) ? 0 : -1; }
void count_library_call(const char*) {}

}  // namespace ember::emu
