/// @file kernels/cpu/batchnorm.cpp @brief CPU batch norm (f32, f64): two-pass per-channel statistics and backward sums in double, normalize and dx in the input's type (FMA-hardware and [N, C] fast paths).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/batchnorm.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"

namespace ember::kernels::cpu {
namespace {

/// 1 / sqrt(var + eps) rounded as the CUDA kernels round it (one sqrt, one division, in T).
template <class T>
T invstd_of(T var, double eps) {
  return T(1) / std::sqrt(var + static_cast<T>(eps));
}

/// The elementwise rows of normalize and backward_input (s contiguous values of one (sample, channel)).
/// std::fma without FMA hardware is a libm call per element; on CPUs that have it the *_fma versions
/// below run the same code compiled for AVX2 + FMA (the fused multiply-add is exact either way, so both
/// give the same bits; the expressions have no a * b + c for the compiler to contract).
template <class T>
inline void normalize_row(const T* __restrict__ x, T* __restrict__ y, int64_t s, T mu, T inv, T w, T b) {
  for (int64_t j = 0; j < s; ++j) y[j] = std::fma((x[j] - mu) * inv, w, b);
}

template <class T>
inline void backward_row(const T* __restrict__ dy, const T* __restrict__ x, T* __restrict__ dx, int64_t s, T mu,
                         T inv, T scale, T mean_dy, T mean_dy_xhat) {
  for (int64_t j = 0; j < s; ++j) {
    const T xhat = (x[j] - mu) * inv;
    dx[j] = std::fma(-xhat, mean_dy_xhat, dy[j] - mean_dy) * scale;
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
template <class T>
__attribute__((target("avx2,fma"))) void normalize_row_fma(const T* __restrict__ x, T* __restrict__ y, int64_t s,
                                                           T mu, T inv, T w, T b) {
  normalize_row(x, y, s, mu, inv, w, b);
}
template <class T>
__attribute__((target("avx2,fma"))) void backward_row_fma(const T* __restrict__ dy, const T* __restrict__ x,
                                                          T* __restrict__ dx, int64_t s, T mu, T inv, T scale,
                                                          T mean_dy, T mean_dy_xhat) {
  backward_row(dy, x, dx, s, mu, inv, scale, mean_dy, mean_dy_xhat);
}
const bool kHasFma = has_avx2_fma();
#else
template <class T>
void normalize_row_fma(const T* x, T* y, int64_t s, T mu, T inv, T w, T b) {
  normalize_row(x, y, s, mu, inv, w, b);
}
template <class T>
void backward_row_fma(const T* dy, const T* x, T* dx, int64_t s, T mu, T inv, T scale, T mean_dy, T mean_dy_xhat) {
  backward_row(dy, x, dx, s, mu, inv, scale, mean_dy, mean_dy_xhat);
}
const bool kHasFma = false;
#endif

/// BatchNorm1d on [N, C] (s == 1): the channels of a sample are contiguous, so the loops run over c
/// with per-channel arrays (vectorizable) instead of over n with stride C. Same per-element expressions
/// and, for the sums, the same order (samples ascending) as the general path.
template <class T>
inline void normalize_channels(const T* __restrict__ x, T* __restrict__ y, int64_t c, const T* mu, const T* inv,
                               const T* w, const T* b) {
  for (int64_t j = 0; j < c; ++j) y[j] = std::fma((x[j] - mu[j]) * inv[j], w[j], b[j]);
}

template <class T>
inline void backward_channels(const T* __restrict__ dy, const T* __restrict__ x, T* __restrict__ dx, int64_t c,
                              const T* mu, const T* inv, const T* scale, const T* mean_dy, const T* mean_dy_xhat) {
  for (int64_t j = 0; j < c; ++j) {
    const T xhat = (x[j] - mu[j]) * inv[j];
    dx[j] = std::fma(-xhat, mean_dy_xhat[j], dy[j] - mean_dy[j]) * scale[j];
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
template <class T>
__attribute__((target("avx2,fma"))) void normalize_channels_fma(const T* __restrict__ x, T* __restrict__ y, int64_t c,
                                                                const T* mu, const T* inv, const T* w, const T* b) {
  normalize_channels(x, y, c, mu, inv, w, b);
}
template <class T>
__attribute__((target("avx2,fma"))) void backward_channels_fma(const T* __restrict__ dy, const T* __restrict__ x,
                                                               T* __restrict__ dx, int64_t c, const T* mu,
                                                               const T* inv, const T* scale, const T* mean_dy,
                                                               const T* mean_dy_xhat) {
  backward_channels(dy, x, dx, c, mu, inv, scale, mean_dy, mean_dy_xhat);
}
#else
template <class T>
void normalize_channels_fma(const T* x, T* y, int64_t c, const T* mu, const T* inv, const T* w, const T* b) {
  normalize_channels(x, y, c, mu, inv, w, b);
}
template <class T>
void backward_channels_fma(const T* dy, const T* x, T* dx, int64_t c, const T* mu, const T* inv, const T* scale,
                           const T* mean_dy, const T* mean_dy_xhat) {
  backward_channels(dy, x, dx, c, mu, inv, scale, mean_dy, mean_dy_xhat);
}
#endif

/// The row reductions of the per-channel statistics and backward sums (s contiguous values of one
/// (sample, channel)), in double: Σ x, Σ (x - mu)^2, and Σ dy with Σ dy * xhat. Compiled for AVX-512
/// (8 doubles per vector) and the baseline (2); the simd partial sums follow the vector width, so the
/// double sums may differ in their last bits between the two (the float results almost never do).
#define EMBER_BN_ROW_SUMS(suffix, target)                                                                   \
  template <class T>                                                                                       \
  target double row_sum_##suffix(const T* __restrict__ r, int64_t n) {                                     \
    double s = 0.0;                                                                                        \
    _Pragma("omp simd reduction(+ : s)") for (int64_t j = 0; j < n; ++j) s += static_cast<double>(r[j]);   \
    return s;                                                                                              \
  }                                                                                                        \
  template <class T>                                                                                       \
  target double row_m2_##suffix(const T* __restrict__ r, int64_t n, double mu) {                           \
    double m2 = 0.0;                                                                                       \
    _Pragma("omp simd reduction(+ : m2)") for (int64_t j = 0; j < n; ++j) {                                \
      const double d = static_cast<double>(r[j]) - mu;                                                     \
      m2 += d * d;                                                                                         \
    }                                                                                                      \
    return m2;                                                                                             \
  }                                                                                                        \
  template <class T>                                                                                       \
  target void row_dy_xhat_##suffix(const T* __restrict__ g, const T* __restrict__ x, int64_t n, T mu, T inv, \
                                   double& sum_dy, double& sum_dy_xhat) {                                  \
    double a = 0.0, b = 0.0;                                                                               \
    _Pragma("omp simd reduction(+ : a, b)") for (int64_t j = 0; j < n; ++j) {                              \
      a += static_cast<double>(g[j]);                                                                      \
      b += static_cast<double>(g[j]) * static_cast<double>((x[j] - mu) * inv);                             \
    }                                                                                                      \
    sum_dy += a;                                                                                           \
    sum_dy_xhat += b;                                                                                      \
  }
EMBER_BN_ROW_SUMS(base, )
#if defined(__x86_64__) && defined(__GNUC__)
EMBER_BN_ROW_SUMS(avx512, __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"), optimize("fp-contract=off"))))
const bool kHasAvx512 = has_avx512();
#else
const bool kHasAvx512 = false;
#endif
#undef EMBER_BN_ROW_SUMS

template <class T>
double row_sum(const T* r, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHasAvx512) return row_sum_avx512(r, n);
#endif
  return row_sum_base(r, n);
}
template <class T>
double row_m2(const T* r, int64_t n, double mu) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHasAvx512) return row_m2_avx512(r, n, mu);
#endif
  return row_m2_base(r, n, mu);
}
template <class T>
void row_dy_xhat(const T* g, const T* x, int64_t n, T mu, T inv, double& a, double& b) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHasAvx512) return row_dy_xhat_avx512(g, x, n, mu, inv, a, b);
#endif
  row_dy_xhat_base(g, x, n, mu, inv, a, b);
}

