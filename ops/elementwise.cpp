/// @file ops/elementwise.cpp @brief Elementwise ops: forward through kernels/elementwise.h, backward nodes reduce broadcast grads with sum_to.
#include "ops/elementwise.h"

#include "ops/autograd/node.h"
#include "ops/reduce.h"
#include "kernels/elementwise.h"

namespace ember {
namespace {
using kernels::BinaryOp;
using kernels::Saves;
using kernels::UnaryOp;
namespace op = kernels::op;
template <class Op>
constexpr BinaryOp kBinary = kernels::binary_op_v<Op>;

struct BinaryBackward final : Node {
  BinaryOp op;
  Tensor a, b;  // saved (detached) only where the formula needs them
  Shape a_shape, b_shape;
  bool need_a = false, need_b = false;
  std::string name() const override { return std::string(kernels::binary_op_name(op)) + "Backward"; }
  void release_saved() override { a = b = Tensor(); }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor ga, gb;
    switch (op) {
      case kBinary<op::Add>:
        if (need_a) ga = sum_to(g, a_shape);
        if (need_b) gb = sum_to(g, b_shape);
        break;
      case kBinary<op::Sub>:
        if (need_a) ga = sum_to(g, a_shape);
        if (need_b) gb = sum_to(neg(g), b_shape);
        break;
      case kBinary<op::Mul>:
        if (need_a) ga = sum_to(mul(g, b), a_shape);
        if (need_b) gb = sum_to(mul(g, a), b_shape);
        break;
      case kBinary<op::Div>:
        if (need_a) ga = sum_to(div(g, b), a_shape);
        if (need_b) gb = sum_to(neg(div(mul(g, a), mul(b, b))), b_shape);
        break;
    }
    return {ga, gb};
  }
};

struct UnaryBackward final : Node {
  UnaryOp op;
  double scalar = 0.0;
  Tensor x, y;
  std::string name() const override { return std::string(kernels::unary_op_name(op)) + "Backward"; }
  void release_saved() override { x = y = Tensor(); }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gx = empty_like(g);
    kernels::unary_backward(op, x, y, g, gx, scalar);
    return {gx};
  }
};

Tensor binary_op(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = kernels::binary_op_name(op);
  EMBER_CHECK(a.defined() && b.defined(), name, ": undefined operand");
  // Devices and dtypes are checked once, by kernels::binary (with this op's name).
  Tensor out = empty(broadcast_shapes(a.shape(), b.shape(), name), TensorOptions{a.dtype(), a.device()});
  kernels::binary(op, a, b, out);
  if (any_requires_grad({&a, &b})) {
    auto node = std::make_shared<BinaryBackward>();
    node->op = op;
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    node->need_a = a.requires_grad();
    node->need_b = b.requires_grad();
    // Save only what the requested gradients read: d(a*b) = (g*b, g*a); d(a/b) = (g/b, -g*a/b^2).
    if (op == kBinary<op::Mul>) {
      if (node->need_b) node->a = a.detach();
      if (node->need_a) node->b = b.detach();
    } else if (op == kBinary<op::Div>) {
      if (node->need_b) node->a = a.detach();
      node->b = b.detach();
    }
    record(node, {&a, &b}, out);
  }
  return out;
}

/// y = Op(x; scalar); the backward saves x or y as the trait's `saves` says.
template <class Op>
Tensor unary_op(const Tensor& x, double scalar = 0.0) {
  constexpr UnaryOp kOp = kernels::unary_op_v<Op>;
  EMBER_CHECK(x.defined(), Op::name, ": undefined operand");
  Tensor out = empty(x.shape(), TensorOptions{x.dtype(), x.device()});
  kernels::unary(kOp, x, out, scalar);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<UnaryBackward>();
    node->op = kOp;
    node->scalar = scalar;
    if constexpr (Op::saves == Saves::Input) node->x = x.detach();
    if constexpr (Op::saves == Saves::Output) node->y = out.detach();
    record(node, {&x}, out);
  }
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary_op(kBinary<op::Add>, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op(kBinary<op::Sub>, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(kBinary<op::Mul>, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op(kBinary<op::Div>, a, b); }
Tensor unary(UnaryOp op, const Tensor& x, double scalar) {
  Tensor out;
  kernels::with_op(kernels::UnaryOpList{}, static_cast<int>(op),
                   [&](auto tag) { out = unary_op<typename decltype(tag)::type>(x, scalar); });
  EMBER_CHECK(out.defined(), "unary: op index ", static_cast<int>(op), " is not an op of UnaryOpList");
  return out;
}

}  // namespace ember
