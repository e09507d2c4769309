/// @file kernels/cpu/dropout.cpp @brief CPU dropout (f32, f64) with the counter-based Philox mask shared with the CUDA kernel.
#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"
#include "kernels/dropout.h"
#include "kernels/philox.h"

namespace ember::kernels::cpu {
namespace {

void dropout(const Tensor& x, Tensor& out, double p, uint64_t seed, uint64_t offset) {
  visit_floating(x.dtype(), "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = static_cast<const T*>(x.data_ptr());
    T* o = static_cast<T*>(out.data_ptr());
    const int64_t n = x.numel();
    // The keep test compares floats exactly as the CUDA kernel does, so both keep the same elements.
    const float pf = static_cast<float>(p);
    const T scale = static_cast<T>(1.0 / (1.0 - p));
#pragma omp parallel for if (n > kParallelThreshold) schedule(static)
    for (int64_t i = 0; i < n; ++i)
      o[i] = philox_uniform(seed, offset, static_cast<uint64_t>(i)) >= pf ? xp[i] * scale : T(0);
  });
}

}  // namespace

const Registrar registrar([] { table_for<DropoutKernels>(DeviceType::CPU).dropout = dropout; });

}  // namespace ember::kernels::cpu
