/// @file kernels/cuda/host_allocator.h @brief The CUDA backend's caching allocator of pinned host memory (kernels/cuda/host_allocator.cu) as the copy path sees it: record that a queued copy reads a pinned block.
#pragma once
#include <cuda_runtime.h>

namespace ember::cuda {

/// Called after queuing an asynchronous copy that reads host memory at `host` on `stream` (a stream of
/// the current device): when `host` lies in a block of the pinned host allocator, an event is recorded
/// on `stream` after the copy, and the block is not handed out again, once freed, before that event has
/// completed. No-op for any other (pageable) pointer. Throws an Error when the event cannot be recorded.
void record_pinned_use(const void* host, cudaStream_t stream);

}  // namespace ember::cuda
