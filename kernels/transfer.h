/// @file kernels/transfer.h @brief Host <-> device copies of contiguous tensors and device synchronization (filled by device backends).
#pragma once
#include "core/tensor.h"

namespace ember::kernels {

struct TransferKernels {
  /// host (nbytes of dst) -> dst (contiguous, on this backend's device), without waiting for the device:
  /// pageable `host` is staged at the call; pinned `host` (the backend's pinned host allocator) is read
  /// when the queued copy runs, and the backend keeps its block from reuse until then.
  void (*from_host)(const void* host, Tensor& dst) = nullptr;
  /// src (contiguous, on this backend's device) -> host (nbytes of src)
  void (*to_host)(const Tensor& src, void* host) = nullptr;
  /// Waits for all queued work on the device.
  void (*synchronize)() = nullptr;
  /// Number of usable devices of this type (0 when none).
  int (*device_count)() = nullptr;
};

/// Copies a contiguous tensor to another device (any pair of CPU/CUDA); returns a new contiguous tensor.
/// Host to device the host does not wait for the device (from pinned memory the copy is only queued;
/// see from_host); device to host returns when the copy is complete.
Tensor transfer(const Tensor& src, Device to);
/// Waits for the device's queued work (no-op on CPU).
void synchronize(Device d);
/// Number of usable devices of this type (CPU: 1; CUDA: 0 when not built or no GPU).
int device_count(DeviceType t);

}  // namespace ember::kernels
