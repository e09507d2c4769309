/// @file kernels/cuda/emulator/device_work.h @brief What the emulated libraries (cuBLAS, cuDNN, NCCL fakes) use of the emulated runtime: queue device work on a stream, device memory and device queries, call counters.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda/emulator/types.h"

namespace ember::emu {

/// A range of device memory that a queued operation reads or writes.
struct DeviceSpan {
  const void* p = nullptr;
  std::size_t bytes = 0;
  const char* what = "";  ///< names the operand in error messages ("A", "workspace", ...)
};

/// What a queued operation reports each time it is run.
enum class WorkStatus {
  done,     ///< finished (successfully, or after recording a fault with device_fault())
  pending,  ///< cannot finish yet (an NCCL collective whose peers have not arrived): run me again later
};

/// Queues `work` on `stream` (nullptr: the legacy default stream of the current device) as one device
/// operation named `name` (counted as a library call of the calling host thread). It runs when the
/// stream is executed (lazy streams: when something waits for it; eager: at once), after the stream's
/// earlier work. Before it runs, every span is checked to lie inside one cudaMalloc allocation of the
/// stream's device: otherwise the operation does not run and the device gets the sticky error
/// cudaErrorIllegalAddress naming `name` and the span, as a kernel that touched it would on a GPU.
/// A `work` that returns WorkStatus::pending is run again later (never concurrently with itself) and
/// must return done eventually; it runs with the runtime's lock held and must not call the CUDA runtime
/// API (the queries below are fine). Returns cudaSuccess, or the error queueing gave (invalid stream
/// handle, the device's sticky error). The stream may belong to another device than the current one
/// (the library checks that, where the real one does).
cudaError_t enqueue(cudaStream_t stream, const char* name, std::vector<DeviceSpan> spans,
                    std::function<WorkStatus()> work);

/// Called from inside a queued operation: records a fault of the device (sticky cudaErrorIllegalAddress,
/// or `error`), as an illegal memory access inside a library kernel would on a GPU.
void device_fault(std::string message, cudaError_t error = cudaErrorIllegalAddress);

/// The device the calling host thread has made current (cudaSetDevice; 0 by default).
int current_device();
/// The device `stream` belongs to (nullptr: the current device); -1 when it is not a valid stream.
int stream_device(cudaStream_t stream);
/// The device whose cudaMalloc allocation contains [p, p + bytes), or -1 when none does.
int device_of(const void* p, std::size_t bytes);
/// Counts a call of an emulated library function for the calling host thread (ember::emu::counters()).
void count_library_call(const char* name);

}  // namespace ember::emu
