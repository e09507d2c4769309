/// @file benchmarks/gpu/baselines.h @brief The vendor libraries the GPU rows are compared with: cuBLAS and cuDNN handles bound to Ember's stream, with checked calls.
#pragma once
#include <cublas_v2.h>
#include <cudnn.h>

namespace ember::bench::gpu {

/// Created on first use, bound to ember::cuda::stream(), pointer mode host.
cublasHandle_t cublas();
/// Created on first use, bound to ember::cuda::stream().
cudnnHandle_t cudnn();

/// Throw ember::Error naming `what` and the library's status string.
void check_cublas(cublasStatus_t st, const char* what);
void check_cudnn(cudnnStatus_t st, const char* what);

#define EMBER_BENCH_CUBLAS(expr) ::ember::bench::gpu::check_cublas((expr), #expr)
#define EMBER_BENCH_CUDNN(expr) ::ember::bench::gpu::check_cudnn((expr), #expr)

}  // namespace ember::bench::gpu
