/// @file ops/runtime.h @brief Device queries for programs: how many devices, wait for one, and what Ember's runtime did (kernel launches, host synchronizations), as torch::cuda::device_count / synchronize.
#pragma once
#include <string>

#include "core/device.h"

namespace ember {

/// Devices of type t this process can use: 1 for the CPU; for CUDA 0 when Ember was built without it,
/// the backend is not linked or no GPU is visible.
int device_count(DeviceType t);
/// device_count(DeviceType::CUDA) > 0.
bool cuda_is_available();
/// Blocks the host until every kernel and copy queued on device d has finished (a no-op on the CPU).
void synchronize(Device d);
/// Kernel launches and host synchronizations on devices of type t since the start or the last reset.
RuntimeStats runtime_stats(DeviceType t);
void reset_runtime_stats();
/// The CPU's GEMM library and kernels ("OpenBLAS SkylakeX", ...; docs/benchmarks.md), "" when unknown.
std::string cpu_blas_core();

}  // namespace ember
