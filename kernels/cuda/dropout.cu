/// @file kernels/cuda/dropout.cu @brief CUDA dropout with the counter-based Philox mask: the same kept elements as the CPU backend for the same (seed, offset).
//
// The mask is never stored: the backward calls the same kernel on the incoming gradient with the
// forward's (seed, offset), so it costs no memory between forward and backward.
#include "kernels/cuda/common.cuh"
#include "kernels/dispatch.h"
#include "kernels/dropout.h"
#include "kernels/philox.h"

namespace ember::kernels::cuda_backend {
namespace {

constexpr unsigned kThreads = 256;

// ---------------------------------------------------------------------------------------- kernels

/// out[i] = philox_uniform(seed, offset, i) >= p ? x[i] * scale : 0. Grid-stride, min(ceil(n/256),
/// 8 per SM) x 256, no shared memory. Bytes: 8n (x read, out written).
__global__ void dropout_kernel(const float* x, float* out, float p, float scale, uint64_t seed, uint64_t offset,
                               int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = philox_uniform(seed, offset, static_cast<uint64_t>(i)) >= p ? x[i] * scale : 0.0f;
}

// -------------------------------------------------------------------------------------- launchers

void dropout(const Tensor& x, Tensor& out, double p, uint64_t seed, uint64_t offset) {
  EMBER_CHECK(x.dtype() == DType::f32, "dropout: the CUDA backend computes in f32 only, got ", describe(x));
  const int64_t n = x.numel();
  ember::cuda::launch(dropout_kernel, ember::cuda::grid_for(n, kThreads), kThreads, 0, ember::cuda::stream(),
                      static_cast<const float*>(x.data_ptr()), static_cast<float*>(out.data_ptr()),
                      static_cast<float>(p), static_cast<float>(1.0 / (1.0 - p)), seed, offset, n);
  EMBER_CUDA_CHECK_LAUNCH("dropout_kernel");
}

}  // namespace

const Registrar registrar([] { table_for<DropoutKernels>(DeviceType::CUDA).dropout = dropout; });

}  // namespace ember::kernels::cuda_backend
