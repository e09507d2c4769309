/// @file benchmarks/cpu/optimizer.cpp @brief CPU fused optimizer updates (AdamW, SGD momentum) over parameter lists: one multi-tensor call vs one call per tensor.
#include <benchmark/benchmark.h>

#include <span>

#include "benchmarks/cpu/cpu_bench.h"
#include "benchmarks/bench_util.h"
#include "benchmarks/table_reporter.h"
#include "kernels/optimizer.h"

namespace ember::bench::cpu {
namespace {

constexpr double kGradScale = 1.0 / 128;  // the folded 1 / (micro x accum) of a window end

/// AdamW reads p, g, m, v and writes p, m, v: 28 bytes per element.
void adamw(benchmark::State& s, ParamList l, bool multi) {
  std::vector<Tensor> p = make_tensors(l, 0.01), g = make_tensors(l, 0.001), m = make_tensors(l, 0.0),
                      v = make_tensors(l, 0.0);
  const std::vector<Tensor> gc(g.begin(), g.end());
  const kernels::AdamWStepOptions o;
  int64_t step = 0;
  for (auto _ : s) {
    ++step;
    if (multi) {
      kernels::adamw_step(p, gc, m, v, o, step, kGradScale);
    } else {
      for (size_t i = 0; i < p.size(); ++i)
        kernels::adamw_step(std::span<Tensor>(&p[i], 1), std::span<const Tensor>(&gc[i], 1),
                                                     std::span<Tensor>(&m[i], 1), std::span<Tensor>(&v[i], 1), o, step,
                                                     kGradScale);
    }
  }
  set_bandwidth(s, 28.0 * double(l.numel()), peak_for_working_set(28.0 * double(l.numel())));
}

/// SGD with momentum and weight decay reads p, g, buf and writes p, buf: 20 bytes per element.
void sgd(benchmark::State& s, ParamList l, bool multi) {
  std::vector<Tensor> p = make_tensors(l, 0.01), g = make_tensors(l, 0.001), buf = make_tensors(l, 0.0);
  const std::vector<Tensor> gc(g.begin(), g.end());
  const kernels::SgdStepOptions o{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4};
  for (auto _ : s) {
    if (multi) {
      kernels::sgd_step(p, gc, buf, o, kGradScale);
    } else {
      for (size_t i = 0; i < p.size(); ++i)
        kernels::sgd_step(std::span<Tensor>(&p[i], 1), std::span<const Tensor>(&gc[i], 1),
                                                   std::span<Tensor>(&buf[i], 1), o, kGradScale);
    }
  }
  set_bandwidth(s, 20.0 * double(l.numel()), peak_for_working_set(20.0 * double(l.numel())));
}

}  // namespace

void register_optimizer() {
  for (const ParamList& l : all_param_lists()) {
    const auto unit = l.numel() > kTriadL3 ? benchmark::kMillisecond : benchmark::kMicrosecond;
    for (bool multi : {false, true}) {
      const char* how = multi ? "/multi_tensor" : "/per_tensor";
      add(bench_name("adamw/", l.name, how), adamw, l, multi)->Unit(unit);
    }
    for (bool multi : {false, true}) {
      const char* how = multi ? "/multi_tensor" : "/per_tensor";
      add(bench_name("sgd/", l.name, how), sgd, l, multi)->Unit(unit);
    }
  }
}

}  // namespace ember::bench::cpu
