/// @file kernels/op_traits.h @brief One definition per elementwise op (forward, gradient, what the backward saves); the op lists every backend, the ops layer and the test harness are instantiated from.
//
// A unary op is a struct with
//   name                      the op's name in errors and backward nodes ("gelu"),
//   saves                     what its backward reads: Saves::Input (x), Saves::Output (y) or Saves::Nothing,
//   forward<M>(x, s)          y = f(x; s), s the op's scalar (pow's exponent, mul_scalar's factor; else unused),
//   grad<M>(v, s)             dy/dx from v = x, y or nothing (as `saves` says),
// templated on the math M: HostMath below (std::, f32 and f64) for the CPU kernels, DeviceMath in
// kernels/cuda/elementwise.cu (expf, erff, __fmul_rn..., f32) for the CUDA ones. M::mul_rn(a, b) is a
// product that must round on its own: the CUDA kernels are compiled with FMA contraction (nvcc, and the
// emulator like it), the CPU ones without, so a product that feeds a + or - is written M::mul_rn where
// CPU and CUDA must agree bitwise. A binary op has `name` and forward(a, b) (no math functions).
//
// UnaryOpList / BinaryOpList fix the order: UnaryOp / BinaryOp are indices into them, the name tables
// (kernels/elementwise.cpp), the CPU loops, the CUDA kernels, the ops layer's save rule and the test
// harness's op table are all instantiated from the lists. Adding an op: docs/contributing.md.
#pragma once
#include <cmath>
#include <type_traits>

#include "kernels/strided.h"

