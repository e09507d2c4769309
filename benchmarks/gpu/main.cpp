/// @file benchmarks/gpu/main.cpp @brief ember-bench-gpu: the CUDA kernel microbenchmarks against cuBLAS / cuDNN and the device's copy bandwidth; exits with a message when no GPU is present.
#include <cstdio>

#include "benchmarks/bench_main.h"
#include "benchmarks/gpu/gpu_bench.h"
#include "kernels/cuda/backend_info.h"
#include "kernels/dispatch.h"
#include "kernels/transfer.h"

int main(int argc, char** argv) {
  using namespace ember;
  if (kernels::device_count(DeviceType::CUDA) == 0) {
    std::printf("ember-bench-gpu: no CUDA device present; nothing to measure (the CPU set is ember-bench)\n");
    return 0;
  }
  if (kernels::table_for<kernels::CudaBackendInfo>(DeviceType::CUDA).emulated) {
    std::fprintf(stderr, "ember-bench-gpu: linked against the emulated CUDA backend; timings would be meaningless\n");
    return 1;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
    std::printf("ember-bench-gpu: %s, %d SMs, %.1f GiB, L2 %.1f MiB\n", prop.name, prop.multiProcessorCount,
                double(prop.totalGlobalMem) / (1 << 30), double(prop.l2CacheSize) / (1 << 20));
  using namespace ember::bench::gpu;
  return ember::bench::run_benchmarks(argc, argv, "ember-bench-gpu", [] {
    register_peak();
    register_accumulate();
    register_optimizer();
    register_batchnorm();
    register_loss_gemm();
  });
}
