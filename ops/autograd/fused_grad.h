/// @file ops/autograd/fused_grad.h @brief GradTarget: lets a backward GEMM write a parameter gradient straight into the leaf's .grad (beta = 1), Megatron-style.
#pragma once
#include "ops/autograd/node.h"

namespace ember {

/// The leaf whose .grad a gradient GEMM may write straight into: the edge leads to the leaf's
/// AccumulateGrad and the leaf's .grad is absent or a contiguous tensor of the leaf's shape/dtype/device.
inline Tensor fusable_leaf(const Edge& e) {
  auto* acc = dynamic_cast<AccumulateGrad*>(e.fn.get());
  if (!acc) return Tensor();
  Tensor leaf = acc->leaf();
  const Tensor g = leaf.grad();
  if (g.defined() && !(g.is_contiguous() && g.shape() == leaf.shape() && g.dtype() == leaf.dtype() &&
                       g.device() == leaf.device()))
    return Tensor();
  return leaf;
}

/// Where a parameter gradient is produced: into the leaf's .grad (fused: beta = 1 once it holds
/// values) or into a fresh tensor handed back to the engine.
struct GradTarget {
  Tensor leaf;    ///< defined when fused
  Tensor buffer;  ///< the tensor the GEMMs write
  bool has_values = false;

  GradTarget(const Edge& e, const Shape& shape, const TensorOptions& opts) : leaf(fusable_leaf(e)) {
    if (leaf.defined() && leaf.grad().defined()) {
      buffer = leaf.grad();
      has_values = true;
    } else {
      buffer = empty(shape, opts);
    }
  }
  /// beta of the next GEMM into the buffer (0 until something was written, then 1).
  double next_beta() {
    const double beta = has_values ? 1.0 : 0.0;
    has_values = true;
    return beta;
  }
  /// The gradient to return to the engine: undefined when it went straight into .grad.
  Tensor finish() {
    if (!leaf.defined()) return buffer;
    if (!leaf.grad().defined()) leaf.set_grad(buffer);
    notify_grad_accumulated(leaf);
    return Tensor();
  }
};

}  // namespace ember
