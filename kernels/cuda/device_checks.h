/// @file kernels/cuda/device_checks.h @brief Deferred device-side checks of the CUDA backend: a failure record per device in mapped page-locked host memory, raised after the next host synchronization (kernels/device_checks.h).
#pragma once
#include <functional>

namespace ember::cuda {

/// Written by kernels (mapped page-locked host memory, so the host reads it after a synchronization
/// without another copy): the number of failures and the smallest tag among them.
struct CheckRecord {
  unsigned long long failures;
  unsigned long long first_tag;
};

/// What a kernel needs to report a failure of one check: the current device's record and the tag of
/// this check, issued in launch order. On failure a kernel thread does
///   atomicAdd(&record->failures, 1ull); atomicMin(&record->first_tag, tag);
struct DeferredCheck {
  CheckRecord* record;
  unsigned long long tag;
};

/// Registers a check of work about to be queued on the current device. `raise` is called (on the host,
/// after a synchronization, so it may read device memory) when this is the earliest failed check; it
/// must throw the ember::Error that names the failure. It keeps what it captures alive until then.
DeferredCheck defer_check(std::function<void()> raise);

/// After a host synchronization with `device` (everything queued on its compute stream before is done):
/// forgets its pending checks and, when one failed, clears the record and calls the earliest failed
/// check's `raise`.
void raise_device_checks(int device);

}  // namespace ember::cuda
