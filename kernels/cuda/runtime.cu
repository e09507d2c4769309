/// @file kernels/cuda/runtime.cu @brief The CUDA runtime layer's transfers: host <-> device copies on the device's compute stream (from pinned memory queued without blocking the host), synchronization, device count.
//
// No kernels here. Host reads (to_host) synchronize the stream; after every host synchronization the
// device-side checks of the work it waited for are raised (kernels/cuda/device_checks.h). Host writes
// (from_host) never wait for the device: from pageable memory the source is staged at the call, from
// pinned memory (the caching host allocator, host_allocator.cu) the copy is queued and reads the source
// when it runs.
#include "kernels/cuda/backend_info.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/device_checks.h"
#include "kernels/cuda/device_context.h"
#include "kernels/cuda/host_allocator.h"
#include "kernels/dispatch.h"
#include "kernels/runtime_stats.h"
#include "kernels/transfer.h"

namespace ember::cuda {
namespace {

// ---- transfers (kernels/transfer.h) ----

void from_host(const void* host, Tensor& dst) {
  // From pageable memory the call returns once the source has been staged, so `host` may be reused.
  // From pinned memory it returns at once and the stream reads `host` later: an event behind the copy
  // keeps the pinned block from being handed out again before then (a no-op for pageable memory).
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), host, dst.nbytes(), cudaMemcpyHostToDevice, stream()));
  record_pinned_use(host, stream());
}

void to_host(const Tensor& src, void* host) {
  // Into pageable memory the copy returns once it is complete (after the stream's earlier work): one
  // host synchronization, no separate cudaStreamSynchronize.
  EMBER_CUDA_CHECK(cudaMemcpyAsync(host, src.data_ptr(), src.nbytes(), cudaMemcpyDeviceToHost, stream()));
  kernels::count_host_sync(DeviceType::CUDA);
  raise_device_checks(current_device());  // the stream's earlier work is done: its checks are decided
}

void synchronize() {
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream()));
  kernels::count_host_sync(DeviceType::CUDA);
  raise_device_checks(current_device());
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace

const kernels::Registrar registrar([] {
  auto& t = kernels::table_for<kernels::TransferKernels>(DeviceType::CUDA);
  t.from_host = from_host;
  t.to_host = to_host;
  t.synchronize = synchronize;
  t.device_count = device_count;
#ifdef EMBER_CUDA_EMULATED
  kernels::table_for<kernels::CudaBackendInfo>(DeviceType::CUDA).emulated = true;
#endif
});

}  // namespace ember::cuda
