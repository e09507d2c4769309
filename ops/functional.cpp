/// @file ops/functional.cpp @brief linear, dropout, cross_entropy (ignore_index, label smoothing, three reductions) and mse_loss forward + backward nodes.
#include "ops/functional.h"

#include "ops/autograd/fused_grad.h"
#include "ops/ops.h"
#include "kernels/dispatch.h"
#include "kernels/dropout.h"
#include "kernels/elementwise.h"
#include "kernels/loss.h"
#include "kernels/matmul.h"

namespace ember {
namespace {

// ------------------------------------------------------------------------------------------ linear
class LinearBackward final : public Node {
 public:
  Tensor x, w;  // detached, contiguous
  bool has_bias = false;
  std::string name() const override { return "LinearBackward"; }
  void release_saved() override { x = w = Tensor(); }
  std::vector<Tensor> apply(const Tensor& grad_output) override {
    const Tensor g = grad_output.contiguous();
    const TensorOptions opts{g.dtype(), g.device()};
    Tensor gx, gw, gb;
    if (next_edges[0].valid()) {  // dx = g @ W
      gx = empty(x.shape(), opts);
      kernels::gemm(g, false, w, false, gx);
    }
    if (next_edges[1].valid()) {  // dW = g^T @ x, straight into W.grad when W is a leaf
      GradTarget t(next_edges[1], w.shape(), opts);
      kernels::gemm(g, true, x, false, t.buffer, 1.0, t.next_beta());
      gw = t.finish();
    }
    if (has_bias && next_edges[2].valid()) {  // db = g^T @ 1, also a GEMM into b.grad
      GradTarget t(next_edges[2], {w.size(0)}, opts);
      Tensor ones_col = ones({g.size(0), 1}, opts);
      Tensor col = t.buffer.view({w.size(0), 1});
      kernels::gemm(g, true, ones_col, false, col, 1.0, t.next_beta());
      gb = t.finish();
    }
    return has_bias ? std::vector<Tensor>{gx, gw, gb} : std::vector<Tensor>{gx, gw};
  }
};

// ------------------------------------------------------------------------------------------ dropout
class DropoutBackward final : public Node {
 public:
  double p = 0.0;
  uint64_t seed = 0, offset = 0;
  std::string name() const override { return "DropoutBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gc = g.contiguous();
    Tensor gx = empty(gc.shape(), TensorOptions{g.dtype(), g.device()});
    kernels::dropout(gc, gx, p, seed, offset);  // the same mask, recomputed from (seed, offset)
    return {gx};
  }
};

// ------------------------------------------------------------------------------------------ cross entropy
class CrossEntropyBackward final : public Node {
 public:
  Tensor logits, targets, lse;
  Tensor count;  // Reduction::Mean: the number of non-ignored targets, [1] in the logits' dtype
  Reduction reduction = Reduction::Mean;
  kernels::CrossEntropyParams params;
  std::string name() const override { return "CrossEntropyBackward"; }
  void release_saved() override { logits = targets = lse = count = Tensor(); }
  std::vector<Tensor> apply(const Tensor& g) override {
    const int64_t n = logits.size(0);
    // grad_losses [N]: g itself (None), or the scalar g (Sum) or g / count (Mean) broadcast.
    Tensor gl;
    {
      NoGradGuard ng;
      if (reduction == Reduction::None) gl = g.contiguous();
      else gl = (reduction == Reduction::Mean ? g.reshape({1}) / count : g.reshape({1})).expand({n}).contiguous();
    }
    Tensor gx = empty(logits.shape(), TensorOptions{g.dtype(), g.device()});
    kernels::cross_entropy_backward(logits, targets, lse, gl, gx, params);
    return {gx, Tensor()};
  }
};

/// count_not_ignored on the targets' device, as a [1] tensor of `dtype` (no host synchronization).
Tensor count_tensor(const Tensor& targets, int64_t ignore_index, DType dtype) {
  Tensor count = empty({1}, TensorOptions{DType::i64, targets.device()});
  kernels::count_not_ignored(targets, ignore_index, count);
  return count.to(dtype);
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  EMBER_CHECK(x.defined() && weight.defined(), "linear: undefined input or weight");
  EMBER_CHECK(weight.dim() == 2, "linear: weight must be [out, in], got ", describe(weight));
  EMBER_CHECK(x.dim() == 2 && x.size(1) == weight.size(1), "linear: expected input [N, ", weight.size(1),
              "] for weight ", describe(weight), ", got ", describe(x));
  EMBER_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), "linear: bias must be [",
              weight.size(0), "], got ", describe(bias));
  kernels::check_same_device("linear", x, weight);
  kernels::check_same_dtype("linear", x, weight);
  const Tensor xc = x.detach().contiguous(), wc = weight.detach().contiguous();
  Tensor y = empty({x.size(0), weight.size(0)}, TensorOptions{x.dtype(), x.device()});
  double beta = 0.0;
  if (bias.defined()) {  // y = broadcast(b), then the GEMM adds x @ W^T with beta = 1
    kernels::copy(bias.detach().unsqueeze(0).expand(y.shape()), y);
    beta = 1.0;
  }
  kernels::gemm(xc, false, wc, true, y, 1.0, beta);
  if (any_requires_grad({&x, &weight, &bias})) {
    auto node = std::make_shared<LinearBackward>();
    node->has_bias = bias.defined();
    node->x = xc;
    node->w = wc;
    if (bias.defined()) record(node, {&x, &weight, &bias}, y);
    else record(node, {&x, &weight}, y);
  }
  return y;
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  EMBER_CHECK(p >= 0.0 && p < 1.0, "dropout: p must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  Generator& g = gen ? *gen : default_generator();
  const uint64_t seed = g.seed, offset = g.offset;
  g.offset += static_cast<uint64_t>((x.numel() + 3) / 4 * 4);
  Tensor xc = x.detach().contiguous();
  Tensor y = empty(x.shape(), TensorOptions{x.dtype(), x.device()});
  kernels::dropout(xc, y, p, seed, offset);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<DropoutBackward>();
    node->p = p;
    node->seed = seed;
    node->offset = offset;
    record(node, {&x}, y);
  }
  return y;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, Reduction reduction) {
  return cross_entropy(logits, targets, CrossEntropyOptions{.reduction = reduction});
}

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options) {
  EMBER_CHECK(logits.defined() && targets.defined(), "cross_entropy: undefined input");
  EMBER_CHECK(logits.dim() == 2, "cross_entropy: logits must be [N, C], got ", describe(logits));
  EMBER_CHECK(targets.dtype() == DType::i64 && targets.dim() == 1 && targets.size(0) == logits.size(0),
              "cross_entropy: targets must be i64 [", logits.size(0), "], got ", describe(targets));
  kernels::check_same_device("cross_entropy", logits, targets);
  EMBER_CHECK(logits.size(0) > 0, "cross_entropy: empty batch ", describe(logits));
  const kernels::CrossEntropyParams params{options.ignore_index, options.label_smoothing};
  const Tensor lc = logits.detach().contiguous(), tc = targets.detach().contiguous();
  const int64_t n = logits.size(0);
  Tensor losses = empty({n}, TensorOptions{logits.dtype(), logits.device()});
  Tensor lse = empty({n}, TensorOptions{logits.dtype(), logits.device()});
  kernels::cross_entropy_forward(lc, tc, losses, lse, params);
  Tensor out, count;
  {
    NoGradGuard ng;
    if (options.reduction == Reduction::Mean) {  // sum over non-ignored rows / their count (0 / 0 = NaN)
      count = count_tensor(tc, options.ignore_index, logits.dtype());
      out = (sum(losses) / count).reshape({});
    } else {
      out = options.reduction == Reduction::Sum ? sum(losses) : losses;
    }
  }
  if (any_requires_grad({&logits})) {
    auto node = std::make_shared<CrossEntropyBackward>();
    node->logits = lc;
    node->targets = tc;
    node->lse = lse;
    node->count = count;
    node->reduction = options.reduction;
    node->params = params;
    record(node, {&logits, &targets}, out);
  }
  return out;
}

int64_t count_not_ignored(const Tensor& targets, int64_t ignore_index) {
  EMBER_CHECK(targets.defined() && targets.dtype() == DType::i64, "count_not_ignored: targets must be i64, got ",
              describe(targets));
  Tensor count = empty({1}, TensorOptions{DType::i64, targets.device()});
  kernels::count_not_ignored(targets.contiguous(), ignore_index, count);
  return count.to(Device::cpu()).to_vector<int64_t>()[0];
}

Tensor mse_loss(const Tensor& a, const Tensor& b, Reduction reduction) {
  EMBER_CHECK(a.defined() && b.defined() && a.shape() == b.shape(), "mse_loss: shapes differ: ", describe(a), " vs ",
              describe(b));
  Tensor d = a - b;
  Tensor sq = d * d;
  if (reduction == Reduction::None) return sq;
  return reduction == Reduction::Mean ? mean(sq) : sum(sq);
}

}  // namespace ember