/// Channels per block of the [N, C] reductions (one block per OpenMP iteration, all samples).
constexpr int64_t kChannelBlock = 64;

void stats(const Tensor& x, const BatchNormShape& sh, Tensor& mean, Tensor& var) {
  visit_floating(x.dtype(), "batch_norm_stats", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = data_as<const T>(x);
    T* mp = static_cast<T*>(mean.data_ptr());
    T* vp = static_cast<T*>(var.data_ptr());
    const double count = static_cast<double>(sh.per_channel());
    if (sh.s == 1) {
      const int64_t blocks = (sh.c + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for if (x.numel() > kParallelThreshold) schedule(static)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t c0 = blk * kChannelBlock, nc = std::min(kChannelBlock, sh.c - c0);
        double sum[kChannelBlock] = {}, m2[kChannelBlock] = {};
        for (int64_t i = 0; i < sh.n; ++i)
          for (int64_t j = 0; j < nc; ++j) sum[j] += static_cast<double>(xp[i * sh.c + c0 + j]);
        for (int64_t j = 0; j < nc; ++j) sum[j] /= count;
        for (int64_t i = 0; i < sh.n; ++i)
          for (int64_t j = 0; j < nc; ++j) {
            const double d = static_cast<double>(xp[i * sh.c + c0 + j]) - sum[j];
            m2[j] += d * d;
          }
        for (int64_t j = 0; j < nc; ++j) {
          mp[c0 + j] = static_cast<T>(sum[j]);
          vp[c0 + j] = static_cast<T>(m2[j] / count);
        }
      }
      return;
    }
#pragma omp parallel for if (x.numel() > kParallelThreshold) schedule(static)
    for (int64_t c = 0; c < sh.c; ++c) {
      // Two passes in double; each row's values are added in a fixed (vector-width) order.
      double s = 0.0;
      for (int64_t i = 0; i < sh.n; ++i) s += row_sum(xp + (i * sh.c + c) * sh.s, sh.s);
      const double mu = s / count;
      double m2 = 0.0;
      for (int64_t i = 0; i < sh.n; ++i) m2 += row_m2(xp + (i * sh.c + c) * sh.s, sh.s, mu);
      mp[c] = static_cast<T>(mu);
      vp[c] = static_cast<T>(m2 / count);
    }
  });
}

