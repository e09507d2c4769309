/// @file kernels/cpu/random.cpp @brief CPU counter-based random fills (same Philox stream as the CUDA kernel).
#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"
#include "kernels/philox.h"
#include "kernels/random.h"

namespace ember::kernels::cpu {
namespace {

void fill_random(Tensor& out, Distribution dist, double a, double b, uint64_t seed, uint64_t offset) {
  visit_floating(out.dtype(), "fill_random", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = static_cast<T*>(out.data_ptr());
    const int64_t n = out.numel();
    const float fa = static_cast<float>(a), fb = static_cast<float>(b);
#pragma omp parallel for if (n > kParallelThreshold) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t u = static_cast<uint64_t>(i);
      // Computed in float exactly as the CUDA kernel does, so both backends agree bit for bit.
      const float v = dist == Distribution::Uniform ? fa + (fb - fa) * philox_uniform(seed, offset, u)
                                                    : fa + fb * philox_normal(seed, offset, u);
      o[i] = static_cast<T>(v);
    }
  });
}

}  // namespace

const Registrar registrar([] { table_for<RandomKernels>(DeviceType::CPU).fill_random = fill_random; });

}  // namespace ember::kernels::cpu
