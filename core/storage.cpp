/// @file core/storage.cpp @brief StorageImpl: allocate on construction, return to the allocator on destruction.
#include "core/storage.h"

namespace ember {

StorageImpl::StorageImpl(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  data_ = allocator_for(device).allocate(bytes);
}

StorageImpl::StorageImpl(size_t bytes, Allocator& pinned) : bytes_(bytes), device_(Device::cpu()), pinned_(&pinned) {
  data_ = pinned.allocate(bytes);
}

StorageImpl::~StorageImpl() {
  if (data_ != nullptr || bytes_ == 0) (pinned_ ? *pinned_ : allocator_for(device_)).deallocate(data_, bytes_);
}

}  // namespace ember
