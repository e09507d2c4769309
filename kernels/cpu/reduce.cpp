/// @file kernels/cpu/reduce.cpp @brief CPU reductions over the middle axis of [outer, K, inner] (sum in double accumulators, max/argmax).
#include <cmath>

#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"
#include "kernels/reduce.h"

namespace ember::kernels::cpu {
namespace {

void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t k, int64_t inner, double scale, Tensor& out,
            Tensor* indices) {
  visit_floating(x.dtype(), "reduce", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = static_cast<const T*>(x.data_ptr());
    T* o = static_cast<T*>(out.data_ptr());
    int64_t* idx = indices ? static_cast<int64_t*>(indices->data_ptr()) : nullptr;
    const int64_t n = outer * inner;
#pragma omp parallel for if (n * k > kParallelThreshold) schedule(static)
    for (int64_t oi = 0; oi < n; ++oi) {
      const int64_t o_ = oi / inner, i_ = oi % inner;
      const T* base = xp + o_ * k * inner + i_;
      if (op == ReduceOp::Sum) {
        double acc = 0.0;  // double accumulation: the CPU reference is the accurate one
        for (int64_t j = 0; j < k; ++j) acc += static_cast<double>(base[j * inner]);
        o[oi] = static_cast<T>(acc * scale);
      } else {
        T best = base[0];
        int64_t arg = 0;
        for (int64_t j = 1; j < k; ++j) {
          const T v = base[j * inner];
          if (std::isnan(best)) break;
          if (v > best || std::isnan(v)) {
            best = v;
            arg = j;
          }
        }
        o[oi] = best;
        if (idx) idx[oi] = arg;
      }
    }
  });
}

void max_backward(const Tensor& gy, const Tensor& indices, int64_t outer, int64_t k, int64_t inner, Tensor& gx) {
  visit_floating(gy.dtype(), "max_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* g = static_cast<const T*>(gy.data_ptr());
    const int64_t* idx = static_cast<const int64_t*>(indices.data_ptr());
    T* o = static_cast<T*>(gx.data_ptr());
    for (int64_t oi = 0; oi < outer * inner; ++oi) {
      const int64_t o_ = oi / inner, i_ = oi % inner;
      o[(o_ * k + idx[oi]) * inner + i_] = g[oi];
    }
  });
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<ReduceKernels>(DeviceType::CPU);
  t.reduce = reduce;
  t.max_backward = max_backward;
});

}  // namespace ember::kernels::cpu
