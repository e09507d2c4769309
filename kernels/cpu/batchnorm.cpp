/// @file kernels/cpu/batchnorm.cpp @brief CPU batch norm (f32, f64): two-pass per-channel statistics and backward sums in double, normalize and dx in the input's type.
#include <cmath>

#include "kernels/batchnorm.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"

namespace ember::kernels::cpu {
namespace {

template <class T>
const T* ptr(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr;
}

/// 1 / sqrt(var + eps) rounded as the CUDA kernels round it (one sqrt, one division, in T).
template <class T>
T invstd_of(T var, double eps) {
  return T(1) / std::sqrt(var + static_cast<T>(eps));
}

/// Calls f(offset) for every value of channel c in (n, s) order.
template <class F>
void for_channel(const BatchNormShape& sh, int64_t c, F&& f) {
  for (int64_t i = 0; i < sh.n; ++i) {
    const int64_t base = (i * sh.c + c) * sh.s;
    for (int64_t j = 0; j < sh.s; ++j) f(base + j);
  }
}

void stats(const Tensor& x, const BatchNormShape& sh, Tensor& mean, Tensor& var) {
  visit_floating(x.dtype(), "batch_norm_stats", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = ptr<T>(x);
    T* mp = static_cast<T*>(mean.data_ptr());
    T* vp = static_cast<T*>(var.data_ptr());
    const double count = static_cast<double>(sh.per_channel());
#pragma omp parallel for if (x.numel() > kParallelThreshold) schedule(static)
    for (int64_t c = 0; c < sh.c; ++c) {
      double s = 0.0;
      for_channel(sh, c, [&](int64_t o) { s += static_cast<double>(xp[o]); });
      const double mu = s / count;
      double m2 = 0.0;
      for_channel(sh, c, [&](int64_t o) {
        const double d = static_cast<double>(xp[o]) - mu;
        m2 += d * d;
      });
      mp[c] = static_cast<T>(mu);
      vp[c] = static_cast<T>(m2 / count);
    }
  });
}

void normalize(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight, const Tensor& bias,
               double eps, const BatchNormShape& sh, Tensor& y) {
  visit_floating(x.dtype(), "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *xp = ptr<T>(x), *mp = ptr<T>(mean), *vp = ptr<T>(var), *wp = ptr<T>(weight), *bp = ptr<T>(bias);
    T* yp = static_cast<T*>(y.data_ptr());
#pragma omp parallel for if (x.numel() > kParallelThreshold) schedule(static)
    for (int64_t p = 0; p < sh.n * sh.c; ++p) {
      const int64_t c = p % sh.c;
      const T mu = mp[c], inv = invstd_of(vp[c], eps), w = wp ? wp[c] : T(1), b = bp ? bp[c] : T(0);
      for (int64_t j = 0; j < sh.s; ++j) {
        const int64_t o = p * sh.s + j;
        yp[o] = std::fma((xp[o] - mu) * inv, w, b);
      }
    }
  });
}

void backward_reduce(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var, double eps,
                     const BatchNormShape& sh, Tensor& sum_dy, Tensor& sum_dy_xhat) {
  visit_floating(x.dtype(), "batch_norm_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *gp = ptr<T>(dy), *xp = ptr<T>(x), *mp = ptr<T>(mean), *vp = ptr<T>(var);
    T* sd = static_cast<T*>(sum_dy.data_ptr());
    T* sdx = static_cast<T*>(sum_dy_xhat.data_ptr());
#pragma omp parallel for if (x.numel() > kParallelThreshold) schedule(static)
    for (int64_t c = 0; c < sh.c; ++c) {
      const T mu = mp[c], inv = invstd_of(vp[c], eps);
      double a = 0.0, b = 0.0;
      for_channel(sh, c, [&](int64_t o) {
        a += static_cast<double>(gp[o]);
        b += static_cast<double>(gp[o]) * static_cast<double>((xp[o] - mu) * inv);
      });
      sd[c] = static_cast<T>(a);
      sdx[c] = static_cast<T>(b);
    }
  });
}

void backward_input(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight,
                    const Tensor& sum_dy, const Tensor& sum_dy_xhat, double eps, bool batch_stats,
                    const BatchNormShape& sh, Tensor& dx) {
  visit_floating(x.dtype(), "batch_norm_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *gp = ptr<T>(dy), *xp = ptr<T>(x), *mp = ptr<T>(mean), *vp = ptr<T>(var), *wp = ptr<T>(weight);
    const T *sd = ptr<T>(sum_dy), *sdx = ptr<T>(sum_dy_xhat);
    T* op = static_cast<T*>(dx.data_ptr());
    const T m = static_cast<T>(sh.per_channel());
#pragma omp parallel for if (x.numel() > kParallelThreshold) schedule(static)
    for (int64_t p = 0; p < sh.n * sh.c; ++p) {
      const int64_t c = p % sh.c;
      const T mu = mp[c], inv = invstd_of(vp[c], eps);
      const T scale = inv * (wp ? wp[c] : T(1));
      const T mean_dy = batch_stats ? sd[c] / m : T(0), mean_dy_xhat = batch_stats ? sdx[c] / m : T(0);
      for (int64_t j = 0; j < sh.s; ++j) {
        const int64_t o = p * sh.s + j;
        if (!batch_stats) {
          op[o] = gp[o] * scale;
          continue;
        }
        const T xhat = (xp[o] - mu) * inv;
        op[o] = std::fma(-xhat, mean_dy_xhat, gp[o] - mean_dy) * scale;
      }
    }
  });
}

void update_running(Tensor& running_mean, Tensor& running_var, Tensor* num_batches_tracked, const Tensor& mean,
                    const Tensor& var, double momentum, double unbias) {
  visit_floating(mean.dtype(), "batch_norm running statistics", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* rm = static_cast<T*>(running_mean.data_ptr());
    T* rv = static_cast<T*>(running_var.data_ptr());
    const T *mp = ptr<T>(mean), *vp = ptr<T>(var);
    const T mom = static_cast<T>(momentum), keep = static_cast<T>(1.0 - momentum), ub = static_cast<T>(unbias);
    for (int64_t c = 0; c < mean.numel(); ++c) {
      rm[c] = std::fma(mom, mp[c], keep * rm[c]);
      rv[c] = std::fma(mom, vp[c] * ub, keep * rv[c]);
    }
  });
  if (num_batches_tracked) ++*static_cast<int64_t*>(num_batches_tracked->data_ptr());
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<BatchNormKernels>(DeviceType::CPU);
  t.stats = stats;
  t.normalize = normalize;
  t.backward_reduce = backward_reduce;
  t.backward_input = backward_input;
  t.update_running = update_running;
});

}  // namespace ember::kernels::cpu
