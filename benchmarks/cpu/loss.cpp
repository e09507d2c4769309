/// @file benchmarks/cpu/loss.cpp @brief CPU fused cross-entropy forward and backward on the models' logits [32, 10] and an ImageNet-sized [4096, 1000].
#include <benchmark/benchmark.h>

#include "benchmarks/cpu/cpu_bench.h"
#include "benchmarks/bench_util.h"
#include "benchmarks/table_reporter.h"
#include "kernels/loss.h"

namespace ember::bench::cpu {
namespace {

struct Logits {
  Tensor logits, targets, losses, lse, grad_losses, grad_logits;
  Logits(int64_t n, int64_t c)
      : logits(randn({n, c})),
        targets(empty({n}, TensorOptions{}.set_dtype(DType::i64))),
        losses(empty({n})),
        lse(empty({n})),
        grad_losses(full({n}, 1.0 / double(n))),
        grad_logits(empty({n, c})) {
    auto* t = static_cast<int64_t*>(targets.data_ptr());
    for (int64_t i = 0; i < n; ++i) t[i] = (i * 7) % c;
  }
};

/// Must move (docs/kernels.md): logits read, targets, loss and lse: 4NC + 16N bytes.
void forward(benchmark::State& s, int64_t n, int64_t c) {
  Logits d(n, c);
  for (auto _ : s) {
    kernels::cross_entropy_forward(d.logits, d.targets, d.losses, d.lse);
    benchmark::ClobberMemory();
  }
  set_bandwidth(s, 4.0 * double(n * c) + 16.0 * double(n), peak_for_working_set(4.0 * double(n * c)));
}

/// Must move: logits read, gradient written, per-row targets / lse / grad: 8NC + 20N bytes.
void backward(benchmark::State& s, int64_t n, int64_t c) {
  Logits d(n, c);
  kernels::cross_entropy_forward(d.logits, d.targets, d.losses, d.lse);
  for (auto _ : s) {
    kernels::cross_entropy_backward(d.logits, d.targets, d.lse, d.grad_losses, d.grad_logits);
    benchmark::ClobberMemory();
  }
  set_bandwidth(s, 8.0 * double(n * c) + 20.0 * double(n), peak_for_working_set(8.0 * double(n * c)));
}

}  // namespace

void register_loss() {
  for (auto [n, c] : {std::pair<int64_t, int64_t>{32, 10}, {4096, 1000}}) {
    const std::string sz = bench_name("/", n, "x", c);
    add(bench_name("cross_entropy_forward", sz), forward, n, c)->Unit(benchmark::kMicrosecond);
    add(bench_name("cross_entropy_backward", sz), backward, n, c)->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace ember::bench::cpu
