/// @file kernels/cpu/loss.cpp @brief CPU fused cross-entropy (f32, f64): per-row log-sum-exp in double, loss (ignore_index, label smoothing) and gradient in one pass each; the count of non-ignored targets.
#include <cmath>

#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"
#include "kernels/loss.h"

namespace ember::kernels::cpu {
namespace {

int64_t cross_entropy_forward(const Tensor& logits, const Tensor& targets, const CrossEntropyParams& p, Tensor& losses,
                              Tensor& lse) {
  return visit_floating(logits.dtype(), "cross_entropy", [&](auto tag) -> int64_t {
    using T = typename decltype(tag)::type;
    const int64_t n = logits.size(0), c = logits.size(1);
    const T* xp = static_cast<const T*>(logits.data_ptr());
    const int64_t* tp = static_cast<const int64_t*>(targets.data_ptr());
    T* lp = static_cast<T*>(losses.data_ptr());
    T* sp = static_cast<T*>(lse.data_ptr());
    const double eps = p.label_smoothing;
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
      if (t == p.ignore_index) {
        lp[r] = T(0);
      } else if (t < 0 || t >= c) {
        ++bad;
        lp[r] = static_cast<T>(NAN);
      } else if (eps == 0.0) {
        lp[r] = static_cast<T>(l - static_cast<double>(xr[t]));
      } else {  // mean_j(-log p_j) = lse - mean_j x_j
        double sx = 0.0;
        for (int64_t j = 0; j < c; ++j) sx += static_cast<double>(xr[j]);
        const double smooth = l - sx / static_cast<double>(c);
        lp[r] = static_cast<T>((1.0 - eps) * (l - static_cast<double>(xr[t])) + eps * smooth);
      }
    }
    return bad;
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& grad_losses,
                            const CrossEntropyParams& p, Tensor& grad_logits) {
  visit_floating(logits.dtype(), "cross_entropy_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t n = logits.size(0), c = logits.size(1);
    const T* xp = static_cast<const T*>(logits.data_ptr());
    const int64_t* tp = static_cast<const int64_t*>(targets.data_ptr());
    const T* sp = static_cast<const T*>(lse.data_ptr());
    const T* gp = static_cast<const T*>(grad_losses.data_ptr());
    T* op = static_cast<T*>(grad_logits.data_ptr());
    const T on = static_cast<T>(p.on_target(c)), off = static_cast<T>(p.off_target(c));
#pragma omp parallel for if (n * c > kParallelThreshold) schedule(static)
    for (int64_t r = 0; r < n; ++r) {
      const T* xr = xp + r * c;
      T* orow = op + r * c;
      if (tp[r] == p.ignore_index) {
        for (int64_t j = 0; j < c; ++j) orow[j] = T(0);
        continue;
      }
      for (int64_t j = 0; j < c; ++j) {
        const T pj = std::exp(xr[j] - sp[r]);
        orow[j] = (pj - (j == tp[r] ? on : off)) * gp[r];
      }
    }
  });
}

void count_not_ignored(const Tensor& targets, int64_t ignore_index, Tensor& count) {
  const int64_t* tp = static_cast<const int64_t*>(targets.data_ptr());
  int64_t kept = 0;
  for (int64_t i = 0; i < targets.numel(); ++i) kept += tp[i] != ignore_index;
  *static_cast<int64_t*>(count.data_ptr()) = kept;
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<LossKernels>(DeviceType::CPU);
  t.cross_entropy_forward = cross_entropy_forward;
  t.cross_entropy_backward = cross_entropy_backward;
  t.count_not_ignored = count_not_ignored;
});

}  // namespace ember::kernels::cpu
