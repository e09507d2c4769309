/// @file kernels/cpu/strided_loop.h @brief CPU iteration over N same-shaped strided operands (contiguous fast path + odometer), with OpenMP above a size threshold.
#pragma once
#include <array>
#include <cstdint>

#include "core/tensor.h"

namespace ember::kernels::cpu {

/// Below this many elements a loop stays single-threaded (thread start-up costs more than it saves).
inline constexpr int64_t kParallelThreshold = 1 << 15;

/// Calls f(base, n, step) once per row of the innermost dimension: base[k] is operand k's offset of the
/// row's first element, n the row's length and step[k] operand k's stride along it. Lets a kernel write
/// the inner loop itself (a plain, vectorizable loop when every step is 1); rows in row-major order,
/// split over OpenMP threads above kParallelThreshold elements.
template <size_t N, class F>
void for_each_row(const std::array<const Tensor*, N>& ts, F&& f) {
  const Shape& shape = ts[0]->shape();
  const int64_t numel = shape_numel(shape);
  if (numel == 0) return;
  const int64_t nd = static_cast<int64_t>(shape.size());
  const int64_t inner = nd ? shape[static_cast<size_t>(nd - 1)] : 1;
  const int64_t rows = numel / inner;
  std::array<int64_t, N> step{};
  for (size_t k = 0; k < N; ++k) step[k] = nd ? ts[k]->strides()[static_cast<size_t>(nd - 1)] : 0;
#pragma omp parallel for if (numel > kParallelThreshold) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    std::array<int64_t, N> base{};
    int64_t rem = r;
    for (int64_t d = nd - 2; d >= 0; --d) {
      const int64_t s = shape[static_cast<size_t>(d)];
      const int64_t idx = rem % s;
      rem /= s;
      for (size_t k = 0; k < N; ++k) base[k] += idx * ts[k]->strides()[static_cast<size_t>(d)];
    }
    f(base, inner, step);
  }
}

/// Calls f(i0, i1, ..., iN-1) with the element offsets of each operand for every logical index, in
/// row-major order of the (shared) shape. Operands are given as (shape, strides) via tensors.
template <size_t N, class F>
void for_each_offset(const std::array<const Tensor*, N>& ts, F&& f) {
  const Shape& shape = ts[0]->shape();
  const int64_t numel = shape_numel(shape);
  if (numel == 0) return;
  bool contiguous = true;
  for (const Tensor* t : ts) contiguous = contiguous && t->is_contiguous();
  if (contiguous) {
#pragma omp parallel for if (numel > kParallelThreshold) schedule(static)
    for (int64_t i = 0; i < numel; ++i) {
      std::array<int64_t, N> off;
      off.fill(i);
      std::apply(f, off);
    }
    return;
  }
  for_each_row<N>(ts, [&](const std::array<int64_t, N>& base, int64_t n, const std::array<int64_t, N>& step) {
    for (int64_t j = 0; j < n; ++j) {
      std::array<int64_t, N> off;
      for (size_t k = 0; k < N; ++k) off[k] = base[k] + j * step[k];
      std::apply(f, off);
    }
  });
}

}  // namespace ember::kernels::cpu
