/// @file kernels/cpu/elementwise.cpp @brief CPU elementwise kernels (f32/f64; copy also converts to and from i64); unary and binary ops instantiated per op from kernels/op_traits.h.
#include <cmath>
#include <cstdint>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"
#include "kernels/op_traits.h"

// glibc's vector math library (libmvec, linked by CMakeLists.txt) has 4-, 8- and 16-wide variants of these
// (_ZGVbN4v_erff, _ZGVdN8v_erff, _ZGVeN16v_erff, ...). <math.h> declares them `simd` only under -ffast-math;
// declared so here, the `omp simd` loops below call one variant per vector instead of libm once per element
// (GELU's erf was a quarter of a GPT step's time on the CPU, docs/benchmarks.md).
extern "C" {
float erff(float) __attribute__((simd("notinbranch")));
float expf(float) __attribute__((simd("notinbranch")));
double erf(double) __attribute__((simd("notinbranch")));
double exp(double) __attribute__((simd("notinbranch")));
}

namespace ember::kernels::cpu {
namespace {

template <class F>
void visit_any(DType t, F&& f) {
  switch (t) {
    case DType::f32: f(type_tag<float>{}); break;
    case DType::f64: f(type_tag<double>{}); break;
    case DType::i64: f(type_tag<int64_t>{}); break;
  }
}

/// o[i] = f(a[i]) and o[i] = f(a[i], b[i]) over n contiguous elements. The pointers are parameters (not
/// captured), so the `omp simd` loop vectorizes; f captures only scalars by value. Each loop is compiled
/// three times, for AVX-512, AVX2 and the baseline (SSE2), and map1 / map2 run the widest the CPU has:
/// 16, 8 or 4 floats per instruction. No FMA is enabled, so the three give the same values for + - * /;
/// erf and exp come from glibc's libmvec variants (declared below), within libm's ulp bounds.
#define EMBER_MAP_LOOPS(suffix, target)                                                     \
  template <class T, class F>                                                               \
  target void map1_##suffix(T* o, const T* a, int64_t n, F f) {                             \
    _Pragma("omp parallel for simd if (parallel : n > kParallelThreshold) schedule(static)")           \
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);                                          \
  }                                                                                         \
  template <class T, class F>                                                               \
  target void map2_##suffix(T* o, const T* a, const T* b, int64_t n, F f) {                 \
    _Pragma("omp parallel for simd if (parallel : n > kParallelThreshold) schedule(static)")           \
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);                                    \
  }
EMBER_MAP_LOOPS(avx512, __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"), optimize("fp-contract=off"))))
EMBER_MAP_LOOPS(avx2, __attribute__((target("avx2"), optimize("fp-contract=off"))))
EMBER_MAP_LOOPS(base, )
#undef EMBER_MAP_LOOPS

const bool kHasAvx512 = has_avx512();
const bool kHasAvx2 = has_avx2();

template <class T, class F>
void map1(T* o, const T* a, int64_t n, F f) {
  if (kHasAvx512) return map1_avx512(o, a, n, f);
  if (kHasAvx2) return map1_avx2(o, a, n, f);
  map1_base(o, a, n, f);
}

template <class T, class F>
void map2(T* o, const T* a, const T* b, int64_t n, F f) {
  if (kHasAvx512) return map2_avx512(o, a, b, n, f);
  if (kHasAvx2) return map2_avx2(o, a, b, n, f);
  map2_base(o, a, b, n, f);
}

void fill(Tensor& out, double value) {
  visit_any(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = data_as<T>(out);
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
      const S* s = data_as<S>(src);
      D* d = data_as<D>(dst);
      if (src.is_contiguous() && dst.is_contiguous()) {
        for_each_offset<2>({&src, &dst}, [&](int64_t i, int64_t j) { d[j] = static_cast<D>(s[i]); });
        return;
      }
      // Strided (a transpose made contiguous, e.g. attention's heads): row by row; rows whose elements
      // are adjacent in both (the common case) copy in a plain loop the compiler vectorizes.
      using Offsets = std::array<int64_t, 2>;
      for_each_row<2>({&src, &dst}, [&](const Offsets& base, int64_t n, const Offsets& step) {
        const S* __restrict__ in = s + base[0];
        D* __restrict__ out = d + base[1];
        if (step[0] == 1 && step[1] == 1) {
          for (int64_t j = 0; j < n; ++j) out[j] = static_cast<D>(in[j]);
        } else if (step[0] == 0 && step[1] == 1) {  // a broadcast row (conv2d's bias): a fill
          const D v = static_cast<D>(in[0]);
          for (int64_t j = 0; j < n; ++j) out[j] = v;
        } else {
          for (int64_t j = 0; j < n; ++j) out[j * step[1]] = static_cast<D>(in[j * step[0]]);
        }
      });
    });
  });
}

