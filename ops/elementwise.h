/// @file ops/elementwise.h @brief Differentiable elementwise ops with broadcasting, and Tensor operators.
#pragma once
#include <string_view>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/op_traits.h"

namespace ember {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);

/// y = Op(x; scalar) with its backward, for an op of UnaryOpList (kernels/op_traits.h), named at run time
/// by kernels::unary_op_v<Op>. The unary functions below are this for one op each, so adding a unary
/// op takes its trait, one line here and its test case (docs/contributing.md).
Tensor unary(kernels::UnaryOp op, const Tensor& x, double scalar = 0.0);

inline Tensor add(const Tensor& a, double s) { return unary(kernels::unary_op_v<kernels::op::AddScalar>, a, s); }
inline Tensor mul(const Tensor& a, double s) { return unary(kernels::unary_op_v<kernels::op::MulScalar>, a, s); }
inline Tensor neg(const Tensor& x) { return unary(kernels::unary_op_v<kernels::op::Neg>, x); }
inline Tensor exp(const Tensor& x) { return unary(kernels::unary_op_v<kernels::op::Exp>, x); }
inline Tensor log(const Tensor& x) { return unary(kernels::unary_op_v<kernels::op::Log>, x); }
inline Tensor pow(const Tensor& x, double exponent) {
  return unary(kernels::unary_op_v<kernels::op::Pow>, x, exponent);
}
inline Tensor relu(const Tensor& x) { return unary(kernels::unary_op_v<kernels::op::Relu>, x); }
inline Tensor sigmoid(const Tensor& x) { return unary(kernels::unary_op_v<kernels::op::Sigmoid>, x); }
inline Tensor tanh(const Tensor& x) { return unary(kernels::unary_op_v<kernels::op::Tanh>, x); }
/// x * Phi(x), Phi the standard normal CDF; approximate "none" (exact, erf) or "tanh"
/// (0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))), as torch.nn.functional.gelu.
inline Tensor gelu(const Tensor& x, std::string_view approximate = "none") {
  EMBER_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate must be \"none\" or \"tanh\", got \"",
              approximate, "\"");
  return approximate == "none" ? unary(kernels::unary_op_v<kernels::op::Gelu>, x)
                               : unary(kernels::unary_op_v<kernels::op::GeluTanh>, x);
}
/// x * sigmoid(x).
inline Tensor silu(const Tensor& x) { return unary(kernels::unary_op_v<kernels::op::Silu>, x); }
/// log(1 + exp(x)), and x itself for x > 20 (torch.nn.functional.softplus with beta 1, threshold 20).
inline Tensor softplus(const Tensor& x) { return unary(kernels::unary_op_v<kernels::op::Softplus>, x); }

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }
inline Tensor operator+(double s, const Tensor& a) { return add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return add(a, -s); }
inline Tensor operator-(double s, const Tensor& a) { return add(neg(a), s); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return mul(a, 1.0 / s); }
inline Tensor operator/(double s, const Tensor& a) { return mul(pow(a, -1.0), s); }

}  // namespace ember
