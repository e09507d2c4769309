/// @file kernels/cuda/random.cu @brief CUDA counter-based random fill (Philox4x32-10): the same numbers as the CPU backend for the same (seed, offset).
//
// Element i is a pure function of (seed, offset + i) (kernels/philox.h), computed in float with the
// CPU backend's expression (a + (b - a) * u, a + b * z) and the product rounded on its own, so nvcc
// cannot fuse it into an FMA the CPU does not use. Emulated, the numbers equal the CPU's bit for bit;
// on a GPU uniform draws are bitwise equal too, normal draws agree within 1 float ulp (the Box-Muller
// log/sin/cos in double may differ by a double ulp from glibc, which can flip a float rounding).
#include "kernels/cuda/common.cuh"
#include "kernels/dispatch.h"
#include "kernels/philox.h"
#include "kernels/random.h"

namespace ember::kernels::cuda_backend {
namespace {

constexpr unsigned kThreads = 256;

// ---------------------------------------------------------------------------------------- kernels

/// out[i] = a + (b - a) * uniform(seed, offset + i)  or  a + b * normal(seed, offset + i).
/// Grid-stride, grid min(ceil(n/256), 8 per SM) x 256 threads, no shared memory. Bytes: 4n written
/// (Philox is 10 rounds of integer math per 4 draws: compute-light next to the store).
__global__ void fill_random_kernel(float* out, Distribution dist, float a, float b, uint64_t seed, uint64_t offset,
                                   int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint64_t u = static_cast<uint64_t>(i);
    out[i] = dist == Distribution::Uniform ? a + __fmul_rn(b - a, philox_uniform(seed, offset, u))
                                           : a + __fmul_rn(b, philox_normal(seed, offset, u));
  }
}

// -------------------------------------------------------------------------------------- launchers

void fill_random(Tensor& out, Distribution dist, double a, double b, uint64_t seed, uint64_t offset) {
  EMBER_CHECK(out.dtype() == DType::f32, "fill_random: the CUDA backend computes in f32 only, got ", describe(out));
  const int64_t n = out.numel();
  ember::cuda::launch(fill_random_kernel, ember::cuda::grid_for(n, kThreads), kThreads, 0, ember::cuda::stream(),
                      static_cast<float*>(out.data_ptr()), dist, static_cast<float>(a), static_cast<float>(b), seed,
                      offset, n);
  EMBER_CUDA_CHECK_LAUNCH("fill_random_kernel");
}

}  // namespace

const Registrar registrar([] { table_for<RandomKernels>(DeviceType::CUDA).fill_random = fill_random; });

}  // namespace ember::kernels::cuda_backend
