/// @file kernels/conv.cpp @brief Device-generic im2col / col2im entry points and the convolution geometry.
#include "kernels/conv.h"

#include "kernels/dispatch.h"

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

}  // namespace ember::kernels
