/// @file ops/elementwise.cpp @brief Elementwise ops: forward through kernels/elementwise.h, backward nodes reduce broadcast grads with sum_to.
#include "ops/elementwise.h"

#include "ops/autograd/node.h"
#include "ops/reduce.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"

namespace ember {
namespace {
using kernels::BinaryOp;
using kernels::UnaryOp;

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
      case BinaryOp::Add:
        if (need_a) ga = sum_to(g, a_shape);
        if (need_b) gb = sum_to(g, b_shape);
        break;
      case BinaryOp::Sub:
        if (need_a) ga = sum_to(g, a_shape);
        if (need_b) gb = sum_to(neg(g), b_shape);
        break;
      case BinaryOp::Mul:
        if (need_a) ga = sum_to(mul(g, b), a_shape);
        if (need_b) gb = sum_to(mul(g, a), b_shape);
        break;
      case BinaryOp::Div:
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
  kernels::check_same_device(name, a, b);
  kernels::check_same_dtype(name, a, b);
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
    if (op == BinaryOp::Mul) {
      if (node->need_b) node->a = a.detach();
      if (node->need_a) node->b = b.detach();
    } else if (op == BinaryOp::Div) {
      if (node->need_b) node->a = a.detach();
      node->b = b.detach();
    }
    record(node, {&a, &b}, out);
  }
  return out;
}

Tensor unary_op(UnaryOp op, const Tensor& x, double scalar = 0.0) {
  EMBER_CHECK(x.defined(), kernels::unary_op_name(op), ": undefined operand");
  Tensor out = empty(x.shape(), TensorOptions{x.dtype(), x.device()});
  kernels::unary(op, x, out, scalar);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<UnaryBackward>();
    node->op = op;
    node->scalar = scalar;
    if (op == UnaryOp::Exp || op == UnaryOp::Sigmoid || op == UnaryOp::Tanh) node->y = out.detach();
    if (op == UnaryOp::Log || op == UnaryOp::Relu || op == UnaryOp::Pow) node->x = x.detach();
    record(node, {&x}, out);
  }
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Div, a, b); }
Tensor add(const Tensor& a, double s) { return unary_op(UnaryOp::AddScalar, a, s); }
Tensor mul(const Tensor& a, double s) { return unary_op(UnaryOp::MulScalar, a, s); }
Tensor neg(const Tensor& x) { return unary_op(UnaryOp::Neg, x); }
Tensor exp(const Tensor& x) { return unary_op(UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary_op(UnaryOp::Log, x); }
Tensor pow(const Tensor& x, double e) { return unary_op(UnaryOp::Pow, x, e); }
Tensor relu(const Tensor& x) { return unary_op(UnaryOp::Relu, x); }
Tensor sigmoid(const Tensor& x) { return unary_op(UnaryOp::Sigmoid, x); }
Tensor tanh(const Tensor& x) { return unary_op(UnaryOp::Tanh, x); }

}  // namespace ember
