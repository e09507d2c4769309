/// @file tests/harness/naive_attention.cpp @brief Naive references of the attention ops: the causal softmax and scaled dot-product attention as plain loops in double.
#include "tests/harness/naive_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ember::test {
namespace {

/// Softmax of row[0..n) written to out[0..n), out[n..len) = 0.
void masked_softmax_row(const double* row, int64_t n, int64_t len, double* out) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, row[j]);
  double s = 0.0;
  for (int64_t j = 0; j < n; ++j) s += std::exp(row[j] - mx);
  for (int64_t j = 0; j < len; ++j) out[j] = j < n ? std::exp(row[j] - mx) / s : 0.0;
}

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

}  // namespace

NdArray naive_causal_softmax(const NdArray& x, double scale) {
  const int64_t t = x.shape.back(), rows = numel(x.shape) / std::max<int64_t>(t, 1);
  NdArray r{x.shape, std::vector<double>(x.v.size())};
  std::vector<double> z(static_cast<size_t>(t));
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t i = row % t;
    for (int64_t j = 0; j < t; ++j) z[static_cast<size_t>(j)] = scale * x.v[static_cast<size_t>(row * t + j)];
    masked_softmax_row(z.data(), i + 1, t, r.v.data() + row * t);
  }
  return r;
}

NdArray naive_attention(const NdArray& q, const NdArray& k, const NdArray& v, bool causal) {
  const int64_t t = q.shape[q.shape.size() - 2], hd = q.shape.back();
  const int64_t s = k.shape[k.shape.size() - 2], hv = v.shape.back();
  const int64_t batch = numel(q.shape) / (t * hd);
  Shape out = q.shape;
  out.back() = hv;
  NdArray r{out, std::vector<double>(static_cast<size_t>(batch * t * hv))};
  std::vector<double> sc(static_cast<size_t>(s)), p(static_cast<size_t>(s));
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (int64_t b = 0; b < batch; ++b) {
    const double* qb = q.v.data() + b * t * hd;
    const double* kb = k.v.data() + b * s * hd;
    const double* vb = v.v.data() + b * s * hv;
    for (int64_t i = 0; i < t; ++i) {
      for (int64_t j = 0; j < s; ++j) {
        double dot = 0.0;
        for (int64_t d = 0; d < hd; ++d) dot += qb[i * hd + d] * kb[j * hd + d];
        sc[static_cast<size_t>(j)] = dot * scale;
      }
      masked_softmax_row(sc.data(), causal ? i + 1 : s, s, p.data());
      for (int64_t e = 0; e < hv; ++e) {
        double acc = 0.0;
        for (int64_t j = 0; j < s; ++j) acc += p[static_cast<size_t>(j)] * vb[j * hv + e];
        r.v[static_cast<size_t>((b * t + i) * hv + e)] = acc;
      }
    }
  }
  return r;
}

}  // namespace ember::test
