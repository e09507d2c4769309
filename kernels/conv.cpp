/// @file kernels/conv.cpp @brief Device-generic im2col / col2im entry points and the convolution geometry.
#include "kernels/conv.h"

#include "kernels/dispatch.h"
#include "kernels/elementwise.h"

namespace ember::kernels {

Conv2dGeometry conv2d_geometry(const Shape& input, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
                               int64_t stride_w, int64_t pad_h, int64_t pad_w) {
  EMBER_CHECK(input.size() == 4, "conv2d: expected an input [N, C, H, W], got shape ", shape_str(input));
  EMBER_CHECK(kernel_h >= 1 && kernel_w >= 1, "conv2d: kernel size must be >= 1, got ", kernel_h, "x", kernel_w);
  EMBER_CHECK(stride_h >= 1 && stride_w >= 1, "conv2d: stride must be >= 1, got ", stride_h, "x", stride_w);
  EMBER_CHECK(pad_h >= 0 && pad_w >= 0, "conv2d: padding must be >= 0, got ", pad_h, "x", pad_w);
  Conv2dGeometry g;
  g.batch = input[0];
  g.channels = input[1];
  g.height = input[2];
  g.width = input[3];
  g.kernel_h = kernel_h;
  g.kernel_w = kernel_w;
  g.stride_h = stride_h;
  g.stride_w = stride_w;
  g.pad_h = pad_h;
  g.pad_w = pad_w;
  const int64_t ph = g.height + 2 * pad_h, pw = g.width + 2 * pad_w;
  EMBER_CHECK(ph >= kernel_h && pw >= kernel_w, "conv2d: kernel ", kernel_h, "x", kernel_w,
              " is larger than the padded input ", ph, "x", pw, " (input ", shape_str(input), ", padding ", pad_h, "x",
              pad_w, ")");
  g.out_h = (ph - kernel_h) / stride_h + 1;
  g.out_w = (pw - kernel_w) / stride_w + 1;
  return g;
}

namespace {
void check_operands(const char* op, const Tensor& x, const Tensor& col, const Conv2dGeometry& g) {
  check_same_device(op, x, col);
  check_same_dtype(op, x, col);
  EMBER_CHECK(is_floating(x.dtype()), op, ": expected floating tensors, got ", describe(x));
  EMBER_CHECK(x.is_contiguous() && col.is_contiguous(), op, ": expected contiguous tensors, got ", describe(x), " and ",
              describe(col));
  const Shape xs{g.batch, g.channels, g.height, g.width}, cs{g.batch, g.col_rows(), g.col_cols()};
  EMBER_CHECK(x.shape() == xs && col.shape() == cs, op, ": image ", describe(x), " and columns ", describe(col),
              " do not match the geometry (image ", shape_str(xs), ", columns ", shape_str(cs), ")");
}
}  // namespace

void im2col(const Tensor& x, Tensor& col, const Conv2dGeometry& g) {
  check_operands("im2col", x, col, g);
  if (col.numel() == 0) return;
  require(table_for<ConvKernels>(x.device().type).im2col, "im2col", x.device())(x, col, g);
}

void col2im(const Tensor& col, Tensor& x, const Conv2dGeometry& g) {
  check_operands("col2im", x, col, g);
  if (x.numel() == 0) return;
  require(table_for<ConvKernels>(x.device().type).col2im, "col2im", x.device())(col, x, g);
}

// ---- direct convolution ----

namespace {

Shape image_shape(const Conv2dGeometry& g) { return {g.batch, g.channels, g.height, g.width}; }
Shape output_shape(const Conv2dGeometry& g, int64_t cout) { return {g.batch, cout, g.out_h, g.out_w}; }

/// One device and dtype, floating, contiguous, and each tensor of the expected shape.
void check_conv(const char* op, std::initializer_list<std::pair<const Tensor*, Shape>> operands) {
  const Tensor& first = *operands.begin()->first;
  EMBER_CHECK(is_floating(first.dtype()), op, ": expected floating tensors, got ", describe(first));
  for (const auto& [t, shape] : operands) {
    check_same_device(op, first, *t);
    check_same_dtype(op, first, *t);
    EMBER_CHECK(t->is_contiguous(), op, ": expected contiguous tensors, got ", describe(*t));
    EMBER_CHECK(t->shape() == shape, op, ": ", describe(*t), " does not match the convolution (expected ",
                shape_str(shape), ")");
  }
}

void check_beta(const char* op, double beta) {
  EMBER_CHECK(beta == 0.0 || beta == 1.0, op, ": beta must be 0 or 1, got ", beta);
}

const ConvKernels& direct(Device d) { return table_for<ConvKernels>(d.type); }

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, Tensor& y, const Conv2dGeometry& g) {
  const int64_t cout = w.dim() == 4 ? w.size(0) : -1;
  check_conv("conv2d_forward", {{&x, image_shape(g)}, {&w, {cout, g.channels, g.kernel_h, g.kernel_w}},
                                {&y, output_shape(g, cout)}});
  if (y.numel() == 0) return;
  if (x.numel() == 0 || w.numel() == 0) return fill(y, 0.0);
  require(direct(x.device()).conv2d_forward, "conv2d_forward", x.device())(x, w, y, g);
}

void conv2d_add_bias(const Tensor& bias, Tensor& y) {
  EMBER_CHECK(y.dim() == 4, "conv2d_add_bias: expected an output [N, C, H, W], got ", describe(y));
  check_conv("conv2d_add_bias", {{&y, y.shape()}, {&bias, {y.size(1)}}});
  if (y.numel() == 0) return;
  require(direct(y.device()).conv2d_add_bias, "conv2d_add_bias", y.device())(bias, y);
}

void conv2d_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv2dGeometry& g) {
  const int64_t cout = w.dim() == 4 ? w.size(0) : -1;
  check_conv("conv2d_backward_data", {{&dy, output_shape(g, cout)},
                                      {&w, {cout, g.channels, g.kernel_h, g.kernel_w}},
                                      {&dx, image_shape(g)}});
  if (dx.numel() == 0) return;
  if (dy.numel() == 0) return fill(dx, 0.0);
  require(direct(dx.device()).conv2d_backward_data, "conv2d_backward_data", dx.device())(dy, w, dx, g);
}

void conv2d_backward_filter(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv2dGeometry& g, double beta) {
  const int64_t cout = dw.dim() == 4 ? dw.size(0) : -1;
  check_conv("conv2d_backward_filter", {{&x, image_shape(g)}, {&dy, output_shape(g, cout)},
                                        {&dw, {cout, g.channels, g.kernel_h, g.kernel_w}}});
  check_beta("conv2d_backward_filter", beta);
  if (dw.numel() == 0) return;
  if (dy.numel() == 0) return beta == 0.0 ? fill(dw, 0.0) : void();
  require(direct(dw.device()).conv2d_backward_filter, "conv2d_backward_filter", dw.device())(x, dy, dw, g, beta);
}

void conv2d_backward_bias(const Tensor& dy, Tensor& db, double beta) {
  EMBER_CHECK(dy.dim() == 4, "conv2d_backward_bias: expected a gradient [N, C, H, W], got ", describe(dy));
  check_conv("conv2d_backward_bias", {{&dy, dy.shape()}, {&db, {dy.size(1)}}});
  check_beta("conv2d_backward_bias", beta);
  if (db.numel() == 0) return;
  if (dy.numel() == 0) return beta == 0.0 ? fill(db, 0.0) : void();
  require(direct(db.device()).conv2d_backward_bias, "conv2d_backward_bias", db.device())(dy, db, beta);
}

}  // namespace ember::kernels
