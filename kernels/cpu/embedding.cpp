/// @file kernels/cpu/embedding.cpp @brief CPU embedding (f32, f64): row gather forward; backward buckets positions by row (stable counting sort) and sums each row's positions in order, in double.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"
#include "kernels/embedding.h"

namespace ember::kernels::cpu {
namespace {

int64_t embedding_forward(const Tensor& indices, const Tensor& weight, Tensor& out) {
  return visit_floating(weight.dtype(), "embedding", [&](auto tag) -> int64_t {
    using T = typename decltype(tag)::type;
    const int64_t n = indices.numel(), num = weight.size(0), dim = weight.size(1);
    const int64_t* ip = static_cast<const int64_t*>(indices.data_ptr());
    const T* wp = static_cast<const T*>(weight.data_ptr());
    T* op = static_cast<T*>(out.data_ptr());
    int64_t bad = 0;
#pragma omp parallel for if (n * dim > kParallelThreshold) schedule(static) reduction(+ : bad)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = ip[i];
      T* orow = op + i * dim;
      if (r < 0 || r >= num) {
        ++bad;
        for (int64_t d = 0; d < dim; ++d) orow[d] = static_cast<T>(NAN);
      } else if (dim > 0) {
        std::memcpy(orow, wp + r * dim, static_cast<size_t>(dim) * sizeof(T));
      }
    }
    return bad;
  });
}

/// Positions grouped by row, each group in increasing position (a stable counting sort): the
/// positions of row r are order[start[r] .. start[r + 1]). Out-of-range indices are left out.
struct RowBuckets {
  std::vector<int64_t> start, order;
};

RowBuckets bucket_by_row(const int64_t* ip, int64_t n, int64_t num) {
  RowBuckets b;
  b.start.assign(static_cast<size_t>(num) + 1, 0);
  for (int64_t i = 0; i < n; ++i)
    if (ip[i] >= 0 && ip[i] < num) ++b.start[static_cast<size_t>(ip[i]) + 1];
  for (int64_t r = 0; r < num; ++r) b.start[static_cast<size_t>(r) + 1] += b.start[static_cast<size_t>(r)];
  std::vector<int64_t> cursor(b.start.begin(), b.start.end() - 1);
  b.order.resize(static_cast<size_t>(b.start.back()));
  for (int64_t i = 0; i < n; ++i)
    if (ip[i] >= 0 && ip[i] < num) b.order[static_cast<size_t>(cursor[static_cast<size_t>(ip[i])]++)] = i;
  return b;
}

void embedding_backward(const Tensor& indices, const Tensor& grad_out, Tensor& grad_weight) {
  visit_floating(grad_weight.dtype(), "embedding_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t n = indices.numel(), num = grad_weight.size(0), dim = grad_weight.size(1);
    const RowBuckets b = bucket_by_row(static_cast<const int64_t*>(indices.data_ptr()), n, num);
    const T* gp = static_cast<const T*>(grad_out.data_ptr());
    T* wp = static_cast<T*>(grad_weight.data_ptr());
    // One row per iteration (rows own disjoint outputs); each element sums its positions in order, in
    // double, and is rounded once when added to the gradient.
#pragma omp parallel if (n * dim > kParallelThreshold)
    {
      std::vector<double> acc(static_cast<size_t>(dim));
#pragma omp for schedule(dynamic, 16)
      for (int64_t r = 0; r < num; ++r) {
        const int64_t lo = b.start[static_cast<size_t>(r)], hi = b.start[static_cast<size_t>(r) + 1];
        if (lo == hi) continue;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t k = lo; k < hi; ++k) {
          const T* g = gp + b.order[static_cast<size_t>(k)] * dim;
          for (int64_t d = 0; d < dim; ++d) acc[static_cast<size_t>(d)] += static_cast<double>(g[d]);
        }
        T* wr = wp + r * dim;
        for (int64_t d = 0; d < dim; ++d) wr[d] = static_cast<T>(static_cast<double>(wr[d]) + acc[static_cast<size_t>(d)]);
      }
    }
  });
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<EmbeddingKernels>(DeviceType::CPU);
  t.embedding_forward = embedding_forward;
  t.embedding_backward = embedding_backward;
});

}  // namespace ember::kernels::cpu
