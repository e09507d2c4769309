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
  ~StorageImpl();
  StorageImpl(const StorageImpl&) = delete;
  StorageImpl& operator=(const StorageImpl&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
};

using Storage = std::shared_ptr<StorageImpl>;

}  // namespace ember
