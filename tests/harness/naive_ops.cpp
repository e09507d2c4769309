/// @file tests/harness/naive_ops.cpp @brief Naive reference ops: coordinates in, coordinates out, accumulated in double.
#include "tests/harness/naive_ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace ember::test {
namespace {

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

/// Row-major coordinates of linear index i in shape s.
Shape unravel(int64_t i, const Shape& s) {
  Shape c(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    c[d] = i % s[d];
    i /= s[d];
  }
  return c;
}

/// Linear index in `s` of coordinates `c` of a (possibly higher-rank) broadcast shape: leading
/// coordinates are dropped and size-1 dims of `s` read index 0.
int64_t ravel_broadcast(const Shape& c, const Shape& s) {
  const size_t lead = c.size() - s.size();
  int64_t idx = 0;
  for (size_t d = 0; d < s.size(); ++d) idx = idx * s[d] + (s[d] == 1 ? 0 : c[lead + d]);
  return idx;
}

int64_t wrap(int64_t d, size_t ndim) {
  const auto n = static_cast<int64_t>(ndim);
  if (d < -std::max<int64_t>(n, 1) || d >= std::max<int64_t>(n, 1)) throw std::out_of_range("naive: dim out of range");
  return d < 0 ? d + std::max<int64_t>(n, 1) : d;
}

}  // namespace

NdArray to_nd(const Tensor& t) { return NdArray{t.shape(), t.to_vector<double>()}; }

Tensor from_nd(const NdArray& a) { return from_vector(a.v, a.shape, TensorOptions{}.set_dtype(DType::f64)); }

NdArray naive_map(const std::vector<NdArray>& xs, const std::function<double(const std::vector<double>&)>& f) {
  size_t rank = 0;
  for (const auto& x : xs) rank = std::max(rank, x.shape.size());
  Shape out(rank, 1);
  for (const auto& x : xs) {
    const size_t lead = rank - x.shape.size();
    for (size_t d = 0; d < x.shape.size(); ++d) {
      const int64_t s = x.shape[d];
      if (s == 1) continue;
      if (out[lead + d] != 1 && out[lead + d] != s) throw std::invalid_argument("naive_map: shapes do not broadcast");
      out[lead + d] = s;
    }
  }
  NdArray r{out, std::vector<double>(static_cast<size_t>(numel_of(out)))};
  std::vector<double> args(xs.size());
  for (int64_t i = 0; i < numel_of(out); ++i) {
    const Shape c = unravel(i, out);
    for (size_t k = 0; k < xs.size(); ++k) args[k] = xs[k].v[static_cast<size_t>(ravel_broadcast(c, xs[k].shape))];
    r.v[static_cast<size_t>(i)] = f(args);
  }
  return r;
}

NdArray naive_reduce(const NdArray& x, std::vector<int64_t> dims, bool keepdim, NaiveReduce kind) {
  if (x.shape.empty()) return x;  // a 0-dim tensor reduces to itself over dim 0 / -1
  if (dims.empty())
    for (size_t d = 0; d < x.shape.size(); ++d) dims.push_back(static_cast<int64_t>(d));
  std::vector<bool> reduced(x.shape.size(), false);
  for (int64_t d : dims) reduced[static_cast<size_t>(wrap(d, x.shape.size()))] = true;
  Shape kept = x.shape, dropped;
  for (size_t d = 0; d < x.shape.size(); ++d) {
    if (reduced[d]) kept[d] = 1;
    else dropped.push_back(x.shape[d]);
  }
  const double init = kind == NaiveReduce::Max ? -std::numeric_limits<double>::infinity() : 0.0;
  std::vector<double> acc(static_cast<size_t>(numel_of(kept)), init);
  for (int64_t i = 0; i < numel_of(x.shape); ++i) {
    Shape c = unravel(i, x.shape);
    for (size_t d = 0; d < c.size(); ++d)
      if (reduced[d]) c[d] = 0;
    double& a = acc[static_cast<size_t>(ravel_broadcast(c, kept))];
    const double v = x.v[static_cast<size_t>(i)];
    a = kind == NaiveReduce::Max ? std::max(a, v) : a + v;
  }
  if (kind == NaiveReduce::Mean) {
    const double k = static_cast<double>(numel_of(x.shape) / std::max<int64_t>(numel_of(kept), 1));
    for (double& a : acc) a /= k;
  }
  return NdArray{keepdim ? kept : dropped, acc};
}

NdArray naive_matmul(const NdArray& a, const NdArray& b) {
  // As torch.matmul: a 1-D left operand is a row, a 1-D right operand a column; a 3-D operand is a
  // batch and a 2-D one is shared by every batch entry.
  const size_t ra = a.shape.size(), rb = b.shape.size();
  const int64_t m = ra == 1 ? 1 : a.shape[ra - 2], k = a.shape.back();
  const int64_t n = rb == 1 ? 1 : b.shape.back();
  if ((rb == 1 ? b.shape[0] : b.shape[rb - 2]) != k) throw std::invalid_argument("naive_matmul: inner dims differ");
  const int64_t batch = ra == 3 ? a.shape[0] : (rb == 3 ? b.shape[0] : 1);
  Shape out;
  if (ra == 3 || rb == 3) out.push_back(batch);
  if (ra > 1) out.push_back(m);
  if (rb > 1) out.push_back(n);
  NdArray r{out, std::vector<double>(static_cast<size_t>(batch * m * n), 0.0)};
  for (int64_t p = 0; p < batch; ++p)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0.0;
        for (int64_t q = 0; q < k; ++q)
          s += a.v[static_cast<size_t>(((ra == 3 ? p : 0) * m + i) * k + q)] *
               b.v[static_cast<size_t>(((rb == 3 ? p : 0) * k + q) * n + j)];
        r.v[static_cast<size_t>((p * m + i) * n + j)] = s;
      }
  return r;
}

NdArray naive_softmax(const NdArray& x, int64_t dim, bool log) {
  const auto d = static_cast<size_t>(wrap(dim, x.shape.size()));
  const int64_t n = x.shape[d];
  int64_t inner = 1;
  for (size_t i = d + 1; i < x.shape.size(); ++i) inner *= x.shape[i];
  const int64_t outer = numel_of(x.shape) / (n * inner);
  NdArray r{x.shape, std::vector<double>(x.v.size())};
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) {
      auto at = [&](int64_t j) { return static_cast<size_t>((o * n + j) * inner + in); };
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < n; ++j) mx = std::max(mx, x.v[at(j)]);
      double s = 0.0;
      for (int64_t j = 0; j < n; ++j) s += std::exp(x.v[at(j)] - mx);
      for (int64_t j = 0; j < n; ++j)
        r.v[at(j)] = log ? x.v[at(j)] - mx - std::log(s) : std::exp(x.v[at(j)] - mx) / s;
    }
  return r;
}

}  // namespace ember::test
