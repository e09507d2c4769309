/// @file kernels/cpu/optimizer.cpp @brief CPU fused optimizer updates (SGD, AdamW): one pass over every parameter, gradient norm and non-finite flag on the way.
#include <array>
#include <cmath>
#include <utility>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"
#include "kernels/optimizer.h"

namespace ember::kernels::cpu {
namespace {

// The loops below take every array as a restrict-qualified parameter and declare their reductions
// `omp simd`, so they vectorize: each element's update is the same IEEE expression as a scalar loop's
// (sqrt and division are exact, nothing is contracted), only the order of the norm's partial sums
// depends on the vector width and thread count. The file is compiled with -fno-math-errno
// (CMakeLists.txt): sqrt's errno branch for negative inputs would otherwise keep AdamW's loop scalar.

template <class T>
struct SgdConsts {
  T lr, mom, wd, keep, scale;
  bool use_mom, use_wd, nesterov, init;
};

/// One element of the SGD update; the norm and non-finite flag of its gradient go to sq / bad. The
/// variant (momentum, its first step, weight decay, Nesterov) is a compile-time choice: with runtime
/// flags the loop kept its branches and did not vectorize.
template <bool Mom, bool Init, bool Wd, bool Nest, class T>
inline void sgd_element(T* __restrict__ p, const T* __restrict__ grad, T* __restrict__ buf, int64_t i,
                        const SgdConsts<T>& k, double& sq, int& bad) {
  bad |= !std::isfinite(grad[i]);
  T g = grad[i] * k.scale;
  sq += static_cast<double>(g) * static_cast<double>(g);
  if constexpr (Wd) g += k.wd * p[i];
  if constexpr (Mom) {
    T b;
    if constexpr (Init)
      b = g;
    else
      b = k.mom * buf[i] + k.keep * g;
    buf[i] = b;
    if constexpr (Nest)
      g = g + k.mom * b;
    else
      g = b;
  }
  p[i] -= k.lr * g;
}

template <class T>
struct AdamWConsts {
  T decay, step_size, bc2_sqrt, eps, b1, b2, one_b1, one_b2, scale;
};

/// One element of the AdamW update; the norm and non-finite flag of its gradient go to sq / bad.
template <class T>
inline void adamw_element(T* __restrict__ p, const T* __restrict__ grad, T* __restrict__ m, T* __restrict__ v,
                          int64_t i, const AdamWConsts<T>& k, double& sq, int& bad) {
  bad |= !std::isfinite(grad[i]);
  const T g = grad[i] * k.scale;
  sq += static_cast<double>(g) * static_cast<double>(g);
  const T mi = k.b1 * m[i] + k.one_b1 * g;
  const T vi = k.b2 * v[i] + k.one_b2 * g * g;
  m[i] = mi;
  v[i] = vi;
  p[i] = p[i] * k.decay - k.step_size * mi / (std::sqrt(vi) / k.bc2_sqrt + k.eps);
}

// Each update loop is compiled three times, for AVX-512, AVX2 and the baseline (SSE2), and the widest the
// CPU has runs (16, 8 or 4 floats per instruction). No FMA is enabled (fp-contract=off), so the three
// compute the same bits. The loops are written by a macro rather than shared: OpenMP outlines a parallel
// region before inlining, so a shared body would run with the caller's generic target. The `if` applies
// to `parallel` only: an unmodified `if` also switches `simd` off, which left every tensor under the
// threshold (most of an MLP's) in scalar code.
#define EMBER_UPDATE_LOOPS(suffix, target)                                                                    \
  template <bool Mom, bool Init, bool Wd, bool Nest, class T>                                                \
  target void sgd_tensor_##suffix(T* __restrict__ p, const T* __restrict__ grad, T* __restrict__ buf,        \
                                  int64_t n, const SgdConsts<T> k, ScaleResult& r) {                         \
    double sq = 0.0;                                                                                         \
    int bad = 0;                                                                                             \
    _Pragma("omp parallel for simd if (parallel : n > kParallelThreshold) schedule(static) reduction(+ : sq) reduction(| : bad)") \
    for (int64_t i = 0; i < n; ++i) sgd_element<Mom, Init, Wd, Nest>(p, grad, buf, i, k, sq, bad);          \
    r.sum_squares += sq;                                                                                     \
    r.non_finite = r.non_finite || bad != 0;                                                                 \
  }                                                                                                          \
  template <class T>                                                                                         \
  target void adamw_tensor_##suffix(T* __restrict__ p, const T* __restrict__ grad, T* __restrict__ m,        \
                                    T* __restrict__ v, int64_t n, const AdamWConsts<T> k, ScaleResult& r) {  \
    double sq = 0.0;                                                                                         \
    int bad = 0;                                                                                             \
    _Pragma("omp parallel for simd if (parallel : n > kParallelThreshold) schedule(static) reduction(+ : sq) reduction(| : bad)") \
    for (int64_t i = 0; i < n; ++i) adamw_element(p, grad, m, v, i, k, sq, bad);                             \
    r.sum_squares += sq;                                                                                     \
    r.non_finite = r.non_finite || bad != 0;                                                                 \
  }
