/// @file tests/harness/op_cases.h @brief The table of differentiable op cases (ggml test-backend-ops style) run on every backend by tests/core/test_ops.cpp.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "tests/harness/naive_ops.h"

namespace ember::test {

/// Forward/backward comparison tolerance of a case: |got - ref| <= atol + rtol * |ref| elementwise.
struct Tolerance {
  double rtol = 0.0;
  double atol = 0.0;
};

/// f32 elementwise results (see op_cases.cpp for the derivation).
Tolerance elementwise_tolerance();
/// f32 results that sum `k` O(1) terms (reductions, dot products, broadcast gradients).
Tolerance sum_tolerance(int64_t k);

/// One input of a case: a base tensor of `shape` with values U[lo, hi), then `layout` applied inside
/// the differentiated function (a transpose / step slice / expand making a non-contiguous view), so the
/// op sees the strided view and the gradient flows back through the view's backward.
struct InputSpec {
  Shape shape;
  double lo = -1.0;
  double hi = 1.0;
  std::string layout_name;                       ///< "" for a contiguous input
  std::function<Tensor(const Tensor&)> layout;   ///< empty = identity
};

struct OpCase {
  std::string name;
  std::vector<InputSpec> inputs;
  /// The op under test (receives the inputs after their layouts).
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  /// Independent reference written as plain loops over the values (no Ember kernels).
  std::function<NdArray(const std::vector<NdArray>&)> naive;
  Tolerance tol;
  /// Small enough for a finite-difference gradient check (2 forwards per input element).
  bool gradcheck = true;
};

/// Every case: elementwise (broadcast pairs, size-1 dims, 0-dim, odd sizes 1/31/33, one 1000003-element
/// case per cheap op), reductions (adjacent and non-adjacent dims, keepdim, 0-dim), matmul (2-D,
/// batched, broadcast, transposed and permuted operands), softmax/log_softmax over every dim, and
/// composites (an MLP layer, a diamond graph).
const std::vector<OpCase>& op_cases();

/// The base tensors of case `index` (before layouts): the same values for every dtype and device
/// (drawn in float by the counter-based generator, so exactly representable in f32 and f64).
std::vector<Tensor> make_inputs(const OpCase& c, size_t index, DType dtype, Device device, bool requires_grad);
/// Applies each input's layout, then the op.
Tensor run_case(const OpCase& c, const std::vector<Tensor>& bases);
/// Runs the naive reference on the bases (CPU, f64) and returns it as an f64 CPU tensor.
Tensor run_naive(const OpCase& c, const std::vector<Tensor>& bases);

}  // namespace ember::test
