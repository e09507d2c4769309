/// @file kernels/cpu/accumulate.cpp @brief CPU fused accumulate (dst += alpha * src) and multi-tensor scale with sum of squares and non-finite flag.
#include <cmath>

#include "kernels/accumulate.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"

namespace ember::kernels::cpu {
namespace {

template <class T>
void axpy(T* __restrict__ d, const T* __restrict__ s, T alpha, int64_t n) {
#pragma omp parallel for simd if (parallel : n > kParallelThreshold) schedule(static)
  for (int64_t i = 0; i < n; ++i) d[i] += alpha * s[i];
}

void accumulate(Tensor& dst, const Tensor& src, double alpha) {
  visit_floating(dst.dtype(), "accumulate", [&](auto tag) {
    using T = typename decltype(tag)::type;
    axpy(static_cast<T*>(dst.data_ptr()), static_cast<const T*>(src.data_ptr()), static_cast<T>(alpha), dst.numel());
  });
}

void accumulate_many(std::span<Tensor> dsts, std::span<const Tensor> srcs, double alpha) {
  for (size_t i = 0; i < dsts.size(); ++i) accumulate(dsts[i], srcs[i], alpha);
}

void scale_many(std::span<Tensor> ts, double s, Tensor& status) {
  double total = 0.0;
  bool any_bad = false;
  for (Tensor& t : ts) {
    visit_floating(t.dtype(), "scale_many", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* p = static_cast<T*>(t.data_ptr());
      const T sc = static_cast<T>(s);
      const int64_t n = t.numel();
      double sq = 0.0;
      int bad = 0;
#pragma omp parallel for simd if (parallel : n > kParallelThreshold) schedule(static) reduction(+ : sq) reduction(| : bad)
      for (int64_t i = 0; i < n; ++i) {
        const T v = p[i] * sc;
        bad |= !std::isfinite(p[i]);
        p[i] = v;
        sq += static_cast<double>(v) * static_cast<double>(v);
      }
      total += sq;
      any_bad = any_bad || bad != 0;
    });
  }
  double* st = static_cast<double*>(status.data_ptr());
  st[kStatusSumSquares] = total;
  st[kStatusNonFinite] = any_bad ? 1.0 : 0.0;
}

void add_to_status(Tensor& status, int64_t slot, const Tensor& x, double alpha) {
  const double v = x.dtype() == DType::f32 ? static_cast<double>(*static_cast<const float*>(x.data_ptr()))
                                           : *static_cast<const double*>(x.data_ptr());
  static_cast<double*>(status.data_ptr())[slot] += v * alpha;
}

void zero_status(Tensor& status) {
  double* st = static_cast<double*>(status.data_ptr());
  for (int64_t i = 0; i < kStatusSize; ++i) st[i] = 0.0;
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<AccumulateKernels>(DeviceType::CPU);
  t.accumulate = accumulate;
  t.accumulate_many = accumulate_many;
  t.scale_many = scale_many;
  t.add_to_status = add_to_status;
  t.zero_status = zero_status;
});

}  // namespace ember::kernels::cpu