namespace ember::kernels {

// ---------------------------------------------------------------------------------- type lists

template <class... Ops>
struct OpList {
  static constexpr int size = sizeof...(Ops);
};
template <class Op>
struct OpTag {
  using type = Op;
};

namespace detail {
template <class Op, class... Ops>
constexpr int index_in() {
  int i = 0, found = -1;
  ((std::is_same_v<Op, Ops> ? (found = i++) : i++), ...);
  return found;
}
}  // namespace detail

/// Position of Op in an OpList (-1 when absent).
template <class Op, class List>
inline constexpr int op_index = -1;
template <class Op, class... Ops>
inline constexpr int op_index<Op, OpList<Ops...>> = detail::index_in<Op, Ops...>();

/// f(OpTag<Op>{}) for every op of the list, in order.
template <class... Ops, class F>
constexpr void for_each_op(OpList<Ops...>, F&& f) {
  (f(OpTag<Ops>{}), ...);
}

/// f(OpTag<Op>{}) for the op at `index` (nothing when out of range): compiles f once per op, so the op
/// is a compile-time constant inside f.
template <class... Ops, class F>
void with_op(OpList<Ops...>, int index, F&& f) {
  int i = 0;
  (void)((i++ == index && (f(OpTag<Ops>{}), true)) || ...);
}

// ---------------------------------------------------------------------------------- math

/// What a unary op's backward reads.
enum class Saves { Nothing, Input, Output };

/// The CPU kernels' math: std:: functions in T (f32 or f64); they are compiled without FMA contraction,
/// so mul_rn is a plain product.
struct HostMath {
  template <class T> static T exp(T x) { return std::exp(x); }
  template <class T> static T log(T x) { return std::log(x); }
  template <class T> static T tanh(T x) { return std::tanh(x); }
  template <class T> static T pow(T x, T y) { return std::pow(x, y); }
  template <class T> static T erf(T x) { return std::erf(x); }
  template <class T> static T log1p(T x) { return std::log1p(x); }
  template <class T> static T mul_rn(T a, T b) { return a * b; }
};

// ---------------------------------------------------------------------------------- unary ops

namespace op {

struct Neg {
  static constexpr const char* name = "neg";
  static constexpr Saves saves = Saves::Nothing;
  template <class M, class T> EMBER_HD static T forward(T x, T) { return -x; }
  template <class M, class T> EMBER_HD static T grad(T, T) { return T(-1); }
};

struct Exp {
  static constexpr const char* name = "exp";
  static constexpr Saves saves = Saves::Output;
  template <class M, class T> EMBER_HD static T forward(T x, T) { return M::exp(x); }
  template <class M, class T> EMBER_HD static T grad(T y, T) { return y; }
};

struct Log {
  static constexpr const char* name = "log";
  static constexpr Saves saves = Saves::Input;
  template <class M, class T> EMBER_HD static T forward(T x, T) { return M::log(x); }
  template <class M, class T> EMBER_HD static T grad(T x, T) { return T(1) / x; }
};

struct Relu {
  static constexpr const char* name = "relu";
  static constexpr Saves saves = Saves::Input;
  template <class M, class T> EMBER_HD static T forward(T x, T) { return x > T(0) ? x : T(0); }
  template <class M, class T> EMBER_HD static T grad(T x, T) { return x > T(0) ? T(1) : T(0); }
};

struct Sigmoid {
  static constexpr const char* name = "sigmoid";
  static constexpr Saves saves = Saves::Output;
  template <class M, class T> EMBER_HD static T forward(T x, T) { return T(1) / (T(1) + M::exp(-x)); }
  template <class M, class T> EMBER_HD static T grad(T y, T) { return y * (T(1) - y); }
};

struct Tanh {
  static constexpr const char* name = "tanh";
  static constexpr Saves saves = Saves::Output;
  template <class M, class T> EMBER_HD static T forward(T x, T) { return M::tanh(x); }
  template <class M, class T> EMBER_HD static T grad(T y, T) { return T(1) - M::mul_rn(y, y); }
};

/// x^s.
struct Pow {
  static constexpr const char* name = "pow";
  static constexpr Saves saves = Saves::Input;
  template <class M, class T> EMBER_HD static T forward(T x, T s) { return M::pow(x, s); }
  template <class M, class T> EMBER_HD static T grad(T x, T s) { return s == T(0) ? T(0) : s * M::pow(x, s - T(1)); }
};

struct MulScalar {
  static constexpr const char* name = "mul_scalar";
  static constexpr Saves saves = Saves::Nothing;
  template <class M, class T> EMBER_HD static T forward(T x, T s) { return x * s; }
  template <class M, class T> EMBER_HD static T grad(T, T s) { return s; }
};

struct AddScalar {
  static constexpr const char* name = "add_scalar";
  static constexpr Saves saves = Saves::Nothing;
  template <class M, class T> EMBER_HD static T forward(T x, T s) { return x + s; }
  template <class M, class T> EMBER_HD static T grad(T, T) { return T(1); }
};

/// x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) (PyTorch's gelu, approximate="none").
/// d/dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi): for |x| large Phi is 0 or 1 and
/// x phi(x) underflows to 0 (exp(-inf) = 0 even where x^2 overflows), so no inf or NaN.
struct Gelu {
  static constexpr const char* name = "gelu";
  static constexpr Saves saves = Saves::Input;
  static constexpr double kInvSqrt2 = 0.70710678118654752440;
  static constexpr double kInvSqrt2Pi = 0.39894228040143267794;
  template <class M, class T> EMBER_HD static T forward(T x, T) {
    return T(0.5) * x * (T(1) + M::erf(x * T(kInvSqrt2)));
  }
  template <class M, class T> EMBER_HD static T grad(T x, T) {
    const T cdf = M::mul_rn(T(0.5), T(1) + M::erf(x * T(kInvSqrt2)));
    const T pdf = T(kInvSqrt2Pi) * M::exp(T(-0.5) * x * x);
    return cdf + M::mul_rn(x, pdf);
  }
};

/// 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3) (PyTorch's gelu, approximate="tanh").
/// d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2), t = tanh(u): for |x| large
/// t = +-1 exactly, so 1 - t^2 = 0 and the second term is 0 (x^2 finite for |x| < 1.8e19).
struct GeluTanh {
  static constexpr const char* name = "gelu_tanh";
  static constexpr Saves saves = Saves::Input;
  static constexpr double kBeta = 0.79788456080286535588;  // sqrt(2 / pi)
  static constexpr double kKappa = 0.044715;
  template <class M, class T> EMBER_HD static T forward(T x, T) {
    const T u = T(kBeta) * (x + M::mul_rn(T(kKappa), x * x * x));
    return T(0.5) * x * (T(1) + M::tanh(u));
  }
  template <class M, class T> EMBER_HD static T grad(T x, T) {
    const T x2 = x * x;
    const T t = M::tanh(T(kBeta) * (x + M::mul_rn(T(kKappa), x2 * x)));
    const T du = T(kBeta) * (T(1) + M::mul_rn(T(3 * kKappa), x2));
    const T dt = T(1) - M::mul_rn(t, t);
    return M::mul_rn(T(0.5), T(1) + t) + M::mul_rn(T(0.5) * x * dt, du);
  }
};

/// x * sigmoid(x) = x / (1 + exp(-x)); d/dx = sigmoid(x) (1 + x (1 - sigmoid(x))). For x -> -inf,
/// exp(-x) = inf makes sigmoid exactly 0 (value -0, gradient 0); for x -> +inf sigmoid = 1.
struct Silu {
  static constexpr const char* name = "silu";
  static constexpr Saves saves = Saves::Input;
  template <class M, class T> EMBER_HD static T forward(T x, T) { return x / (T(1) + M::exp(-x)); }
  template <class M, class T> EMBER_HD static T grad(T x, T) {
    const T sig = T(1) / (T(1) + M::exp(-x));
    return sig * (T(1) + M::mul_rn(x, T(1) - sig));
  }
};

/// log(1 + exp(x)), PyTorch's softplus with beta = 1, threshold = 20: x itself above the threshold
/// (log(1 + e^x) - x = log1p(e^-x) < 2.1e-9 there), so exp never overflows; d/dx = sigmoid(x) =
/// z / (z + 1) with z = exp(x) <= exp(20), and 1 above the threshold.
struct Softplus {
  static constexpr const char* name = "softplus";
  static constexpr Saves saves = Saves::Input;
  static constexpr double kThreshold = 20.0;
  template <class M, class T> EMBER_HD static T forward(T x, T) {
    return x > T(kThreshold) ? x : M::log1p(M::exp(x));
  }
  template <class M, class T> EMBER_HD static T grad(T x, T) {
    const T z = M::exp(x > T(kThreshold) ? T(0) : x);
    return x > T(kThreshold) ? T(1) : z / (z + T(1));
  }
};

}  // namespace op

using UnaryOpList = OpList<op::Neg, op::Exp, op::Log, op::Relu, op::Sigmoid, op::Tanh, op::Pow, op::MulScalar,
                           op::AddScalar, op::Gelu, op::GeluTanh, op::Silu, op::Softplus>;

// ---------------------------------------------------------------------------------- binary ops

namespace op {
struct Add {
  static constexpr const char* name = "add";
  template <class T> EMBER_HD static T forward(T a, T b) { return a + b; }
};
struct Sub {
  static constexpr const char* name = "sub";
  template <class T> EMBER_HD static T forward(T a, T b) { return a - b; }
};
struct Mul {
  static constexpr const char* name = "mul";
  template <class T> EMBER_HD static T forward(T a, T b) { return a * b; }
};
struct Div {
  static constexpr const char* name = "div";
  template <class T> EMBER_HD static T forward(T a, T b) { return a / b; }
};
}  // namespace op

using BinaryOpList = OpList<op::Add, op::Sub, op::Mul, op::Div>;

// ---------------------------------------------------------------------------------- op ids

/// A unary op at run time: its index in UnaryOpList (unary_op_v<op::Exp>); kernels::unary and the
/// backend tables take it, the backends turn it back into the trait with with_op.
enum class UnaryOp : int {};
/// A binary op at run time: its index in BinaryOpList.
enum class BinaryOp : int {};

template <class Op>
inline constexpr UnaryOp unary_op_v = [] {
  static_assert(op_index<Op, UnaryOpList> >= 0, "not an op of UnaryOpList");
  return UnaryOp{op_index<Op, UnaryOpList>};
}();
template <class Op>
inline constexpr BinaryOp binary_op_v = [] {
  static_assert(op_index<Op, BinaryOpList> >= 0, "not an op of BinaryOpList");
  return BinaryOp{op_index<Op, BinaryOpList>};
}();

}  // namespace ember::kernels
