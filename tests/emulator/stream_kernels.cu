/// @file tests/emulator/stream_kernels.cu @brief Kernels of the stream and device tests (plain CUDA; also compiles with nvcc).
#include "tests/emulator/stream_kernels.h"

namespace emu_test {
namespace {

// grid-stride; any grid
__global__ void fill_kernel(float* out, int n, float value) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = value;
}

// grid-stride; any grid
__global__ void add_one_kernel(const float* in, float* out, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = in[i] + 1.0f;
}

// grid-stride; any grid
__global__ void scale_padded_kernel(float* out, int n, PaddedArgs a) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    out[i] = static_cast<float>(out[i] * a.scale + a.shift) + (a.add ? 1.0f : 0.0f);
}

// grid-stride; any grid
__global__ void add_one_via_kernel(PointerArgs a, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) a.out[i] = a.in[i] + 1.0f;
}

// one block of 64: thread 0 returns before the barrier the others wait at (a launch failure)
__global__ void faulty_kernel(float* out) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

}  // namespace

void fill(float* out, int n, float value, cudaStream_t stream) {
  ember::cuda::launch(fill_kernel, 4, 128, 0, stream, out, n, value);
}
void add_one(const float* in, float* out, int n, cudaStream_t stream) {
  ember::cuda::launch(add_one_kernel, 4, 128, 0, stream, in, out, n);
}
void scale_padded(float* out, int n, PaddedArgs a, cudaStream_t stream) {
  ember::cuda::launch(scale_padded_kernel, 4, 128, 0, stream, out, n, a);
}
void add_one_via(PointerArgs a, int n, cudaStream_t stream) {
  ember::cuda::launch(add_one_via_kernel, 4, 128, 0, stream, a, n);
}
void faulty(float* out, cudaStream_t stream) { ember::cuda::launch(faulty_kernel, 1, 64, 0, stream, out); }

}  // namespace emu_test
