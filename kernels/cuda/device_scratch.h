/// @file kernels/cuda/device_scratch.h @brief Move-less RAII scratch device memory from the caching allocator, for launchers that need a small result buffer.
#pragma once
#include <cstddef>

#include "core/allocator.h"

namespace ember::cuda {

/// Scratch device memory from the caching allocator, returned when it goes out of scope (stream-
/// ordered: later work on the stream may reuse it at once).
class DeviceScratch {
 public:
  explicit DeviceScratch(size_t bytes)
      : alloc_(allocator_for(Device::cuda(0))), bytes_(bytes), p_(alloc_.allocate(bytes)) {}
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
