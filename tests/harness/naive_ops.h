/// @file tests/harness/naive_ops.h @brief Naive reference ops on plain value arrays (index loops in double, no Ember kernels): the independent forward reference of the op harness.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/tensor.h"

namespace ember::test {

/// A dense row-major array of doubles.
struct NdArray {
  Shape shape;
  std::vector<double> v;
};

/// The values of a tensor in logical row-major order (any device, dtype, strides).
NdArray to_nd(const Tensor& t);
/// An f64 CPU tensor holding the array.
Tensor from_nd(const NdArray& a);

/// out[i] = f(x0[i], x1[i], ...) with NumPy broadcasting of the inputs.
NdArray naive_map(const std::vector<NdArray>& xs, const std::function<double(const std::vector<double>&)>& f);

enum class NaiveReduce { Sum, Mean, Max };
/// Reduction over `dims` (negative allowed; empty = all dims) with keepdim. A 0-dim input reduces to itself.
NdArray naive_reduce(const NdArray& x, std::vector<int64_t> dims, bool keepdim, NaiveReduce kind);

/// torch.matmul semantics for 1-D to 3-D operands, by the triple loop.
NdArray naive_matmul(const NdArray& a, const NdArray& b);

/// softmax / log_softmax along `dim` (max-subtracted).
NdArray naive_softmax(const NdArray& x, int64_t dim, bool log);

}  // namespace ember::test
