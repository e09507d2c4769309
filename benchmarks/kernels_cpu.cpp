/// @file benchmarks/kernels_cpu.cpp @brief CPU microbenchmarks of the fused kernels against a STREAM triad measured in the same binary.
#include <benchmark/benchmark.h>

#include <vector>

#include "core/ember.h"
#include "kernels/accumulate.h"
#include "kernels/elementwise.h"
#include "kernels/matmul.h"

using namespace ember;

namespace {

constexpr int64_t kN = int64_t{1} << 24;  // 16 Mi floats = 64 MiB per array: far beyond the caches

void set_bytes(benchmark::State& s, int64_t bytes_per_iter) {
  s.SetBytesProcessed(s.iterations() * bytes_per_iter);
}

/// STREAM triad a = b + s * c: the machine's practical memory bandwidth (3 arrays moved).
void BM_Triad(benchmark::State& s) {
  std::vector<float> a(kN), b(kN, 1.0f), c(kN, 2.0f);
  const float k = 0.5f;
  for (auto _ : s) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < kN; ++i) a[i] = b[i] + k * c[i];
    benchmark::DoNotOptimize(a.data());
    benchmark::ClobberMemory();
  }
  set_bytes(s, 3 * kN * 4);
}

/// grad += alpha * g, the fused kernel: reads 2 arrays, writes 1.
void BM_AccumulateFused(benchmark::State& s) {
  Tensor grad = randn({kN}), g = randn({kN});
  for (auto _ : s) {
    kernels::accumulate(grad, g, 0.25);
    benchmark::ClobberMemory();
  }
  set_bytes(s, 3 * kN * 4);
}

/// The unfused form: tmp = alpha * g (allocates), then grad = grad + tmp: 2 passes, 5 arrays moved,
/// plus an allocation per call.
void BM_AccumulateUnfused(benchmark::State& s) {
  Tensor grad = randn({kN}), g = randn({kN});
  for (auto _ : s) {
    Tensor tmp = empty({kN});
    kernels::unary(kernels::UnaryOp::MulScalar, g, tmp, 0.25);
    kernels::binary(kernels::BinaryOp::Add, grad, tmp, grad);
    benchmark::ClobberMemory();
  }
  set_bytes(s, 3 * kN * 4);  // useful bytes, as for the fused kernel
}

/// Multi-tensor accumulate over the CNN's parameter list (conv1, conv2, fc weights and biases).
void BM_AccumulateManyCnn(benchmark::State& s) {
  const std::vector<Shape> shapes = {{16, 1, 3, 3}, {16}, {32, 16, 3, 3}, {32}, {10, 1568}, {10}};
  std::vector<Tensor> d, src;
  int64_t n = 0;
  for (const auto& sh : shapes) {
    d.push_back(randn(sh));
    src.push_back(randn(sh));
    n += shape_numel(sh);
  }
  std::vector<Tensor> srcc(src.begin(), src.end());
  for (auto _ : s) {
    kernels::accumulate_many(d, std::span<const Tensor>(srcc), 1.0);
    benchmark::ClobberMemory();
  }
  set_bytes(s, 3 * n * 4);
}

/// grads *= s with the sum of squares and non-finite flag in the same pass: reads and writes 1 array.
void BM_ScaleWithNorm(benchmark::State& s) {
  std::vector<Tensor> ts{randn({kN})};
  for (auto _ : s) {
    auto r = kernels::scale_many(ts, 1.0);
    benchmark::DoNotOptimize(r);
  }
  set_bytes(s, 2 * kN * 4);
}

void BM_Gemm(benchmark::State& s) {
  const int64_t n = s.range(0);
  Tensor a = randn({n, n}), b = randn({n, n}), c = empty({n, n});
  for (auto _ : s) {
    kernels::gemm(a, false, b, false, c);
    benchmark::ClobberMemory();
  }
  s.counters["FLOP/s"] = benchmark::Counter(2.0 * n * n * n * s.iterations(), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_Triad)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AccumulateFused)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AccumulateUnfused)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AccumulateManyCnn)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_ScaleWithNorm)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Gemm)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
