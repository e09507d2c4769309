/// @file core/storage.h @brief Storage: a refcounted device buffer obtained from the device's allocator (move-only owner).
#pragma once
#include <cstddef>
#include <memory>

#include "core/allocator.h"
#include "core/device.h"

namespace ember {

/// Owns `bytes` bytes on `device`; returned to the allocator on destruction. Shared through
/// std::shared_ptr<StorageImpl> by tensors and their views.
class StorageImpl {
 public:
  StorageImpl(size_t bytes, Device device);
  /// `bytes` of pinned (page-locked) host memory from `pinned` (core/allocator.h: pinned_allocator()),
  /// returned to it on destruction; the device is the CPU.
  StorageImpl(size_t bytes, Allocator& pinned);
  ~StorageImpl();
  StorageImpl(const StorageImpl&) = delete;
  StorageImpl& operator=(const StorageImpl&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  /// True for memory of a pinned host allocator (Tensor::pin_memory).
  bool is_pinned() const { return pinned_ != nullptr; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  Allocator* pinned_ = nullptr;  ///< the pinned host allocator that owns data_, else null (allocator_for(device_))
};

using Storage = std::shared_ptr<StorageImpl>;

}  // namespace ember