#if defined(__x86_64__) && defined(__GNUC__)
EMBER_UPDATE_LOOPS(avx512, __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"), optimize("fp-contract=off"))))
EMBER_UPDATE_LOOPS(avx2, __attribute__((target("avx2"), optimize("fp-contract=off"))))
const bool kHasAvx512 = has_avx512();
const bool kHasAvx2 = has_avx2();
#else
const bool kHasAvx512 = false;
const bool kHasAvx2 = false;
#endif
EMBER_UPDATE_LOOPS(base, )
#undef EMBER_UPDATE_LOOPS

/// SGD variant V: bit 0 momentum, 1 its first step, 2 weight decay, 3 Nesterov; the widest ISA the CPU has.
template <int V, class T>
void sgd_variant(T* p, const T* grad, T* buf, int64_t n, const SgdConsts<T>& k, ScaleResult& r) {
  constexpr bool M = V & 1, I = V & 2, W = V & 4, N = V & 8;
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHasAvx512) return sgd_tensor_avx512<M, I, W, N>(p, grad, buf, n, k, r);
  if (kHasAvx2) return sgd_tensor_avx2<M, I, W, N>(p, grad, buf, n, k, r);
#endif
  sgd_tensor_base<M, I, W, N>(p, grad, buf, n, k, r);
}

template <class T, int... V>
constexpr auto sgd_variants(std::integer_sequence<int, V...>) {
  return std::array{&sgd_variant<V, T>...};
}

template <class T>
void sgd_tensor(T* p, const T* grad, T* buf, int64_t n, const SgdConsts<T>& k, ScaleResult& r) {
  static constexpr auto kVariants = sgd_variants<T>(std::make_integer_sequence<int, 16>{});
  const int v = (k.use_mom ? 1 : 0) | (k.use_mom && k.init ? 2 : 0) | (k.use_wd ? 4 : 0) |
                (k.use_mom && k.nesterov ? 8 : 0);
  kVariants[static_cast<size_t>(v)](p, grad, buf, n, k, r);
}

template <class T>
void adamw_tensor(T* p, const T* grad, T* m, T* v, int64_t n, const AdamWConsts<T>& k, ScaleResult& r) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHasAvx512) return adamw_tensor_avx512(p, grad, m, v, n, k, r);
  if (kHasAvx2) return adamw_tensor_avx2(p, grad, m, v, n, k, r);
#endif
  adamw_tensor_base(p, grad, m, v, n, k, r);
}

template <class T>
T* data(const Tensor& t) {
  return static_cast<T*>(t.data_ptr());
}

ScaleResult sgd_update(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> bufs,
                       const SgdStepOptions& o, double grad_scale) {
  ScaleResult r;
  visit_floating(params[0].dtype(), "sgd_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const SgdConsts<T> k{static_cast<T>(o.lr),         static_cast<T>(o.momentum),
                         static_cast<T>(o.weight_decay), static_cast<T>(1.0 - o.dampening),
                         static_cast<T>(grad_scale),   o.momentum != 0.0,
                         o.weight_decay != 0.0,        o.nesterov,
                         o.init_momentum};
    for (size_t t = 0; t < params.size(); ++t)
      sgd_tensor(data<T>(params[t]), data<const T>(grads[t]), k.use_mom ? data<T>(bufs[t]) : nullptr,
                 params[t].numel(), k, r);
  });
  return r;
}

