/// @file ops/attention.cpp @brief causal_softmax (one fused kernel each way) and scaled_dot_product_attention on the batched matmul.
#include "ops/attention.h"

#include <cmath>

#include "ops/autograd/node.h"
#include "ops/elementwise.h"
#include "ops/linalg.h"
#include "ops/softmax.h"
#include "kernels/softmax.h"

namespace ember {
namespace {

struct CausalSoftmaxBackward final : Node {
  Tensor p;  // the probabilities, contiguous [..., T, T]
  double scale = 1.0;
  std::string name() const override { return "CausalSoftmaxBackward"; }
  void release_saved() override { p = Tensor(); }
  std::vector<Tensor> apply(const Tensor& g) override {
    const Tensor gc = g.contiguous();
    Tensor gs = empty(p.shape(), TensorOptions{p.dtype(), p.device()});
    kernels::causal_softmax_backward(p, gc, gs, scale);
    return {gs};
  }
};

void check_qkv(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  EMBER_CHECK(q.defined() && k.defined() && v.defined(), "scaled_dot_product_attention: undefined q, k or v");
  EMBER_CHECK((q.dim() == 3 || q.dim() == 4) && k.dim() == q.dim() && v.dim() == q.dim(),
              "scaled_dot_product_attention: expected q, k, v all 3-D [N, T, hd] or all 4-D [B, H, T, hd], got q ",
              describe(q), ", k ", describe(k), ", v ", describe(v));
  for (int64_t d = 0; d + 2 < q.dim(); ++d)
    EMBER_CHECK(k.size(d) == q.size(d) && v.size(d) == q.size(d),
                "scaled_dot_product_attention: leading (batch, head) dims differ: q ", describe(q), ", k ", describe(k),
                ", v ", describe(v));
  EMBER_CHECK(k.size(-1) == q.size(-1) && q.size(-1) > 0,
              "scaled_dot_product_attention: q and k need one positive head size, got q ", describe(q), ", k ",
              describe(k));
  EMBER_CHECK(v.size(-2) == k.size(-2), "scaled_dot_product_attention: k and v need one sequence length, got k ",
              describe(k), ", v ", describe(v));
  EMBER_CHECK(!causal || k.size(-2) == q.size(-2),
              "scaled_dot_product_attention: the causal mask needs as many keys as queries, got q ", describe(q),
              ", k ", describe(k));
}

}  // namespace

Tensor causal_softmax(const Tensor& scores, double scale) {
  EMBER_CHECK(scores.defined() && is_floating(scores.dtype()), "causal_softmax: expected a floating tensor, got ",
              describe(scores));
  EMBER_CHECK(scores.dim() >= 2 && scores.size(-1) == scores.size(-2),
              "causal_softmax: expected scores [..., T, T], got ", describe(scores));
  const Tensor x = scores.detach().contiguous();
  Tensor p = empty(x.shape(), TensorOptions{x.dtype(), x.device()});
  kernels::causal_softmax_forward(x, p, scale);
  if (any_requires_grad({&scores})) {
    auto node = std::make_shared<CausalSoftmaxBackward>();
    node->p = p.detach();  // an alias without grad_fn: p -> node -> p would be a reference cycle
    node->scale = scale;
    record(node, {&scores}, p);
  }
  return p;
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  check_qkv(q, k, v, causal);
  const int64_t t = q.size(-2), s = k.size(-2), hd = q.size(-1), hv = v.size(-1);
  const int64_t batch = q.dim() == 4 ? q.size(0) * q.size(1) : q.size(0);
  // Fold [B, H] into one batch: a view for contiguous inputs, a differentiable copy otherwise.
  const Tensor q3 = q.reshape({batch, t, hd}), k3 = k.reshape({batch, s, hd}), v3 = v.reshape({batch, s, hv});
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const Tensor scores = matmul(q3, k3.transpose(1, 2));  // [batch, T, S]; k^T goes to the GEMM as a flag
  const Tensor p = causal ? causal_softmax(scores, scale) : softmax(scores * scale, -1);
  Tensor y = matmul(p, v3);  // [batch, T, hv]
  Shape out = q.shape();
  out.back() = hv;
  return y.reshape(out);
}

}  // namespace ember
