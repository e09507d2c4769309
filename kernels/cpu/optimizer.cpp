/// @file kernels/cpu/optimizer.cpp @brief CPU fused optimizer updates (SGD, AdamW): one pass over every parameter, gradient norm and non-finite flag on the way.
#include <cmath>

#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"
#include "kernels/optimizer.h"

namespace ember::kernels::cpu {
namespace {

/// Runs `update(i, g)` for every element i of a tensor of n elements with g = grad[i] * scale (in T),
/// and folds g*g and the finiteness of grad[i] into `r`.
template <class T, class F>
void for_each_scaled_grad(const T* __restrict__ grad, int64_t n, T scale, ScaleResult& r, F&& update) {
  double sq = 0.0;
  int bad = 0;
#pragma omp parallel for if (n > kParallelThreshold) schedule(static) reduction(+ : sq) reduction(| : bad)
  for (int64_t i = 0; i < n; ++i) {
    bad |= !std::isfinite(grad[i]);
    const T g = grad[i] * scale;
    sq += static_cast<double>(g) * static_cast<double>(g);
    update(i, g);
  }
  r.sum_squares += sq;
  r.non_finite = r.non_finite || bad != 0;
}

ScaleResult sgd_step(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> bufs,
                     const SgdStepOptions& o, double grad_scale) {
  ScaleResult r;
  visit_floating(params[0].dtype(), "sgd_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T lr = static_cast<T>(o.lr), mom = static_cast<T>(o.momentum), wd = static_cast<T>(o.weight_decay);
    const T keep = static_cast<T>(1.0 - o.dampening), scale = static_cast<T>(grad_scale);
    const bool use_mom = o.momentum != 0.0, use_wd = o.weight_decay != 0.0;
    for (size_t t = 0; t < params.size(); ++t) {
      T* __restrict__ p = static_cast<T*>(params[t].data_ptr());
      T* __restrict__ buf = use_mom ? static_cast<T*>(bufs[t].data_ptr()) : nullptr;
      for_each_scaled_grad(static_cast<const T*>(grads[t].data_ptr()), params[t].numel(), scale, r,
                           [&](int64_t i, T g) {
                             if (use_wd) g += wd * p[i];
                             if (use_mom) {
                               const T b = o.init_momentum ? g : mom * buf[i] + keep * g;
                               buf[i] = b;
                               g = o.nesterov ? g + mom * b : b;
                             }
                             p[i] -= lr * g;
                           });
    }
  });
  return r;
}

ScaleResult adamw_step(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> exp_avgs,
                       std::span<Tensor> exp_avg_sqs, const AdamWStepOptions& o, int64_t step, double grad_scale) {
  ScaleResult r;
  // Scalars in double, as PyTorch computes them on the host.
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(step));
  visit_floating(params[0].dtype(), "adamw_step", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T decay = static_cast<T>(1.0 - o.lr * o.weight_decay), step_size = static_cast<T>(o.lr / bc1);
    const T bc2_sqrt = static_cast<T>(std::sqrt(bc2)), eps = static_cast<T>(o.eps);
    const T b1 = static_cast<T>(o.beta1), b2 = static_cast<T>(o.beta2);
    const T one_b1 = static_cast<T>(1.0 - o.beta1), one_b2 = static_cast<T>(1.0 - o.beta2);
    const T scale = static_cast<T>(grad_scale);
    for (size_t t = 0; t < params.size(); ++t) {
      T* __restrict__ p = static_cast<T*>(params[t].data_ptr());
      T* __restrict__ m = static_cast<T*>(exp_avgs[t].data_ptr());
      T* __restrict__ v = static_cast<T*>(exp_avg_sqs[t].data_ptr());
      for_each_scaled_grad(static_cast<const T*>(grads[t].data_ptr()), params[t].numel(), scale, r,
                           [&](int64_t i, T g) {
                             const T mi = b1 * m[i] + one_b1 * g;
                             const T vi = b2 * v[i] + one_b2 * g * g;
                             m[i] = mi;
                             v[i] = vi;
                             p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) / bc2_sqrt + eps);
                           });
    }
  });
  return r;
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<OptimizerKernels>(DeviceType::CPU);
  t.sgd_step = sgd_step;
  t.adamw_step = adamw_step;
});

}  // namespace ember::kernels::cpu
