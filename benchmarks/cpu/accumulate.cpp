/// @file benchmarks/cpu/accumulate.cpp @brief CPU accumulate (unfused, scalar, fused, per-tensor vs multi-tensor) and scale-with-norm benchmarks.
#include <benchmark/benchmark.h>

#include <cmath>
#include <span>

#include "benchmarks/cpu/cpu_bench.h"
#include "benchmarks/bench_util.h"
#include "benchmarks/table_reporter.h"
#include "kernels/accumulate.h"
#include "kernels/elementwise.h"

namespace ember::bench::cpu {
namespace {

constexpr double kAlpha = 0.25;

/// The unfused form of `grad += alpha * g` as an op-by-op framework runs it: tmp = alpha * g (a new
/// tensor each call), grad = grad + tmp. 2 passes, 5 arrays moved, an allocation per call. The rate
/// counts the fused kernel's 12 bytes per element, so it reads as an effective bandwidth.
void unfused_alloc(benchmark::State& s, int64_t n) {
  Tensor grad = full({n}, 0.01), g = full({n}, 1.0);
  for (auto _ : s) {
    Tensor tmp = empty({n});
    kernels::unary(kernels::unary_op_v<kernels::op::MulScalar>, g, tmp, kAlpha);
    kernels::binary(kernels::binary_op_v<kernels::op::Add>, grad, tmp, grad);
    benchmark::ClobberMemory();
  }
  set_bandwidth(s, 12.0 * double(n), peak_for_working_set(12.0 * double(n)));
}

/// As unfused_alloc with the temporary allocated once: the cost of the second pass alone.
void unfused(benchmark::State& s, int64_t n) {
  Tensor grad = full({n}, 0.01), g = full({n}, 1.0), tmp = empty({n});
  for (auto _ : s) {
    kernels::unary(kernels::unary_op_v<kernels::op::MulScalar>, g, tmp, kAlpha);
    kernels::binary(kernels::binary_op_v<kernels::op::Add>, grad, tmp, grad);
    benchmark::ClobberMemory();
  }
  set_bandwidth(s, 12.0 * double(n), peak_for_working_set(20.0 * double(n)));
}

/// The fused loop with vectorization switched off for this function: one element per instruction,
/// what the library kernel would be without `omp simd` (same threads and schedule).
__attribute__((optimize("no-tree-vectorize"))) void axpy_scalar(float* __restrict__ d, const float* __restrict__ x,
                                                                 float alpha, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) d[i] += alpha * x[i];
}

void scalar(benchmark::State& s, int64_t n) {
  Tensor grad = full({n}, 0.01), g = full({n}, 1.0);
  for (auto _ : s) {
    axpy_scalar(static_cast<float*>(grad.data_ptr()), static_cast<const float*>(g.data_ptr()), float(kAlpha), n);
    benchmark::ClobberMemory();
  }
  set_bandwidth(s, 12.0 * double(n), peak_for_working_set(12.0 * double(n)));
}

/// The library's fused, vectorized kernel: reads grad and g, writes grad (12 bytes per element).
void fused(benchmark::State& s, int64_t n) {
  Tensor grad = full({n}, 0.01), g = full({n}, 1.0);
  for (auto _ : s) {
    kernels::accumulate(grad, g, kAlpha);
    benchmark::ClobberMemory();
  }
  set_bandwidth(s, 12.0 * double(n), peak_for_working_set(12.0 * double(n)));
}

/// Over a parameter list: one kernels::accumulate call per tensor.
void list_per_tensor(benchmark::State& s, ParamList l) {
  std::vector<Tensor> grads = make_tensors(l, 0.01), gs = make_tensors(l, 1.0);
  for (auto _ : s) {
    for (size_t i = 0; i < grads.size(); ++i) kernels::accumulate(grads[i], gs[i], kAlpha);
    benchmark::ClobberMemory();
  }
  set_bandwidth(s, 12.0 * double(l.numel()), peak_for_working_set(12.0 * double(l.numel())));
}

/// Over a parameter list: one kernels::accumulate_many call for the whole list.
void list_multi_tensor(benchmark::State& s, ParamList l) {
  std::vector<Tensor> grads = make_tensors(l, 0.01), gs = make_tensors(l, 1.0);
  const std::vector<Tensor> srcs(gs.begin(), gs.end());
  for (auto _ : s) {
    kernels::accumulate_many(grads, std::span<const Tensor>(srcs), kAlpha);
    benchmark::ClobberMemory();
  }
  set_bandwidth(s, 12.0 * double(l.numel()), peak_for_working_set(12.0 * double(l.numel())));
}

/// The window-end scale without fusion: per tensor, three passes (scale, sum of squares, non-finite
/// check), as `p.grad.mul_(s)`, `clip_grad_norm_` and an `isfinite().all()` would run them.
void scale_unfused(benchmark::State& s, ParamList l) {
  std::vector<Tensor> ts = make_tensors(l, 0.01);
  double factor = 2.0;
  for (auto _ : s) {
    double sq = 0.0;
    int bad = 0;
    for (Tensor& t : ts) {
      float* p = static_cast<float*>(t.data_ptr());
      const int64_t n = t.numel();
      const float f = float(factor);
#pragma omp parallel for simd schedule(static) if (n > (1 << 15))
      for (int64_t i = 0; i < n; ++i) p[i] *= f;
#pragma omp parallel for simd schedule(static) if (n > (1 << 15)) reduction(+ : sq)
      for (int64_t i = 0; i < n; ++i) sq += double(p[i]) * double(p[i]);
#pragma omp parallel for simd schedule(static) if (n > (1 << 15)) reduction(| : bad)
      for (int64_t i = 0; i < n; ++i) bad |= !std::isfinite(p[i]);
    }
    benchmark::DoNotOptimize(sq);
    benchmark::DoNotOptimize(bad);
    factor = 1.0 / factor;  // 2, 0.5, 2, ...: the values stay where they are
  }
  set_bandwidth(s, 8.0 * double(l.numel()), peak_for_working_set(8.0 * double(l.numel())));
}

/// kernels::scale_many: scale, sum of squares and non-finite flag in one pass (8 bytes per element).
void scale_fused(benchmark::State& s, ParamList l) {
  std::vector<Tensor> ts = make_tensors(l, 0.01);
  double factor = 2.0;
  for (auto _ : s) {
    const ember::ScaleResult r = kernels::scale_many(ts, factor);
    benchmark::DoNotOptimize(r);
    factor = 1.0 / factor;
  }
  set_bandwidth(s, 8.0 * double(l.numel()), peak_for_working_set(8.0 * double(l.numel())));
}

}  // namespace

