/// @file kernels/cuda/device_context.cu @brief Per-device state of the CUDA backend: each device's compute and communication streams and multiprocessor count, created on first use with that device current; the device hooks that make every entry point run on its tensors' device.
//
// No kernels here. Everything Ember queues for device d goes to d's compute stream, so the caching
// allocator of d is stream-ordered for free (a block returned may be reused at once by later work on
// the same stream). Collectives go to d's communication stream, ordered with the compute stream by
// events (distributed/). State is never destroyed: work queued during static destruction still finds it.
#include <memory>
#include <mutex>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/dispatch.h"

namespace ember::cuda {
namespace {

struct Context {
  cudaStream_t compute = nullptr, comm = nullptr;
  int multiprocessors = 1;
};

/// Number of devices, queried once (0 when the runtime reports none or fails).
int count_devices() {
  static const int n = [] {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      (void)cudaGetLastError();
      return 0;
    }
    return count;
  }();
  return n;
}

/// The context of device d, created on first use (d must be the current device then).
Context& context_of(int d) {
  static std::mutex mu;
  static auto& contexts = *new std::vector<std::unique_ptr<Context>>(static_cast<size_t>(count_devices()));
  std::lock_guard<std::mutex> lock(mu);
  EMBER_CHECK(d >= 0 && d < static_cast<int>(contexts.size()), "cuda:", d, ": no such device (",
              contexts.size(), " CUDA device(s) available)");
  auto& slot = contexts[static_cast<size_t>(d)];
  if (!slot) {
    auto c = std::make_unique<Context>();
    EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&c->compute, cudaStreamNonBlocking));
    EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&c->comm, cudaStreamNonBlocking));
    cudaDeviceProp prop{};
    EMBER_CUDA_CHECK(cudaGetDeviceProperties(&prop, d));
    c->multiprocessors = prop.multiProcessorCount > 0 ? prop.multiProcessorCount : 1;
    slot = std::move(c);
  }
  return *slot;
}

void set_current(int index) {
  EMBER_CHECK(index >= 0 && index < count_devices(), "cuda:", index, ": no such device (", count_devices(),
              " CUDA device(s) available)");
  EMBER_CUDA_CHECK(cudaSetDevice(index));
}

}  // namespace

int current_device() {
  int d = 0;
  EMBER_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

cudaStream_t stream() { return context_of(current_device()).compute; }
cudaStream_t comm_stream() { return context_of(current_device()).comm; }
int multiprocessor_count() { return context_of(current_device()).multiprocessors; }

const kernels::Registrar device_registrar([] {
  auto& h = kernels::table_for<kernels::DeviceHooks>(DeviceType::CUDA);
  h.current = current_device;
  h.set_current = set_current;
});

}  // namespace ember::cuda
