/// @file benchmarks/cpu/gemm.cpp @brief CPU GEMM path (kernels::gemm on OpenBLAS): square sizes and, per pass, the exact GEMMs the MLP-BN's and CNN-BN's layers run at micro-batch 32.
#include <benchmark/benchmark.h>

#include <algorithm>

#include "benchmarks/cpu/cpu_bench.h"
#include "benchmarks/cpu/model_layers.h"
#include "benchmarks/bench_util.h"
#include "benchmarks/table_reporter.h"
#include "kernels/matmul.h"

namespace ember::bench::cpu {
namespace {

/// C = op(A) op(B) (+ C when beta = 1), 2 m n k FLOPs per product. batch > 1: one batched call with A
/// broadcast over the batch (as conv2d's weight is). calls > 1: that many calls of the unbatched GEMM
/// into the same C, each on its own slice of A and B (conv2d's weight gradient, one per sample).
struct GemmCase {
  std::string name;
  int64_t batch, calls, m, n, k;
  bool ta, tb;
  double beta;
};

/// The GEMMs one pass of a layer runs, as ops/functional.cpp (linear) and ops/functional_conv.cpp
/// (conv2d, on im2col columns [N, K, L]) call them. The forward adds to the broadcast bias (beta = 1);
/// the weight gradient goes straight into .grad (beta = 1). The bias-gradient GEMVs are left out.
GemmCase layer_gemm(const ModelLayer& l, Pass p) {
  const std::string name = bench_name(l.name, "_", pass_name(p));
  const int64_t n = kMicroBatch, k = l.gemm_k(), cols = l.gemm_l(), out = l.out;
  if (!l.conv) {
    switch (p) {
      case Pass::Forward: return {name, 1, 1, n, out, k, false, true, 1.0};         // y = b; y += x W^T
      case Pass::BackwardInput: return {name, 1, 1, n, k, out, false, false, 0.0};  // dx = dy W
      case Pass::BackwardWeight: return {name, 1, 1, out, k, n, true, false, 1.0};  // dW += dy^T x
    }
  }
  switch (p) {
    case Pass::Forward: return {name, n, 1, out, cols, k, false, false, 1.0};       // y[i] = b; y[i] += W col[i]
    case Pass::BackwardInput: return {name, n, 1, k, cols, out, true, false, 0.0};  // dcol[i] = W^T dy[i]
    case Pass::BackwardWeight: return {name, 1, n, out, k, cols, false, true, 1.0};  // dW += dy[i] col[i]^T
  }
  return {};
}

std::vector<GemmCase> gemm_cases() {
  std::vector<GemmCase> cases = {
      {"square_256", 1, 1, 256, 256, 256, false, false, 0.0},
      {"square_1024", 1, 1, 1024, 1024, 1024, false, false, 0.0},
  };
  for (const ModelLayer& l : model_layers())
    for (Pass p : kPasses) cases.push_back(layer_gemm(l, p));
  return cases;
}

Shape with_leading(int64_t lead, Shape s) {
  if (lead > 1) s.insert(s.begin(), lead);
  return s;
}

void gemm(benchmark::State& s, GemmCase g) {
  const Shape a_shape = g.ta ? Shape{g.k, g.m} : Shape{g.m, g.k};
  const Shape b_shape = g.tb ? Shape{g.n, g.k} : Shape{g.k, g.n};
  const int64_t lead = std::max(g.batch, g.calls);
  Tensor a = randn(with_leading(g.calls, a_shape));
  Tensor b = randn(with_leading(lead, b_shape));
  Tensor c = zeros(with_leading(g.batch, {g.m, g.n}));
  for (auto _ : s) {
    if (g.calls == 1)
      kernels::gemm(a, g.ta, b, g.tb, c, 1.0, g.beta);
    else
      for (int64_t i = 0; i < g.calls; ++i) kernels::gemm(a.select(0, i), g.ta, b.select(0, i), g.tb, c, 1.0, g.beta);
    benchmark::ClobberMemory();
  }
  set_flops(s, 2.0 * double(g.batch * g.calls * g.m * g.n * g.k), kPeakFma);
}

}  // namespace

void register_gemm() {
  for (const GemmCase& g : gemm_cases())
    add(bench_name("gemm/", g.name), gemm, g)->Unit(benchmark::kMicrosecond);
}

}  // namespace ember::bench::cpu
