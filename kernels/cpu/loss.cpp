/// @file kernels/cpu/loss.cpp @brief CPU fused cross-entropy (f32, f64): per-row log-sum-exp in double, loss and gradient in one pass each.
#include <cmath>

#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"
#include "kernels/loss.h"

namespace ember::kernels::cpu {
namespace {

int64_t cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse) {
  return visit_floating(logits.dtype(), "cross_entropy", [&](auto tag) -> int64_t {
    using T = typename decltype(tag)::type;
    const int64_t n = logits.size(0), c = logits.size(1);
    const T* xp = static_cast<const T*>(logits.data_ptr());
    const int64_t* tp = static_cast<const int64_t*>(targets.data_ptr());
    T* lp = static_cast<T*>(losses.data_ptr());
    T* sp = static_cast<T*>(lse.data_ptr());
    int64_t bad = 0;
#pragma omp parallel for if (n * c > kParallelThreshold) schedule(static) reduction(+ : bad)
    for (int64_t r = 0; r < n; ++r) {
      const T* xr = xp + r * c;
      T mx = xr[0];
      for (int64_t j = 1; j < c; ++j) mx = xr[j] > mx || std::isnan(xr[j]) ? xr[j] : mx;
      double s = 0.0;
      for (int64_t j = 0; j < c; ++j) s += std::exp(static_cast<double>(xr[j]) - static_cast<double>(mx));
      const double l = static_cast<double>(mx) + std::log(s);
      sp[r] = static_cast<T>(l);
      const int64_t t = tp[r];
      if (t < 0 || t >= c) {
        ++bad;
        lp[r] = static_cast<T>(NAN);
      } else {
        lp[r] = static_cast<T>(l - static_cast<double>(xr[t]));
      }
    }
    return bad;
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& grad_losses,
                            Tensor& grad_logits) {
  visit_floating(logits.dtype(), "cross_entropy_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t n = logits.size(0), c = logits.size(1);
    const T* xp = static_cast<const T*>(logits.data_ptr());
    const int64_t* tp = static_cast<const int64_t*>(targets.data_ptr());
    const T* sp = static_cast<const T*>(lse.data_ptr());
    const T* gp = static_cast<const T*>(grad_losses.data_ptr());
    T* op = static_cast<T*>(grad_logits.data_ptr());
#pragma omp parallel for if (n * c > kParallelThreshold) schedule(static)
    for (int64_t r = 0; r < n; ++r) {
      const T* xr = xp + r * c;
      T* orow = op + r * c;
      for (int64_t j = 0; j < c; ++j) {
        const T p = std::exp(xr[j] - sp[r]);
        orow[j] = (j == tp[r] ? p - T(1) : p) * gp[r];
      }
    }
  });
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<LossKernels>(DeviceType::CPU);
  t.cross_entropy_forward = cross_entropy_forward;
  t.cross_entropy_backward = cross_entropy_backward;
});

}  // namespace ember::kernels::cpu
