/// @file kernels/cpu/layernorm.cpp @brief CPU layer norm (f32, f64): one-pass lane-wise Welford row statistics in double, fused normalize; backward with per-row sums in double and dweight/dbias from fixed row-chunk partials added in chunk order.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"
#include "kernels/layernorm.h"

namespace ember::kernels::cpu {
namespace {

/// Running (count, mean, M2) in double.
struct Moments {
  double count = 0.0, mean = 0.0, m2 = 0.0;
};

/// Chan et al.'s merge: the moments of the union of two disjoint sets.
inline Moments merge(Moments a, const Moments& b) {
  if (b.count == 0.0) return a;
  if (a.count == 0.0) return b;
  const double n = a.count + b.count, delta = b.mean - a.mean, wb = b.count / n;
  return Moments{n, a.mean + delta * wb, a.m2 + b.m2 + delta * delta * a.count * wb};
}

/// Lanes of the row statistics: value j goes to lane j % kLanes (a Welford update per lane, all lanes
/// with the same count, so the 1 / count is shared and the lane loop vectorizes), then the lanes are
/// merged in lane order and the n % kLanes tail values are added one by one. One pass over the row.
constexpr int64_t kLanes = 8;

template <class T>
Moments row_moments(const T* __restrict__ x, int64_t n) {
  double mean[kLanes] = {}, m2[kLanes] = {};
  const int64_t steps = n / kLanes;
  for (int64_t k = 0; k < steps; ++k) {
    const double inv = 1.0 / static_cast<double>(k + 1);
    const T* p = x + k * kLanes;
#pragma omp simd
    for (int64_t l = 0; l < kLanes; ++l) {
      const double v = static_cast<double>(p[l]);
      const double d = v - mean[l];
      mean[l] += d * inv;
      m2[l] += d * (v - mean[l]);
    }
  }
  Moments m;
  for (int64_t l = 0; l < kLanes; ++l) m = merge(m, Moments{static_cast<double>(steps), mean[l], m2[l]});
  for (int64_t j = steps * kLanes; j < n; ++j) {  // Welford's update for the tail
    const double v = static_cast<double>(x[j]);
    m.count += 1.0;
    const double d = v - m.mean;
    m.mean += d / m.count;
    m.m2 += d * (v - m.mean);
  }
  return m;
}

/// y = fma((x - mu) * rs, w, b) over one row (w/b null: 1/0). std::fma without FMA hardware is a libm
/// call per element; where the CPU has it the *_fma versions run the same code compiled for AVX2 + FMA
/// (the fused multiply-add is exact either way, so both give the same bits; the expressions hold no
/// a * b + c for the compiler to contract).
template <class T>
inline void normalize_row(const T* __restrict__ x, const T* w, const T* b, T* __restrict__ y, int64_t n, T mu, T rs) {
  if (w && b)
    for (int64_t j = 0; j < n; ++j) y[j] = std::fma((x[j] - mu) * rs, w[j], b[j]);
  else
    for (int64_t j = 0; j < n; ++j) y[j] = std::fma((x[j] - mu) * rs, w ? w[j] : T(1), b ? b[j] : T(0));
}

/// dx = fma(-xhat, c2, g - c1) * rs over one row, with g = dy * w and xhat = (x - mu) * rs.
template <class T>
inline void dx_row(const T* __restrict__ dy, const T* __restrict__ x, const T* w, T* __restrict__ dx, int64_t n, T mu,
                   T rs, T c1, T c2) {
  for (int64_t j = 0; j < n; ++j) {
    const T g = w ? dy[j] * w[j] : dy[j];
    const T xhat = (x[j] - mu) * rs;
    dx[j] = std::fma(-xhat, c2, g - c1) * rs;
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
// Compiled for FMA hardware, GCC would also contract dy * w - c1 into one FMA (it forms FMAs across
// statements), which the CUDA kernel does not do (__fmul_rn): contraction stays off here.
#define EMBER_LN_FMA_TARGET __attribute__((target("avx2,fma"), optimize("fp-contract=off")))
template <class T>
EMBER_LN_FMA_TARGET void normalize_row_fma(const T* __restrict__ x, const T* w, const T* b,
                                                           T* __restrict__ y, int64_t n, T mu, T rs) {
  normalize_row(x, w, b, y, n, mu, rs);
}
template <class T>
EMBER_LN_FMA_TARGET void dx_row_fma(const T* __restrict__ dy, const T* __restrict__ x, const T* w,
                                                    T* __restrict__ dx, int64_t n, T mu, T rs, T c1, T c2) {
  dx_row(dy, x, w, dx, n, mu, rs, c1, c2);
}
const bool kHasFma = has_avx2_fma();
#else
template <class T>
void normalize_row_fma(const T* x, const T* w, const T* b, T* y, int64_t n, T mu, T rs) {
  normalize_row(x, w, b, y, n, mu, rs);
}
template <class T>
void dx_row_fma(const T* dy, const T* x, const T* w, T* dx, int64_t n, T mu, T rs, T c1, T c2) {
  dx_row(dy, x, w, dx, n, mu, rs, c1, c2);
}
const bool kHasFma = false;
#endif
#undef EMBER_LN_FMA_TARGET

void forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, const LayerNormShape& sh,
             Tensor& y, Tensor& mean, Tensor& rstd) {
  visit_floating(x.dtype(), "layer_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = data_as<const T>(x);
    const T* wp = data_as<const T>(weight);
    const T* bp = data_as<const T>(bias);
    T* yp = data_as<T>(y);
    T* mp = data_as<T>(mean);
    T* rp = data_as<T>(rstd);
    const int64_t n = sh.n;
#pragma omp parallel for if (sh.rows * n > kParallelThreshold) schedule(static)
    for (int64_t r = 0; r < sh.rows; ++r) {
      const Moments m = row_moments(xp + r * n, n);
      const T mu = static_cast<T>(m.mean);
      const T rs = static_cast<T>(1.0 / std::sqrt(m.m2 / static_cast<double>(n) + eps));
      mp[r] = mu;
      rp[r] = rs;
      if (kHasFma)
        normalize_row_fma(xp + r * n, wp, bp, yp + r * n, n, mu, rs);
      else
        normalize_row(xp + r * n, wp, bp, yp + r * n, n, mu, rs);
    }
  });
}

/// How the backward cuts the rows for dweight/dbias: `chunks` chunks of `len` consecutive rows (the last
/// may be shorter). At most kMaxChunks (the partial buffers stay small) and at least kMinChunkRows rows
/// per chunk; a function of the shape only, so the sums are the same bits for any thread count.
constexpr int64_t kMaxChunks = 64;
constexpr int64_t kMinChunkRows = 8;

RowChunks plan_chunks(int64_t rows) { return plan_row_chunks(rows, kMinChunkRows, kMaxChunks); }

/// Columns per block of the second pass (adding the chunks' partials in chunk order).
constexpr int64_t kColumnBlock = 256;

void backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
              const LayerNormShape& sh, Tensor* dx, Tensor* dweight, Tensor* dbias) {
  visit_floating(x.dtype(), "layer_norm_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* gp = data_as<const T>(dy);
    const T* xp = data_as<const T>(x);
    const T* mp = data_as<const T>(mean);
    const T* rp = data_as<const T>(rstd);
    const T* wp = data_as<const T>(weight);
    T* dxp = dx ? data_as<T>(*dx) : nullptr;
    const int64_t n = sh.n;
    const bool params = dweight != nullptr || dbias != nullptr;
    const RowChunks plan = plan_chunks(sh.rows);
    // partials[c][0][j] = sum of dy * xhat, partials[c][1][j] = sum of dy over chunk c's rows.
    std::vector<double> partials(params ? static_cast<size_t>(plan.chunks * 2 * n) : 0, 0.0);
    const bool parallel = sh.rows * n > kParallelThreshold;
#pragma omp parallel for if (parallel) schedule(static)
    for (int64_t c = 0; c < plan.chunks; ++c) {
      double* pw = params ? partials.data() + c * 2 * n : nullptr;
      double* pb = params ? pw + n : nullptr;
      const int64_t r_end = std::min(sh.rows, (c + 1) * plan.len);
      for (int64_t r = c * plan.len; r < r_end; ++r) {
        const T* g = gp + r * n;
        const T* xr = xp + r * n;
        const T mu = mp[r], rs = rp[r];
        if (params) {
          for (int64_t j = 0; j < n; ++j) {
            pw[j] += static_cast<double>(g[j]) * static_cast<double>((xr[j] - mu) * rs);
            pb[j] += static_cast<double>(g[j]);
          }
        }
        if (!dxp) continue;
        double s1 = 0.0, s2 = 0.0;  // sum g, sum g * xhat
#pragma omp simd reduction(+ : s1, s2)
        for (int64_t j = 0; j < n; ++j) {
          const T gw = wp ? g[j] * wp[j] : g[j];
          s1 += static_cast<double>(gw);
          s2 += static_cast<double>(gw) * static_cast<double>((xr[j] - mu) * rs);
        }
        const T c1 = static_cast<T>(s1 / static_cast<double>(n)), c2 = static_cast<T>(s2 / static_cast<double>(n));
        if (kHasFma)
          dx_row_fma(g, xr, wp, dxp + r * n, n, mu, rs, c1, c2);
        else
          dx_row(g, xr, wp, dxp + r * n, n, mu, rs, c1, c2);
      }
    }
    if (!params) return;
    T* dwp = dweight ? data_as<T>(*dweight) : nullptr;
    T* dbp = dbias ? data_as<T>(*dbias) : nullptr;
    const int64_t blocks = (n + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for if (parallel && blocks > 1) schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t j0 = blk * kColumnBlock, j1 = std::min(n, j0 + kColumnBlock);
      for (int64_t j = j0; j < j1; ++j) {
        double sw = 0.0, sb = 0.0;
        for (int64_t c = 0; c < plan.chunks; ++c) {
          sw += partials[static_cast<size_t>(c * 2 * n + j)];
          sb += partials[static_cast<size_t>(c * 2 * n + n + j)];
        }
        if (dwp) dwp[j] = static_cast<T>(sw);
        if (dbp) dbp[j] = static_cast<T>(sb);
      }
    }
  });
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<LayerNormKernels>(DeviceType::CPU);
  t.forward = forward;
  t.backward = backward;
});

}  // namespace ember::kernels::cpu