// Each entry point below dispatches with with_op (kernels/op_traits.h), so the loops are compiled once
// per op with the op a constant: the contiguous loops (map1 / map2) vectorize, which a switch on a
// runtime op inside the loop would prevent. Those loops are `omp simd`: element i is read before it is
// written, so an output that is one of the inputs (in place) is fine, and no runtime alias check falls
// back to scalar code. The file is compiled with -fno-trapping-math (CMakeLists.txt), which lets a
// select such as ReLU's gradient `g * (x > 0 ? 1 : 0)` vectorize; the values are the same.

void unary(UnaryOp op, const Tensor& x, Tensor& out, double scalar) {
  visit_floating(x.dtype(), "unary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = data_as<T>(x);
    T* o = data_as<T>(out);
    const T s = static_cast<T>(scalar);
    with_op(UnaryOpList{}, static_cast<int>(op), [&](auto op_tag) {
      using Op = typename decltype(op_tag)::type;
      const auto f = [s](T v) { return Op::template forward<HostMath>(v, s); };
      if (x.is_contiguous() && out.is_contiguous()) {  // same values as the general path, vectorizable
        map1(o, xp, out.numel(), f);
        return;
      }
      for_each_offset<2>({&x, &out}, [&](int64_t i, int64_t j) { o[j] = f(xp[i]); });
    });
  });
}

void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx, double scalar) {
  visit_floating(gy.dtype(), "unary_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* g = data_as<T>(gy);
    T* o = data_as<T>(gx);
    const T s = static_cast<T>(scalar);
    with_op(UnaryOpList{}, static_cast<int>(op), [&](auto op_tag) {
      using Op = typename decltype(op_tag)::type;
      // v: what the gradient reads (gy itself, unused, when the op saves nothing).
      const Tensor& v = Op::saves == Saves::Output ? y : (Op::saves == Saves::Input ? x : gy);
      const T* vp = data_as<T>(v);
      const auto df = [s](T vi, T gi) { return gi * Op::template grad<HostMath>(vi, s); };
      if (v.is_contiguous() && gy.is_contiguous() && gx.is_contiguous()) {
        map2(o, vp, g, gx.numel(), df);
        return;
      }
      for_each_offset<3>({&v, &gy, &gx}, [&](int64_t iv, int64_t ig, int64_t io) { o[io] = df(vp[iv], g[ig]); });
    });
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  visit_floating(a.dtype(), "binary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* ap = data_as<T>(a);
    const T* bp = data_as<T>(b);
    T* o = data_as<T>(out);
    with_op(BinaryOpList{}, static_cast<int>(op), [&](auto op_tag) {
      using Op = typename decltype(op_tag)::type;
      const auto f = [](T u, T v) { return Op::forward(u, v); };
      if (a.is_contiguous() && b.is_contiguous() && out.is_contiguous()) {  // no broadcast dimension
        map2(o, ap, bp, out.numel(), f);
        return;
      }
      for_each_offset<3>({&a, &b, &out}, [&](int64_t i, int64_t j, int64_t k) { o[k] = f(ap[i], bp[j]); });
    });
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