void normalize(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight, const Tensor& bias,
               double eps, const BatchNormShape& sh, Tensor& y) {
  visit_floating(x.dtype(), "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = data_as<const T>(x);
    const T* mp = data_as<const T>(mean);
    const T* vp = data_as<const T>(var);
    const T* wp = data_as<const T>(weight);
    const T* bp = data_as<const T>(bias);
    T* yp = static_cast<T*>(y.data_ptr());
    if (sh.s == 1) {
      std::vector<T> inv(static_cast<size_t>(sh.c)), w(inv.size()), b(inv.size());
      for (int64_t c = 0; c < sh.c; ++c) {
        inv[size_t(c)] = invstd_of(vp[c], eps);
        w[size_t(c)] = wp ? wp[c] : T(1);
        b[size_t(c)] = bp ? bp[c] : T(0);
      }
#pragma omp parallel for if (x.numel() > kParallelThreshold) schedule(static)
      for (int64_t i = 0; i < sh.n; ++i) {
        if (kHasFma)
          normalize_channels_fma(xp + i * sh.c, yp + i * sh.c, sh.c, mp, inv.data(), w.data(), b.data());
        else
          normalize_channels(xp + i * sh.c, yp + i * sh.c, sh.c, mp, inv.data(), w.data(), b.data());
      }
      return;
    }
#pragma omp parallel for if (x.numel() > kParallelThreshold) schedule(static)
    for (int64_t p = 0; p < sh.n * sh.c; ++p) {
      const int64_t c = p % sh.c;
      const T mu = mp[c], inv = invstd_of(vp[c], eps), w = wp ? wp[c] : T(1), b = bp ? bp[c] : T(0);
      const int64_t o = p * sh.s;
      if (kHasFma)
        normalize_row_fma(xp + o, yp + o, sh.s, mu, inv, w, b);
      else
        normalize_row(xp + o, yp + o, sh.s, mu, inv, w, b);
    }
  });
}

