/// @file ops/elementwise.h @brief Differentiable elementwise ops with broadcasting, and Tensor operators.
#pragma once
#include <string_view>

#include "core/tensor.h"

namespace ember {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
/// x * Phi(x), Phi the standard normal CDF; approximate "none" (exact, erf) or "tanh"
/// (0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))), as torch.nn.functional.gelu.
Tensor gelu(const Tensor& x, std::string_view approximate = "none");
/// x * sigmoid(x).
Tensor silu(const Tensor& x);
/// log(1 + exp(x)), and x itself for x > 20 (torch.nn.functional.softplus with beta 1, threshold 20).
Tensor softplus(const Tensor& x);

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
