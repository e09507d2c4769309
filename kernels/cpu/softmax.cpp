/// @file kernels/cpu/softmax.cpp @brief CPU row-wise softmax / log-softmax (max-subtracted, double row sums) and backward.
#include <cmath>

#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"
#include "kernels/softmax.h"

namespace ember::kernels::cpu {
namespace {

void forward(const Tensor& x, Tensor& y, bool log) {
  visit_floating(x.dtype(), "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t n = x.size(-1), rows = x.numel() / n;
    const T* xp = static_cast<const T*>(x.data_ptr());
    T* yp = static_cast<T*>(y.data_ptr());
#pragma omp parallel for if (rows * n > kParallelThreshold) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = xp + r * n;
      T* yr = yp + r * n;
      T mx = xr[0];
      for (int64_t j = 1; j < n; ++j) mx = std::max(mx, xr[j]);
      double s = 0.0;
      for (int64_t j = 0; j < n; ++j) s += std::exp(static_cast<double>(xr[j] - mx));
      if (log) {
        const T lse = static_cast<T>(std::log(s));
        for (int64_t j = 0; j < n; ++j) yr[j] = xr[j] - mx - lse;
      } else {
        for (int64_t j = 0; j < n; ++j) yr[j] = static_cast<T>(std::exp(static_cast<double>(xr[j] - mx)) / s);
      }
    }
  });
}

void backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) {
  visit_floating(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t n = y.size(-1), rows = y.numel() / n;
    const T* yp = static_cast<const T*>(y.data_ptr());
    const T* gp = static_cast<const T*>(gy.data_ptr());
    T* o = static_cast<T*>(gx.data_ptr());
#pragma omp parallel for if (rows * n > kParallelThreshold) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* yr = yp + r * n;
      const T* gr = gp + r * n;
      T* orow = o + r * n;
      double s = 0.0;
      for (int64_t j = 0; j < n; ++j) s += log ? static_cast<double>(gr[j]) : static_cast<double>(gr[j] * yr[j]);
      const T st = static_cast<T>(s);
      for (int64_t j = 0; j < n; ++j) orow[j] = log ? gr[j] - std::exp(yr[j]) * st : yr[j] * (gr[j] - st);
    }
  });
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<SoftmaxKernels>(DeviceType::CPU);
  t.forward = forward;
  t.backward = backward;
});

}  // namespace ember::kernels::cpu
