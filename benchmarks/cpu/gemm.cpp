/// @file benchmarks/cpu/gemm.cpp @brief CPU GEMM path (kernels::gemm on OpenBLAS): square sizes and the exact GEMMs of the MLP's and CNN's layers at micro-batch 32.
#include <benchmark/benchmark.h>

#include "benchmarks/cpu/cpu_bench.h"
#include "benchmarks/bench_util.h"
#include "benchmarks/table_reporter.h"
#include "kernels/matmul.h"

namespace ember::bench::cpu {
namespace {

/// C[batch, m, n] = op(A) op(B) (+ C when beta = 1); A broadcast over the batch when a_batched is false,
/// as conv2d's weight is. 2 m n k FLOPs per batch entry.
struct GemmCase {
  std::string name;
  int64_t batch, m, n, k;
  bool ta, tb;
  double beta;
  bool a_batched;
};

std::vector<GemmCase> gemm_cases() {
  return {
      {"square_256", 1, 256, 256, 256, false, false, 0.0, false},
      {"square_1024", 1, 1024, 1024, 1024, false, false, 0.0, false},
      // MLP fc1 at micro 32: y = x W^T, dW += dy^T x (beta 1: straight into .grad), dx = dy W.
      {"mlp_fc1_forward", 1, 32, 512, 784, false, true, 0.0, false},
      {"mlp_fc1_dweight", 1, 512, 784, 32, true, false, 1.0, false},
      {"mlp_fc1_dinput", 1, 32, 784, 512, false, false, 0.0, false},
      // CNN conv2 at micro 32 (im2col: K = 16*3*3 = 144, L = 14*14 = 196): y[i] = W col[i], one GEMM per
      // sample with W broadcast; dW += dy[i] col[i]^T per sample.
      {"cnn_conv2_forward", 32, 32, 196, 144, false, false, 0.0, false},
      {"cnn_conv2_dweight", 1, 32, 144, 196, false, true, 1.0, true},
  };
}

void gemm(benchmark::State& s, GemmCase g) {
  const Shape a_shape = g.ta ? Shape{g.k, g.m} : Shape{g.m, g.k};
  const Shape b_shape = g.tb ? Shape{g.n, g.k} : Shape{g.k, g.n};
  auto batched = [&](const Shape& sh) {
    Shape out{g.batch};
    out.insert(out.end(), sh.begin(), sh.end());
    return out;
  };
  Tensor a = randn(g.batch > 1 && g.a_batched ? batched(a_shape) : a_shape);
  Tensor b = randn(g.batch > 1 ? batched(b_shape) : b_shape);
  Tensor c = zeros(g.batch > 1 ? batched({g.m, g.n}) : Shape{g.m, g.n});
  for (auto _ : s) {
    kernels::gemm(a, g.ta, b, g.tb, c, 1.0, g.beta);
    benchmark::ClobberMemory();
  }
  set_flops(s, 2.0 * double(g.batch * g.m * g.n * g.k), kPeakFma);
}

}  // namespace

void register_gemm() {
  for (const GemmCase& g : gemm_cases())
    add(bench_name("gemm/", g.name), gemm, g)->Unit(benchmark::kMicrosecond);
}

}  // namespace ember::bench::cpu
