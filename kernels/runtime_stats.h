/// @file kernels/runtime_stats.h @brief What Ember's device runtime did: kernel launches and host synchronizations, counted by the backends in every build (real GPU or emulated), for --summary and tests.
#pragma once
#include <cstdint>

#include "core/device.h"

namespace ember::kernels {

/// Process-wide counts (all host threads, all devices of one type) since the start or the last reset.
struct RuntimeStats {
  int64_t kernel_launches = 0;  ///< Ember's own kernels (library calls such as cuBLAS are not counted)
  /// Calls in which Ember blocks the host until the device has done work: copies to the host, stream
  /// or device synchronizations, waits for a collective (not the data loader's copies to the device).
  int64_t host_syncs = 0;
};

RuntimeStats runtime_stats(DeviceType t);
void reset_runtime_stats();
/// Called by backends.
void count_kernel_launch(DeviceType t);
void count_host_sync(DeviceType t);

}  // namespace ember::kernels
