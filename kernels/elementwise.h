/// @file kernels/elementwise.h @brief Elementwise kernels (fill, copy, unary, binary with broadcasting) and their backward helpers.
#pragma once
#include "core/tensor.h"
#include "kernels/op_traits.h"
#include "kernels/strided.h"

namespace ember::kernels {

/// The op's `name` (kernels/op_traits.h); throws on an index outside the op list.
const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);
/// What the op's backward reads (its trait's `saves`).
Saves unary_op_saves(UnaryOp op);

/// Backend table. Contract for every function: validated by the entry points below (same device,
/// same dtype, shapes as documented); `out` is contiguous and already allocated.
struct ElementwiseKernels {
  /// out[i] = value
  void (*fill)(Tensor& out, double value) = nullptr;
  /// dst (any strides, same shape) = src (any strides); dtypes may differ (converting).
  void (*copy)(const Tensor& src, Tensor& dst) = nullptr;
  /// out = op(x; scalar) (the trait's forward; scalar is pow's exponent, mul/add_scalar's operand). x any strides.
  void (*unary)(UnaryOp op, const Tensor& x, Tensor& out, double scalar) = nullptr;
  /// gx = gy * op'(v) with v = x or y as the trait's `saves` says (the other may be undefined; for
  /// Saves::Nothing both may be). All same shape (checked by the entry point); gx contiguous.
  void (*unary_backward)(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                         double scalar) = nullptr;
  /// out = a op b; a and b are already expanded to out's shape (stride 0 on broadcast dims).
  void (*binary)(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) = nullptr;
};

// ---- device-generic entry points (validate, then dispatch on the device) ----
void fill(Tensor& out, double value);
void copy(const Tensor& src, Tensor& dst);
void unary(UnaryOp op, const Tensor& x, Tensor& out, double scalar = 0.0);
void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx, double scalar = 0.0);
/// Broadcasts a and b to out's shape, then dispatches.
void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out);

/// StridedDesc of a tensor (throws if it has more than kMaxDims dims).
StridedDesc strided_desc(const Tensor& t);

}  // namespace ember::kernels
