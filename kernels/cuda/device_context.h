/// @file kernels/cuda/device_context.h @brief The CUDA backend's per-device state as host code sees it (kernels/cuda/device_context.cu): current device, compute and communication streams, multiprocessor count.
#pragma once
#include <cuda_runtime.h>

namespace ember::cuda {

// Entry points run with their tensors' device current (kernels::DeviceScope), so these answer for the
// device being worked on.

/// The calling thread's current CUDA device.
int current_device();
/// The current device's compute stream: every kernel, copy and library call Ember queues for it.
cudaStream_t stream();
/// The current device's communication stream (NCCL collectives), ordered with stream() by events.
cudaStream_t comm_stream();
/// Streaming multiprocessors of the current device; grid caps are sized from it.
int multiprocessor_count();

}  // namespace ember::cuda
