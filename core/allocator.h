/// @file core/allocator.h @brief Per-device allocator interface with statistics (current, peak, count), the registry, and the registry of pinned (page-locked) host allocators.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/device.h"

namespace ember {

struct AllocatorStats {
  int64_t current_bytes = 0;        ///< bytes handed out and not yet returned
  int64_t peak_bytes = 0;           ///< max of current_bytes since the last reset_peak()
  int64_t allocations = 0;          ///< number of allocate() calls
  int64_t cached_bytes = 0;         ///< reserved from the device but not handed out (freed blocks kept for reuse)
  int64_t reserved_bytes = 0;       ///< obtained from the device (CPU: the C library): current + cached
  int64_t peak_reserved_bytes = 0;  ///< max of reserved_bytes since the last reset_peak()
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  /// Returns memory for `bytes` bytes (aligned to at least 64) or throws ember::Error.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p, size_t bytes) = 0;
  virtual AllocatorStats stats() const = 0;
  virtual void reset_peak() = 0;
  /// Releases cached blocks back to the system (no-op where nothing is cached).
  virtual void empty_cache() {}
  /// Optional limit on current bytes (0 = none); allocations beyond it fail like an out-of-memory.
  virtual void set_limit(int64_t bytes) = 0;
};

/// The allocator of one device (CUDA: one per device index, each with its own cache and statistics);
/// throws an Error if no backend registered one (e.g. CUDA not built) or the index does not exist.
Allocator& allocator_for(Device d);
/// True when a backend registered an allocator for this device type.
bool has_allocator(DeviceType t);
/// The allocator of device `index` of a backend's type (it owns them; throws for a bad index).
using AllocatorFactory = Allocator& (*)(int index);
/// Called by backends at start-up.
void register_allocator(DeviceType t, AllocatorFactory f);

/// A backend's allocator of pinned (page-locked) host memory: CPU memory that the backend's devices copy
/// from asynchronously (Tensor::pin_memory). CUDA's is kernels/cuda/host_allocator.cu, a caching allocator
/// of cudaHostAlloc'd blocks that hands a block out again only after the copies queued from it are done.
using PinnedAllocatorFactory = Allocator& (*)();
/// Called by backends at start-up (core never includes a backend: the backend registers itself).
void register_pinned_allocator(DeviceType t, PinnedAllocatorFactory f);
/// True when a backend of type `t` registered a pinned host allocator (false for the CPU, and in a build
/// without CUDA). Whether a device exists is asked separately (kernels::device_count).
bool has_pinned_allocator(DeviceType t = DeviceType::CUDA);
/// The pinned host allocator of backend `t`; throws an Error naming why when there is none (no backend
/// registered one, or the backend has no device).
Allocator& pinned_allocator(DeviceType t = DeviceType::CUDA);

AllocatorStats allocator_stats(Device d = Device::cpu());
void reset_peak_stats(Device d = Device::cpu());

}  // namespace ember
