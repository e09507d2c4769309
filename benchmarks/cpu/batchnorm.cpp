/// @file benchmarks/cpu/batchnorm.cpp @brief CPU batch-norm training forward (stats + normalize) and backward (reduce + dx) on the models' shapes and a DRAM-sized one.
#include <benchmark/benchmark.h>

#include "benchmarks/cpu/cpu_bench.h"
#include "benchmarks/bench_util.h"
#include "benchmarks/table_reporter.h"
#include "kernels/batchnorm.h"

namespace ember::bench::cpu {
namespace {

constexpr double kEps = 1e-5;

/// Training forward as BatchNorm2d runs it: statistics, then y = (x - mean) * invstd * w + b.
/// Must move: x read by the statistics (4 B) and by normalize (4 B), y written (4 B): 12 B per element.
void forward(benchmark::State& s, Shape shape) {
  const int64_t c = shape[1];
  Tensor x = randn(shape), y = empty(shape), mean = empty({c}), var = empty({c}), w = ones({c}), b = zeros({c});
  for (auto _ : s) {
    kernels::batch_norm_stats(x, mean, var);
    kernels::batch_norm_normalize(x, mean, var, w, b, kEps, y);
    benchmark::ClobberMemory();
  }
  const double n = double(x.numel());
  set_bandwidth(s, 12.0 * n, peak_for_working_set(8.0 * n));
}

/// Training backward: the per-channel sums (dy, x read: 8 B) then dx (dy, x read, dx written: 12 B).
void backward(benchmark::State& s, Shape shape) {
  const int64_t c = shape[1];
  Tensor x = randn(shape), dy = randn(shape), dx = empty(shape), mean = empty({c}), var = empty({c}), w = ones({c});
  Tensor sum_dy = empty({c}), sum_dy_xhat = empty({c});
  kernels::batch_norm_stats(x, mean, var);
  for (auto _ : s) {
    kernels::batch_norm_backward_reduce(dy, x, mean, var, kEps, sum_dy, sum_dy_xhat);
    kernels::batch_norm_backward_input(dy, x, mean, var, w, sum_dy, sum_dy_xhat, kEps, true, dx);
    benchmark::ClobberMemory();
  }
  const double n = double(x.numel());
  set_bandwidth(s, 20.0 * n, peak_for_working_set(12.0 * n));
}

}  // namespace

void register_batchnorm() {
  for (const BnCase& k : bn_cases(64)) {
    add(bench_name("batchnorm_forward/", k.name), forward, k.shape)->Unit(benchmark::kMicrosecond);
    add(bench_name("batchnorm_backward/", k.name), backward, k.shape)->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace ember::bench::cpu
