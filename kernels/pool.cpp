/// @file kernels/pool.cpp @brief Device-generic max pooling entry points and geometry validation.
#include "kernels/pool.h"

#include "kernels/dispatch.h"

namespace ember::kernels {

Pool2dGeometry max_pool2d_geometry(const Shape& input, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
                                   int64_t stride_w, int64_t pad_h, int64_t pad_w) {
  EMBER_CHECK(input.size() == 3 || input.size() == 4, "max_pool2d: expected an input [N, C, H, W] or [C, H, W], got ",
              shape_str(input));
  EMBER_CHECK(kernel_h >= 1 && kernel_w >= 1, "max_pool2d: kernel size must be >= 1, got ", kernel_h, "x", kernel_w);
  EMBER_CHECK(stride_h >= 1 && stride_w >= 1, "max_pool2d: stride must be >= 1, got ", stride_h, "x", stride_w);
  EMBER_CHECK(pad_h >= 0 && pad_w >= 0 && 2 * pad_h <= kernel_h && 2 * pad_w <= kernel_w,
              "max_pool2d: padding must be between 0 and half the kernel size, got padding ", pad_h, "x", pad_w,
              " for kernel ", kernel_h, "x", kernel_w);
  Pool2dGeometry g;
  const size_t d = input.size();
  g.height = input[d - 2];
  g.width = input[d - 1];
  EMBER_CHECK(g.height >= 1 && g.width >= 1, "max_pool2d: the input planes must be non-empty, got ", shape_str(input));
  g.planes = shape_numel(input) / (g.height * g.width);
  g.kernel_h = kernel_h;
  g.kernel_w = kernel_w;
  g.stride_h = stride_h;
  g.stride_w = stride_w;
  g.pad_h = pad_h;
  g.pad_w = pad_w;
  const int64_t ph = g.height + 2 * pad_h, pw = g.width + 2 * pad_w;
  EMBER_CHECK(ph >= kernel_h && pw >= kernel_w, "max_pool2d: kernel ", kernel_h, "x", kernel_w,
              " is larger than the padded input ", ph, "x", pw, " (input ", shape_str(input), ")");
  g.out_h = (ph - kernel_h) / stride_h + 1;
  g.out_w = (pw - kernel_w) / stride_w + 1;
  return g;
}

namespace {
void check_sizes(const char* op, const Tensor& img, const Tensor& pooled, const Tensor& indices,
                 const Pool2dGeometry& g) {
  check_same_device(op, img, pooled);
  check_same_device(op, img, indices);
  check_same_dtype(op, img, pooled);
  EMBER_CHECK(is_floating(img.dtype()) && indices.dtype() == DType::i64, op,
              ": expected floating values and i64 indices, got ", describe(img), " and ", describe(indices));
  EMBER_CHECK(img.is_contiguous() && pooled.is_contiguous() && indices.is_contiguous(), op,
              ": expected contiguous tensors, got ", describe(img), ", ", describe(pooled), ", ", describe(indices));
  EMBER_CHECK(img.numel() == g.planes * g.height * g.width && pooled.numel() == g.planes * g.out_h * g.out_w &&
                  indices.numel() == pooled.numel(),
              op, ": ", describe(img), " / ", describe(pooled), " / ", describe(indices), " do not match ", g.planes,
              " planes of ", g.height, "x", g.width, " pooled to ", g.out_h, "x", g.out_w);
}
}  // namespace

void max_pool2d_forward(const Tensor& x, Tensor& y, Tensor& indices, const Pool2dGeometry& g) {
  check_sizes("max_pool2d", x, y, indices, g);
  if (y.numel() == 0) return;
  require(table_for<PoolKernels>(x.device().type).max_pool2d_forward, "max_pool2d", x.device())(x, y, indices, g);
}

void max_pool2d_backward(const Tensor& gy, const Tensor& indices, Tensor& gx, const Pool2dGeometry& g) {
  check_sizes("max_pool2d_backward", gx, gy, indices, g);
  if (gx.numel() == 0) return;
  require(table_for<PoolKernels>(gx.device().type).max_pool2d_backward, "max_pool2d_backward", gx.device())(
      gy, indices, gx, g);
}

}  // namespace ember::kernels
