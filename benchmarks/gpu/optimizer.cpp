/// @file benchmarks/gpu/optimizer.cpp @brief GPU fused optimizer updates (AdamW, SGD momentum) over parameter lists: multi-tensor launches vs one launch per tensor.
#include <span>

#include "benchmarks/bench_util.h"
#include "benchmarks/gpu/gpu_bench.h"
#include "benchmarks/table_reporter.h"
#include "kernels/optimizer.h"

namespace ember::bench::gpu {
namespace {

constexpr double kGradScale = 1.0 / 128;

/// AdamW: p, g, m, v read, p, m, v written: 28 bytes per element.
void adamw(benchmark::State& s, ParamList l, bool multi) {
  const int r = rotations(28.0 * double(l.numel()));
  auto p = make_sets(l, r, 0.01), g = make_sets(l, r, 0.001), m = make_sets(l, r, 0.0), v = make_sets(l, r, 0.0);
  const kernels::AdamWStepOptions o;
  time_calls(s, [&](int64_t k) {
    const size_t i = size_t(k % r);
    const int64_t step = k / r + 1;
    const std::span<const Tensor> gc(g[i]);
    if (multi) {
      kernels::adamw_step(p[i], gc, m[i], v[i], o, step, kGradScale);
      return;
    }
    for (size_t t = 0; t < p[i].size(); ++t)
      kernels::adamw_step(std::span<Tensor>(&p[i][t], 1), gc.subspan(t, 1),
                                                   std::span<Tensor>(&m[i][t], 1), std::span<Tensor>(&v[i][t], 1), o,
                                                   step, kGradScale);
  });
  set_bandwidth(s, 28.0 * double(l.numel()), kPeakCopy);
}

/// SGD with momentum and weight decay: p, g, buf read, p, buf written: 20 bytes per element.
void sgd(benchmark::State& s, ParamList l, bool multi) {
  const int r = rotations(20.0 * double(l.numel()));
  auto p = make_sets(l, r, 0.01), g = make_sets(l, r, 0.001), buf = make_sets(l, r, 0.0);
  const kernels::SgdStepOptions o{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4};
  time_calls(s, [&](int64_t k) {
    const size_t i = size_t(k % r);
    const std::span<const Tensor> gc(g[i]);
    if (multi) {
      kernels::sgd_step(p[i], gc, buf[i], o, kGradScale);
      return;
    }
    for (size_t t = 0; t < p[i].size(); ++t)
      kernels::sgd_step(std::span<Tensor>(&p[i][t], 1), gc.subspan(t, 1),
                                                 std::span<Tensor>(&buf[i][t], 1), o, kGradScale);
  });
  set_bandwidth(s, 20.0 * double(l.numel()), kPeakCopy);
}

}  // namespace

void register_optimizer() {
  for (const ParamList& l : all_param_lists()) {
    for (bool multi : {false, true})
      add_gpu(bench_name("adamw/", l.name, multi ? "/multi_tensor" : "/per_tensor"), adamw, l, multi);
    for (bool multi : {false, true})
      add_gpu(bench_name("sgd/", l.name, multi ? "/multi_tensor" : "/per_tensor"), sgd, l, multi);
  }
}

}  // namespace ember::bench::gpu
