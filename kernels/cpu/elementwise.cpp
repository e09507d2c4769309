/// @file kernels/cpu/elementwise.cpp @brief CPU elementwise kernels (f32/f64; copy also converts to and from i64).
#include <cmath>
#include <type_traits>

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

/// Calls f(std::integral_constant<UnaryOp, op>{}): the loop body is compiled once per op with the
/// switch folded away, so the contiguous loops below vectorize (a switch on a runtime op inside the
/// loop does not). Those loops (map1 / map2) are `omp simd`: element i is read before it is written, so
/// an output that is one of the inputs (in place) is fine, and no runtime alias check falls back to
/// scalar code. The file is compiled with -fno-trapping-math (CMakeLists.txt), which lets a select
/// such as ReLU's gradient `g * (x > 0 ? 1 : 0)` vectorize; the values are the same.
template <class F>
void with_unary_op(UnaryOp op, F&& f) {
  using O = UnaryOp;
  switch (op) {
    case O::Neg: f(std::integral_constant<O, O::Neg>{}); return;
    case O::Exp: f(std::integral_constant<O, O::Exp>{}); return;
    case O::Log: f(std::integral_constant<O, O::Log>{}); return;
    case O::Relu: f(std::integral_constant<O, O::Relu>{}); return;
    case O::Sigmoid: f(std::integral_constant<O, O::Sigmoid>{}); return;
    case O::Tanh: f(std::integral_constant<O, O::Tanh>{}); return;
    case O::Pow: f(std::integral_constant<O, O::Pow>{}); return;
    case O::MulScalar: f(std::integral_constant<O, O::MulScalar>{}); return;
    case O::AddScalar: f(std::integral_constant<O, O::AddScalar>{}); return;
  }
}

template <class F>
void with_binary_op(BinaryOp op, F&& f) {
  using O = BinaryOp;
  switch (op) {
    case O::Add: f(std::integral_constant<O, O::Add>{}); return;
    case O::Sub: f(std::integral_constant<O, O::Sub>{}); return;
    case O::Mul: f(std::integral_constant<O, O::Mul>{}); return;
    case O::Div: f(std::integral_constant<O, O::Div>{}); return;
  }
}

template <class F>
void visit_any(DType t, F&& f) {
  switch (t) {
    case DType::f32: f(type_tag<float>{}); break;
    case DType::f64: f(type_tag<double>{}); break;
    case DType::i64: f(type_tag<int64_t>{}); break;
  }
}

/// o[i] = f(a[i]) and o[i] = f(a[i], b[i]) over n contiguous elements. The pointers are parameters (not
/// captured), so the `omp simd` loop vectorizes; f captures only scalars by value.
template <class T, class F>
void map1(T* o, const T* a, int64_t n, F f) {
#pragma omp parallel for simd if (n > kParallelThreshold) schedule(static)
  for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
}

template <class T, class F>
void map2(T* o, const T* a, const T* b, int64_t n, F f) {
#pragma omp parallel for simd if (n > kParallelThreshold) schedule(static)
  for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);
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
    if (x.is_contiguous() && out.is_contiguous()) {  // same values as the general path, vectorizable
      const int64_t n = out.numel();
      with_unary_op(op, [&](auto c) { map1(o, xp, n, [s](T v) { return unary_fn<T>(decltype(c)::value, v, s); }); });
      return;
    }
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
    if (v.is_contiguous() && gy.is_contiguous() && gx.is_contiguous()) {
      const int64_t n = gx.numel();
      with_unary_op(op, [&](auto c) {
        constexpr UnaryOp O = decltype(c)::value;
        constexpr bool on_y = O == UnaryOp::Exp || O == UnaryOp::Sigmoid || O == UnaryOp::Tanh;
        map2(o, vp, g, n, [s](T v, T gi) { return gi * unary_grad<T>(O, on_y ? T(0) : v, on_y ? v : T(0), s); });
      });
      return;
    }
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
    if (a.is_contiguous() && b.is_contiguous() && out.is_contiguous()) {  // no broadcast dimension
      const int64_t n = out.numel();
      with_binary_op(op, [&](auto c) {
        map2(o, ap, bp, n, [](T x, T y) { return binary_fn<T>(decltype(c)::value, x, y); });
      });
      return;
    }
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
