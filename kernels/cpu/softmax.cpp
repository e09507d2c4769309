/// @file kernels/cpu/softmax.cpp @brief CPU row-wise softmax / log-softmax and the fused causal softmax of attention (max-subtracted, double row sums), forward and backward.
#include <cmath>
#include <vector>

#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"
#include "kernels/softmax.h"

// glibc's libmvec exp (see kernels/cpu/elementwise.cpp): the row's exponentials in vectors.
extern "C" double exp(double) __attribute__((simd("notinbranch")));

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

// Causal softmax: row r of the flattened [rows, T] view is row i = r % T of its T x T matrix; only its
// first i + 1 entries are read, the rest of the output row is written as 0. The same arithmetic as the
// CUDA kernels (kernels/cuda/softmax.cu): z = scale * x rounded to T, then exp(z - max) in double.

void causal_forward(const Tensor& x, Tensor& y, double scale) {
  visit_floating(x.dtype(), "causal_softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t t = x.size(-1), rows = x.numel() / t;
    const T* xp = static_cast<const T*>(x.data_ptr());
    T* yp = static_cast<T*>(y.data_ptr());
    const T sc = static_cast<T>(scale);
#pragma omp parallel if (rows * t > kParallelThreshold)
    {
      std::vector<double> e(static_cast<size_t>(t));  // the row's exponentials, computed once
      double* __restrict__ ep = e.data();
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t n = r % t + 1;  // unmasked: j < n
        const T* xr = xp + r * t;
        T* yr = yp + r * t;
        T mx = sc * xr[0];
        for (int64_t j = 1; j < n; ++j) mx = std::max(mx, sc * xr[j]);
        double s = 0.0;
#pragma omp simd  // exp from libmvec (declared simd above), 8 doubles at a time on AVX-512
        for (int64_t j = 0; j < n; ++j) ep[j] = std::exp(static_cast<double>(sc * xr[j] - mx));
        for (int64_t j = 0; j < n; ++j) s += ep[j];
        for (int64_t j = 0; j < n; ++j) yr[j] = static_cast<T>(ep[j] / s);
        for (int64_t j = n; j < t; ++j) yr[j] = T(0);
      }
    }
  });
}

void causal_backward(const Tensor& y, const Tensor& gy, Tensor& gx, double scale) {
  visit_floating(y.dtype(), "causal_softmax_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t t = y.size(-1), rows = y.numel() / t;
    const T* yp = static_cast<const T*>(y.data_ptr());
    const T* gp = static_cast<const T*>(gy.data_ptr());
    T* o = static_cast<T*>(gx.data_ptr());
    const T sc = static_cast<T>(scale);
#pragma omp parallel for if (rows * t > kParallelThreshold) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r % t + 1;
      const T* yr = yp + r * t;
      const T* gr = gp + r * t;
      T* orow = o + r * t;
      double s = 0.0;
      for (int64_t j = 0; j < n; ++j) s += static_cast<double>(gr[j] * yr[j]);
      const T st = static_cast<T>(s);
      for (int64_t j = 0; j < n; ++j) orow[j] = sc * (yr[j] * (gr[j] - st));
      for (int64_t j = n; j < t; ++j) orow[j] = T(0);
    }
  });
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<SoftmaxKernels>(DeviceType::CPU);
  t.forward = forward;
  t.backward = backward;
  t.causal_forward = causal_forward;
  t.causal_backward = causal_backward;
});

}  // namespace ember::kernels::cpu
