/// @file benchmarks/cpu/layers.cpp @brief The MLP-BN's and CNN-BN's GEMM/conv layers at micro-batch 32, one row per pass, timed as training runs them: the op (ember::linear / ember::conv2d: bias, im2col / col2im included) for the forward, its autograd node for each backward pass.
#include <benchmark/benchmark.h>

#include <memory>

#include "benchmarks/cpu/cpu_bench.h"
#include "benchmarks/cpu/model_layers.h"
#include "benchmarks/bench_util.h"
#include "benchmarks/table_reporter.h"
#include "ops/autograd/node.h"
#include "ops/functional.h"
#include "ops/functional_conv.h"

namespace ember::bench::cpu {
namespace {

struct LayerOperands {
  Tensor x, w, b;
};

LayerOperands make_operands(const ModelLayer& l) {
  const int64_t n = kMicroBatch;
  if (l.conv) return {randn({n, l.in, l.size, l.size}), randn({l.out, l.in, l.kernel, l.kernel}), randn({l.out})};
  return {randn({n, l.in}), randn({l.out, l.in}), randn({l.out})};
}

/// Which operands require a gradient, so that the node's backward computes exactly one pass: the input
/// gradient (x only), or the weight gradient (weight and bias, the layer's parameters, whose gradients
/// one node computes together, as in training). The forward records a node for the parameters, as training's does.
void require_grads(LayerOperands& o, Pass p) {
  const bool input = p == Pass::BackwardInput;
  o.x.set_requires_grad(input);
  o.w.set_requires_grad(!input);
  o.b.set_requires_grad(!input);
}

Tensor apply_layer(const ModelLayer& l, const LayerOperands& o) {
  return l.conv ? conv2d(o.x, o.w, o.b, 1, l.pad) : linear(o.x, o.w, o.b);
}

void time_forward(benchmark::State& s, const ModelLayer& l, const LayerOperands& o) {
  for (auto _ : s) {
    Tensor y = apply_layer(l, o);
    benchmark::DoNotOptimize(y.data_ptr());
  }
}

/// The node's backward on a fixed output gradient. One untimed call first allocates the weight's
/// .grad; the timed ones accumulate into it (beta = 1), as every micro-batch after a window's first.
void time_backward(benchmark::State& s, const ModelLayer& l, const LayerOperands& o) {
  const Tensor y = apply_layer(l, o);
  const std::shared_ptr<Node> node = y.grad_fn();
  const Tensor dy = randn(y.shape());
  node->apply(dy);
  for (auto _ : s) {
    std::vector<Tensor> grads = node->apply(dy);
    benchmark::DoNotOptimize(grads.data());
    benchmark::ClobberMemory();
  }
}

void layer(benchmark::State& s, ModelLayer l, Pass p) {
  LayerOperands o = make_operands(l);
  require_grads(o, p);
  if (p == Pass::Forward)
    time_forward(s, l, o);
  else
    time_backward(s, l, o);
  set_flops(s, l.flops(kMicroBatch), kPeakFma);
}

}  // namespace

void register_layers() {
  for (const ModelLayer& l : model_layers())
    for (Pass p : kPasses) add(bench_name("layer/", l.name, "_", pass_name(p)), layer, l, p)->Unit(benchmark::kMicrosecond);
}

}  // namespace ember::bench::cpu