ScaleResult adamw_update(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> exp_avgs,
                         std::span<Tensor> exp_avg_sqs, const AdamWStepOptions& o, int64_t step, double grad_scale) {
  ScaleResult r;
  // Scalars in double, as PyTorch computes them on the host.
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(step));
  visit_floating(params[0].dtype(), "adamw_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const AdamWConsts<T> k{static_cast<T>(1.0 - o.lr * o.weight_decay), static_cast<T>(o.lr / bc1),
                           static_cast<T>(std::sqrt(bc2)),               static_cast<T>(o.eps),
                           static_cast<T>(o.beta1),                      static_cast<T>(o.beta2),
                           static_cast<T>(1.0 - o.beta1),                static_cast<T>(1.0 - o.beta2),
                           static_cast<T>(grad_scale)};
    for (size_t t = 0; t < params.size(); ++t) {
      adamw_tensor(data<T>(params[t]), data<const T>(grads[t]), data<T>(exp_avgs[t]), data<T>(exp_avg_sqs[t]),
             params[t].numel(), k, r);
    }
  });
  return r;
}


/// The CPU side of a StepGate (the status is host memory here). Runs `update(grads, grad_scale)` unless
/// a reading gate skips; a clipping gate first forms (g * grad_scale) * clip_coef, each product rounded,
/// in temporaries (as the CUDA kernels multiply twice); a reporting gate adds the result to the status.
template <class Update>
void gated(std::span<const Tensor> grads, double grad_scale, const StepGate& gate, Update&& update) {
  double* st = gate.status.defined() ? static_cast<double*>(gate.status.data_ptr()) : nullptr;
  if (st != nullptr && gate.read) {
    const GateDecision d =
        step_gate_decision(st[kStatusSumSquares], st[kStatusNonFinite], gate.clip_norm, gate.skip_non_finite);
    if (d.skip) return;
    if (d.clip) {
      std::vector<Tensor> clipped;
      for (const Tensor& g : grads) {
        Tensor c = empty_like(g);
        visit_floating(g.dtype(), "clip", [&](auto tag) {
          using T = typename decltype(tag)::type;
          const T* src = static_cast<const T*>(g.data_ptr());
          T* dst = static_cast<T*>(c.data_ptr());
          const T gs = static_cast<T>(grad_scale), coef = static_cast<T>(d.clip_coef);
          for (int64_t i = 0; i < g.numel(); ++i) {
            const T scaled = src[i] * gs;
            dst[i] = scaled * coef;
          }
        });
        clipped.push_back(c);
      }
      update(std::span<const Tensor>(clipped), 1.0);
      return;
    }
    update(grads, grad_scale);
    return;
  }
  const ScaleResult r = update(grads, grad_scale);
  if (st != nullptr) {
    st[kStatusSumSquares] += r.sum_squares;
    if (r.non_finite) st[kStatusNonFinite] = 1.0;
  }
}

void sgd_step(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> bufs, const SgdStepOptions& o,
              double grad_scale, const StepGate& gate) {
  gated(grads, grad_scale, gate, [&](std::span<const Tensor> g, double scale) {
    return sgd_update(params, g, bufs, o, scale);
  });
}

void adamw_step(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> exp_avgs,
                std::span<Tensor> exp_avg_sqs, const AdamWStepOptions& o, int64_t step, double grad_scale,
                const StepGate& gate) {
  gated(grads, grad_scale, gate, [&](std::span<const Tensor> g, double scale) {
    return adamw_update(params, g, exp_avgs, exp_avg_sqs, o, step, scale);
  });
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<OptimizerKernels>(DeviceType::CPU);
  t.sgd_step = sgd_step;
  t.adamw_step = adamw_step;
});

}  // namespace ember::kernels::cpu
