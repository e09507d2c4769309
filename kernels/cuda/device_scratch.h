/// @file kernels/cuda/device_scratch.h @brief Move-less RAII scratch device memory from the caching allocator, for launchers that need a small result buffer.
#pragma once
#include <cstddef>

#include "core/allocator.h"

namespace ember::cuda {

/// Scratch memory of one device from its caching allocator, returned when it goes out of scope (stream-
/// ordered: later work on that device's compute stream may reuse it at once).
class DeviceScratch {
 public:
  DeviceScratch(int device, size_t bytes)
      : alloc_(allocator_for(Device::cuda(device))), bytes_(bytes), p_(alloc_.allocate(bytes)) {}
  ~DeviceScratch() { alloc_.deallocate(p_, bytes_); }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  char* get() const { return static_cast<char*>(p_); }

 private:
  Allocator& alloc_;
  size_t bytes_;
  void* p_;
};

}  // namespace ember::cuda
