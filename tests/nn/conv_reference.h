/// @file tests/nn/conv_reference.h @brief Direct (naive, f64) convolution and max pooling references and tolerance helpers of the conv/pool/batch-norm tests.
#pragma once
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "tests/harness/backends.h"
#include "tests/harness/op_cases.h"

namespace ember::test::nnconv {

/// Direct convolution: out[n, co, oh, ow] = b[co] + sum_{ci, ki, kj} x[n, ci, oh*s - p + ki, ow*s - p + kj] *
/// w[co, ci, ki, kj], all in double; returns an f64 CPU tensor.
inline Tensor naive_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t pad) {
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const auto bv = b.defined() ? b.to_vector<double>() : std::vector<double>();
  const int64_t n = x.size(0), ci = x.size(1), h = x.size(2), wd = x.size(3);
  const int64_t co = w.size(0), kh = w.size(2), kw = w.size(3);
  const int64_t oh = (h + 2 * pad - kh) / stride + 1, ow = (wd + 2 * pad - kw) / stride + 1;
  std::vector<double> out(static_cast<size_t>(n * co * oh * ow));
  size_t at = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < co; ++o)
      for (int64_t r = 0; r < oh; ++r)
        for (int64_t c = 0; c < ow; ++c, ++at) {
          double acc = bv.empty() ? 0.0 : bv[static_cast<size_t>(o)];
          for (int64_t k = 0; k < ci; ++k)
            for (int64_t a = 0; a < kh; ++a)
              for (int64_t bb = 0; bb < kw; ++bb) {
                const int64_t ih = r * stride - pad + a, iw = c * stride - pad + bb;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                acc += xv[static_cast<size_t>(((i * ci + k) * h + ih) * wd + iw)] *
                       wv[static_cast<size_t>(((o * ci + k) * kh + a) * kw + bb)];
              }
          out[at] = acc;
        }
  return from_vector(out, {n, co, oh, ow}, TensorOptions{}.set_dtype(DType::f64));
}

/// Gradients of sum(conv2d(x, w, b) * r) by direct loops in double: {dx, dw, db}.
inline std::vector<Tensor> naive_conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& r, int64_t stride,
                                                 int64_t pad) {
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>(), rv = r.to_vector<double>();
  const int64_t n = x.size(0), ci = x.size(1), h = x.size(2), wd = x.size(3);
  const int64_t co = w.size(0), kh = w.size(2), kw = w.size(3), oh = r.size(2), ow = r.size(3);
  std::vector<double> dx(xv.size()), dw(wv.size()), db(static_cast<size_t>(co));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < co; ++o)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t c = 0; c < ow; ++c) {
          const double g = rv[static_cast<size_t>(((i * co + o) * oh + y) * ow + c)];
          db[static_cast<size_t>(o)] += g;
          for (int64_t k = 0; k < ci; ++k)
            for (int64_t a = 0; a < kh; ++a)
              for (int64_t bb = 0; bb < kw; ++bb) {
                const int64_t ih = y * stride - pad + a, iw = c * stride - pad + bb;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                const size_t xi = static_cast<size_t>(((i * ci + k) * h + ih) * wd + iw);
                const size_t wi = static_cast<size_t>(((o * ci + k) * kh + a) * kw + bb);
                dx[xi] += g * wv[wi];
                dw[wi] += g * xv[xi];
              }
        }
  const TensorOptions f64 = TensorOptions{}.set_dtype(DType::f64);
  return {from_vector(dx, x.shape(), f64), from_vector(dw, w.shape(), f64), from_vector(db, {co}, f64)};
}

/// Direct max pooling with -inf padding; also returns the argmax (flat index in the plane, first maximum).
inline Tensor naive_max_pool2d(const Tensor& x, int64_t k, int64_t stride, int64_t pad,
                               std::vector<int64_t>* argmax = nullptr) {
  const auto xv = x.to_vector<double>();
  const int64_t h = x.size(-2), w = x.size(-1), planes = x.numel() / (h * w);
  const int64_t oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
  std::vector<double> out;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t r = 0; r < oh; ++r)
      for (int64_t c = 0; c < ow; ++c) {
        double best = -std::numeric_limits<double>::infinity();
        int64_t arg = -1;
        for (int64_t a = 0; a < k; ++a)
          for (int64_t b = 0; b < k; ++b) {
            const int64_t ih = r * stride - pad + a, iw = c * stride - pad + b;
            if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
            const double v = xv[static_cast<size_t>((p * h + ih) * w + iw)];
            if (arg < 0 || v > best) {
              best = v;
              arg = ih * w + iw;
            }
          }
        out.push_back(best);
        if (argmax) argmax->push_back(arg);
      }
  Shape s = x.shape();
  s[s.size() - 2] = oh;
  s[s.size() - 1] = ow;
  return from_vector(out, s, TensorOptions{}.set_dtype(DType::f64));
}

/// CHECKs allclose(got, want) and prints the first offending element on failure.
inline bool check_close(const Tensor& got, const Tensor& want, double rtol, double atol) {
  std::string why;
  const bool ok = allclose(got, want, rtol, atol, &why);
  INFO(why);
  CHECK(ok);
  return ok;
}

inline bool check_close(const Tensor& got, const Tensor& want, Tolerance tol) {
  return check_close(got, want, tol.rtol, tol.atol);
}

inline const TensorOptions kF64 = TensorOptions{}.set_dtype(DType::f64);

}  // namespace ember::test::nnconv
