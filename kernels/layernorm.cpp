/// @file kernels/layernorm.cpp @brief Device-generic layer-norm entry points: shape/device/dtype validation and dispatch.
#include "kernels/layernorm.h"

#include <initializer_list>

#include "kernels/dispatch.h"
#include "kernels/elementwise.h"

namespace ember::kernels {

LayerNormShape layer_norm_shape(const Tensor& x) {
  EMBER_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) > 0,
              "layer_norm: expected an input [*, n] with n > 0, got ",
              x.defined() ? describe(x) : std::string("an undefined tensor"));
  return LayerNormShape{x.numel() / x.size(-1), x.size(-1)};
}

namespace {

LayerNormKernels& table(const Tensor& x) { return table_for<LayerNormKernels>(x.device().type); }

/// x-shaped operands: contiguous, same shape, device and floating dtype as x.
void check_like_x(const char* op, const Tensor& x, std::initializer_list<const Tensor*> ts) {
  EMBER_CHECK(is_floating(x.dtype()) && x.is_contiguous(), op, ": expected a contiguous floating input, got ",
              describe(x));
  for (const Tensor* t : ts) {
    EMBER_CHECK(t->defined(), op, ": an operand shaped like ", describe(x), " is undefined");
    check_same_device(op, x, *t);
    check_same_dtype(op, x, *t);
    EMBER_CHECK(t->is_contiguous() && t->shape() == x.shape(), op, ": expected a contiguous tensor shaped like ",
                describe(x), ", got ", describe(*t));
  }
}

/// A contiguous 1-D operand of `len` values of x's device and dtype; undefined allowed when `optional`.
void check_vector(const char* op, const Tensor& x, const Tensor& t, const char* name, int64_t len,
                  bool optional = false) {
  if (optional && !t.defined()) return;
  EMBER_CHECK(t.defined(), op, ": ", name, " is undefined");
  EMBER_CHECK(t.device() == x.device() && t.dtype() == x.dtype() && t.is_contiguous() && t.shape() == Shape{len}, op,
              ": ", name, " must be a contiguous ", dtype_name(x.dtype()), "[", len, "] on ", x.device(),
              " for input ", describe(x), ", got ", describe(t));
}

}  // namespace

void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, Tensor& y,
                        Tensor& mean, Tensor& rstd) {
  const char* op = "layer_norm";
  const LayerNormShape sh = layer_norm_shape(x);
  check_like_x(op, x, {&y});
  check_vector(op, x, weight, "weight", sh.n, true);
  check_vector(op, x, bias, "bias", sh.n, true);
  check_vector(op, x, mean, "mean", sh.rows);
  check_vector(op, x, rstd, "rstd", sh.rows);
  EMBER_CHECK(eps > 0.0, op, ": eps must be positive, got ", eps);
  if (sh.rows == 0) return;
  require(table(x).forward, op, x.device())(x, weight, bias, eps, sh, y, mean, rstd);
}

void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                         const Tensor& weight, Tensor& dx, Tensor& dweight, Tensor& dbias) {
  const char* op = "layer_norm_backward";
  const LayerNormShape sh = layer_norm_shape(x);
  check_like_x(op, x, {&dy});
  if (dx.defined()) check_like_x(op, x, {&dx});
  check_vector(op, x, mean, "mean", sh.rows);
  check_vector(op, x, rstd, "rstd", sh.rows);
  check_vector(op, x, weight, "weight", sh.n, true);
  check_vector(op, x, dweight, "dweight", sh.n, true);
  check_vector(op, x, dbias, "dbias", sh.n, true);
  if (sh.rows == 0) {  // sums over no rows
    if (dweight.defined()) fill(dweight, 0.0);
    if (dbias.defined()) fill(dbias, 0.0);
    return;
  }
  if (!dx.defined() && !dweight.defined() && !dbias.defined()) return;
  require(table(x).backward, op, x.device())(dy, x, mean, rstd, weight, sh, dx.defined() ? &dx : nullptr,
                                             dweight.defined() ? &dweight : nullptr,
                                             dbias.defined() ? &dbias : nullptr);
}

}  // namespace ember::kernels