void register_accumulate() {
  for (int64_t n : {kTriadL2, kTriadDram}) {
    const auto unit = n > kTriadL3 ? benchmark::kMillisecond : benchmark::kMicrosecond;
    add(bench_name("accumulate/unfused_alloc/", n), unfused_alloc, n)->Unit(unit);
    add(bench_name("accumulate/unfused/", n), unfused, n)->Unit(unit);
    add(bench_name("accumulate/scalar/", n), scalar, n)->Unit(unit);
    add(bench_name("accumulate/fused/", n), fused, n)->Unit(unit);
  }
  for (const ParamList& l : all_param_lists()) {
    const auto unit = l.numel() > kTriadL3 ? benchmark::kMillisecond : benchmark::kMicrosecond;
    add(bench_name("accumulate_list/", l.name, "/per_tensor"), list_per_tensor, l)->Unit(unit);
    add(bench_name("accumulate_list/", l.name, "/multi_tensor"), list_multi_tensor, l)->Unit(unit);
  }
  for (const ParamList& l : all_param_lists()) {
    const auto unit = l.numel() > kTriadL3 ? benchmark::kMillisecond : benchmark::kMicrosecond;
    add(bench_name("scale_norm/", l.name, "/unfused"), scale_unfused, l)->Unit(unit);
    add(bench_name("scale_norm/", l.name, "/fused"), scale_fused, l)->Unit(unit);
  }
}

}  // namespace ember::bench::cpu
