/// @file ops/linalg.cpp @brief matmul forward/backward on kernels::gemm; a transposed view is passed with the trans flag instead of copied.
#include "ops/linalg.h"

#include "ops/autograd/node.h"
#include "kernels/matmul.h"

namespace ember {
namespace {

/// An operand as gemm wants it: (tensor, trans) with unit last stride, copying only when needed.
struct GemmOperand {
  Tensor t;
  bool trans = false;
};

GemmOperand as_operand(const Tensor& x, bool trans) {
  if (kernels::gemm_compatible(x)) return {x, trans};
  Tensor xt = x.transpose(-1, -2);
  if (kernels::gemm_compatible(xt)) return {xt, !trans};
  return {x.contiguous(), trans};
}

/// C = op(A) @ op(B) into a new tensor of shape out_shape.
Tensor gemm_new(const Tensor& a, bool ta, const Tensor& b, bool tb, const Shape& out_shape) {
  GemmOperand A = as_operand(a, ta), B = as_operand(b, tb);
  Tensor c = empty(out_shape, TensorOptions{a.dtype(), a.device()});
  kernels::gemm(A.t, A.trans, B.t, B.trans, c, 1.0, 0.0);
  return c;
}

struct MatmulBackward final : Node {
  Tensor a, b;            // detached; a only when need_b, b only when need_a
  Shape a_shape, b_shape;
  bool need_a = false, need_b = false;
  std::string name() const override { return "MatmulBackward"; }
  void release_saved() override { a = b = Tensor(); }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor ga, gb;
    if (need_a) ga = gemm_new(g, false, b, true, a_shape);  // g @ b^T (b 2-D broadcasts over batch)
    if (need_b) {
      if (b_shape.size() == 2 && a.dim() == 3) {
        // b was broadcast over the batch: gb = sum_i a_i^T g_i = A^T G with the batch folded into rows.
        Tensor a2 = a.reshape({a.size(0) * a.size(1), a.size(2)});
        Tensor g2 = g.reshape({g.size(0) * g.size(1), g.size(2)});
        gb = gemm_new(a2, true, g2, false, b_shape);
      } else {
        gb = gemm_new(a, true, g, false, b_shape);
      }
    }
    return {ga, gb};
  }
};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.defined() && b.defined(), "matmul: undefined operand");
  EMBER_CHECK(a.dim() >= 1 && a.dim() <= 3 && b.dim() >= 1 && b.dim() <= 3,
              "matmul: supports 1-D, 2-D and 3-D operands (a 3-D one is a batch); got ", describe(a), " @ ",
              describe(b));
  EMBER_CHECK(a.size(-1) == b.size(b.dim() == 1 ? 0 : -2), "matmul: inner dimensions differ: ", describe(a), " @ ",
              describe(b));
  EMBER_CHECK(a.dim() < 3 || b.dim() < 3 || a.size(0) == b.size(0), "matmul: batch sizes differ: ", describe(a),
              " @ ", describe(b));
  // As torch.matmul: a 1-D operand becomes a row (left) or a column (right) that is squeezed out again,
  // and a 2-D left operand is broadcast over the right one's batch (a stride-0 view, no copy). The view
  // nodes carry the gradient back (the expand's backward sums it over the batch).
  if (a.dim() == 1 || b.dim() == 1) {
    Tensor out = matmul(a.dim() == 1 ? a.unsqueeze(0) : a, b.dim() == 1 ? b.unsqueeze(-1) : b);
    if (a.dim() == 1) out = out.squeeze(-2);
    return b.dim() == 1 ? out.squeeze(-1) : out;
  }
  if (a.dim() == 2 && b.dim() == 3) return matmul(a.unsqueeze(0).expand({b.size(0), a.size(0), a.size(1)}), b);
  Shape out_shape = a.dim() == 3 ? Shape{a.size(0), a.size(1), b.size(-1)} : Shape{a.size(0), b.size(1)};
  Tensor out = gemm_new(a.detach(), false, b.detach(), false, out_shape);
  if (any_requires_grad({&a, &b})) {
    auto node = std::make_shared<MatmulBackward>();
    node->need_a = a.requires_grad();
    node->need_b = b.requires_grad();
    // ga = g @ b^T reads b; gb = a^T @ g reads a: keep only what the requested gradients need.
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    if (node->need_b) node->a = a.detach();
    if (node->need_a) node->b = b.detach();
    record(node, {&a, &b}, out);
  }
  return out;
}

}  // namespace ember
