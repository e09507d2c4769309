/// @file benchmarks/gpu/baselines.cpp @brief cuBLAS / cuDNN handles for the baselines, on Ember's stream.
#include "benchmarks/gpu/baselines.h"

#include "benchmarks/gpu/gpu_bench.h"
#include "core/error.h"

namespace ember::bench::gpu {

void check_cublas(cublasStatus_t st, const char* what) {
  EMBER_CHECK(st == CUBLAS_STATUS_SUCCESS, what, " failed: ", cublasGetStatusString(st));
}

void check_cudnn(cudnnStatus_t st, const char* what) {
  EMBER_CHECK(st == CUDNN_STATUS_SUCCESS, what, " failed: ", cudnnGetErrorString(st));
}

cublasHandle_t cublas() {
  static const cublasHandle_t h = [] {
    cublasHandle_t handle = nullptr;
    EMBER_BENCH_CUBLAS(cublasCreate(&handle));
    EMBER_BENCH_CUBLAS(cublasSetStream(handle, ember::cuda::stream()));
    return handle;
  }();
  return h;
}

cudnnHandle_t cudnn() {
  static const cudnnHandle_t h = [] {
    cudnnHandle_t handle = nullptr;
    EMBER_BENCH_CUDNN(cudnnCreate(&handle));
    EMBER_BENCH_CUDNN(cudnnSetStream(handle, ember::cuda::stream()));
    return handle;
  }();
  return h;
}

}  // namespace ember::bench::gpu
