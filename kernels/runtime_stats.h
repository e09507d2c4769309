/// @file kernels/runtime_stats.h @brief The counters behind ember::runtime_stats (ops/runtime.h): backends count kernel launches and host synchronizations here.
#pragma once
#include <cstdint>

#include "core/device.h"

namespace ember::kernels {

/// The counts (core/device.h) of device type t. Users read them through ember::runtime_stats (ops/runtime.h).
RuntimeStats runtime_stats(DeviceType t);
void reset_runtime_stats();
/// Called by backends.
void count_kernel_launch(DeviceType t);
void count_host_sync(DeviceType t);

}  // namespace ember::kernels
