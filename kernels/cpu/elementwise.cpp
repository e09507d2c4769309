/// @file kernels/cpu/elementwise.cpp @brief CPU elementwise kernels (f32/f64; copy also converts to and from i64).
#include <cmath>

#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"

namespace ember::kernels::cpu {
namespace {

template <class T>
T unary_fn(UnaryOp op, T x, T s) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Relu: return x > T(0) ? x : T(0);
    case UnaryOp::Sigmoid: return T(1) / (T(1) + std::exp(-x));
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Pow: return std::pow(x, s);
    case UnaryOp::MulScalar: return x * s;
    case UnaryOp::AddScalar: return x + s;
  }
  return x;
}

/// d op / d x evaluated from input x and output y.
template <class T>
T unary_grad(UnaryOp op, T x, T y, T s) {
  switch (op) {
    case UnaryOp::Neg: return T(-1);
    case UnaryOp::Exp: return y;
    case UnaryOp::Log: return T(1) / x;
    case UnaryOp::Relu: return x > T(0) ? T(1) : T(0);
    case UnaryOp::Sigmoid: return y * (T(1) - y);
    case UnaryOp::Tanh: return T(1) - y * y;
    case UnaryOp::Pow: return s == T(0) ? T(0) : s * std::pow(x, s - T(1));
    case UnaryOp::MulScalar: return s;
    case UnaryOp::AddScalar: return T(1);
  }
  return T(0);
}

template <class T>
T binary_fn(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
  }
  return a;
}

template <class T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.data_ptr());
}

template <class F>
void visit_any(DType t, F&& f) {
  switch (t) {
    case DType::f32: f(type_tag<float>{}); break;
    case DType::f64: f(type_tag<double>{}); break;
    case DType::i64: f(type_tag<int64_t>{}); break;
  }
}

void fill(Tensor& out, double value) {
  visit_any(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = ptr<T>(out);
    const T v = static_cast<T>(value);
    const int64_t n = out.numel();
#pragma omp parallel for if (n > kParallelThreshold) schedule(static)
    for (int64_t i = 0; i < n; ++i) o[i] = v;
  });
}

void copy(const Tensor& src, Tensor& dst) {
  visit_any(src.dtype(), [&](auto stag) {
    using S = typename decltype(stag)::type;
    visit_any(dst.dtype(), [&](auto dtag) {
      using D = typename decltype(dtag)::type;
      const S* s = ptr<S>(src);
      D* d = ptr<D>(dst);
      for_each_offset<2>({&src, &dst}, [&](int64_t i, int64_t j) { d[j] = static_cast<D>(s[i]); });
    });
  });
}

void unary(UnaryOp op, const Tensor& x, Tensor& out, double scalar) {
  visit_floating(x.dtype(), "unary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = ptr<T>(x);
    T* o = ptr<T>(out);
    const T s = static_cast<T>(scalar);
    for_each_offset<2>({&x, &out}, [&](int64_t i, int64_t j) { o[j] = unary_fn<T>(op, xp[i], s); });
  });
}

void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx, double scalar) {
  visit_floating(gy.dtype(), "unary_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool uses_y = op == UnaryOp::Exp || op == UnaryOp::Sigmoid || op == UnaryOp::Tanh;
    const bool uses_x = op == UnaryOp::Log || op == UnaryOp::Relu || op == UnaryOp::Pow;
    const Tensor& v = uses_y ? y : (uses_x ? x : gy);
    const T* vp = ptr<T>(v);
    const T* g = ptr<T>(gy);
    T* o = ptr<T>(gx);
    const T s = static_cast<T>(scalar);
    for_each_offset<3>({&v, &gy, &gx}, [&](int64_t iv, int64_t ig, int64_t io) {
      o[io] = g[ig] * unary_grad<T>(op, uses_y ? T(0) : vp[iv], uses_y ? vp[iv] : T(0), s);
    });
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  visit_floating(a.dtype(), "binary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* ap = ptr<T>(a);
    const T* bp = ptr<T>(b);
    T* o = ptr<T>(out);
    for_each_offset<3>({&a, &b, &out}, [&](int64_t i, int64_t j, int64_t k) { o[k] = binary_fn<T>(op, ap[i], bp[j]); });
  });
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<ElementwiseKernels>(DeviceType::CPU);
  t.fill = fill;
  t.copy = copy;
  t.unary = unary;
  t.unary_backward = unary_backward;
  t.binary = binary;
});

}  // namespace ember::kernels::cpu