void backward_reduce(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& var, double eps,
                     const BatchNormShape& sh, Tensor& sum_dy, Tensor& sum_dy_xhat) {
  visit_floating(x.dtype(), "batch_norm_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* gp = data_as<const T>(dy);
    const T* xp = data_as<const T>(x);
    const T* mp = data_as<const T>(mean);
    const T* vp = data_as<const T>(var);
    T* sd = static_cast<T*>(sum_dy.data_ptr());
    T* sdx = static_cast<T*>(sum_dy_xhat.data_ptr());
    if (sh.s == 1) {
      const int64_t blocks = (sh.c + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for if (x.numel() > kParallelThreshold) schedule(static)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t c0 = blk * kChannelBlock, nc = std::min(kChannelBlock, sh.c - c0);
        T mu[kChannelBlock], inv[kChannelBlock];
        double a[kChannelBlock] = {}, b[kChannelBlock] = {};
        for (int64_t j = 0; j < nc; ++j) {
          mu[j] = mp[c0 + j];
          inv[j] = invstd_of(vp[c0 + j], eps);
        }
        for (int64_t i = 0; i < sh.n; ++i) {
          const T* g = gp + i * sh.c + c0;
          const T* xr = xp + i * sh.c + c0;
          for (int64_t j = 0; j < nc; ++j) {
            a[j] += static_cast<double>(g[j]);
            b[j] += static_cast<double>(g[j]) * static_cast<double>((xr[j] - mu[j]) * inv[j]);
          }
        }
        for (int64_t j = 0; j < nc; ++j) {
          sd[c0 + j] = static_cast<T>(a[j]);
          sdx[c0 + j] = static_cast<T>(b[j]);
        }
      }
      return;
    }
#pragma omp parallel for if (x.numel() > kParallelThreshold) schedule(static)
    for (int64_t c = 0; c < sh.c; ++c) {
      const T mu = mp[c], inv = invstd_of(vp[c], eps);
      double a = 0.0, b = 0.0;
      for (int64_t i = 0; i < sh.n; ++i) {
        const int64_t base = (i * sh.c + c) * sh.s;
        row_dy_xhat(gp + base, xp + base, sh.s, mu, inv, a, b);
      }
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
    const T* gp = data_as<const T>(dy);
    const T* xp = data_as<const T>(x);
    const T* mp = data_as<const T>(mean);
    const T* vp = data_as<const T>(var);
    const T* wp = data_as<const T>(weight);
    const T *sd = data_as<const T>(sum_dy), *sdx = data_as<const T>(sum_dy_xhat);
    T* op = static_cast<T*>(dx.data_ptr());
    const T m = static_cast<T>(sh.per_channel());
    if (sh.s == 1) {
      const size_t nc = static_cast<size_t>(sh.c);
      std::vector<T> inv(nc), scale(nc), mean_dy(nc), mean_dy_xhat(nc);
      for (int64_t c = 0; c < sh.c; ++c) {
        inv[size_t(c)] = invstd_of(vp[c], eps);
        scale[size_t(c)] = inv[size_t(c)] * (wp ? wp[c] : T(1));
        mean_dy[size_t(c)] = batch_stats ? sd[c] / m : T(0);
        mean_dy_xhat[size_t(c)] = batch_stats ? sdx[c] / m : T(0);
      }
#pragma omp parallel for if (x.numel() > kParallelThreshold) schedule(static)
      for (int64_t i = 0; i < sh.n; ++i) {
        const int64_t o = i * sh.c;
        if (!batch_stats)
          for (int64_t j = 0; j < sh.c; ++j) op[o + j] = gp[o + j] * scale[size_t(j)];
        else if (kHasFma)
          backward_channels_fma(gp + o, xp + o, op + o, sh.c, mp, inv.data(), scale.data(), mean_dy.data(),
                                mean_dy_xhat.data());
        else
          backward_channels(gp + o, xp + o, op + o, sh.c, mp, inv.data(), scale.data(), mean_dy.data(),
                            mean_dy_xhat.data());
      }
      return;
    }
#pragma omp parallel for if (x.numel() > kParallelThreshold) schedule(static)
    for (int64_t p = 0; p < sh.n * sh.c; ++p) {
      const int64_t c = p % sh.c;
      const T mu = mp[c], inv = invstd_of(vp[c], eps);
      const T scale = inv * (wp ? wp[c] : T(1));
      const T mean_dy = batch_stats ? sd[c] / m : T(0), mean_dy_xhat = batch_stats ? sdx[c] / m : T(0);
      const int64_t o = p * sh.s;
      if (!batch_stats)
        for (int64_t j = 0; j < sh.s; ++j) op[o + j] = gp[o + j] * scale;
      else if (kHasFma)
        backward_row_fma(gp + o, xp + o, op + o, sh.s, mu, inv, scale, mean_dy, mean_dy_xhat);
      else
        backward_row(gp + o, xp + o, op + o, sh.s, mu, inv, scale, mean_dy, mean_dy_xhat);
    }
  });
}

void update_running(Tensor& running_mean, Tensor& running_var, Tensor* num_batches_tracked, const Tensor& mean,
                    const Tensor& var, double momentum, double unbias) {
  if (momentum == kCumulativeMomentum)
    momentum = 1.0 / (static_cast<double>(*static_cast<const int64_t*>(num_batches_tracked->data_ptr())) + 1.0);
  visit_floating(mean.dtype(), "batch_norm running statistics", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* rm = static_cast<T*>(running_mean.data_ptr());
    T* rv = static_cast<T*>(running_var.data_ptr());
    const T *mp = data_as<const T>(mean), *vp = data_as<const T>(var);
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
