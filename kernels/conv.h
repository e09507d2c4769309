/// @file kernels/conv.h @brief Convolution lowering: im2col (image -> column matrix) and col2im (its adjoint), batched over NCHW images.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ember::kernels {

/// The sizes of one 2-D convolution (groups = 1, dilation = 1). The column matrix of image n is
/// [channels * kernel_h * kernel_w, out_h * out_w]: row (c, ki, kj), column (oh, ow) holds
/// x[n, c, oh * stride_h - pad_h + ki, ow * stride_w - pad_w + kj] (0 outside the image).
struct Conv2dGeometry {
  int64_t batch = 0, channels = 0, height = 0, width = 0;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t out_h = 0, out_w = 0;

  int64_t col_rows() const { return channels * kernel_h * kernel_w; }
  int64_t col_cols() const { return out_h * out_w; }
};

/// Geometry of a convolution of input [N, C, H, W] with a kh x kw kernel; validates that stride >= 1,
/// 0 <= padding, and that the (padded) input is at least the kernel (the error names every value).
Conv2dGeometry conv2d_geometry(const Shape& input, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
                               int64_t stride_w, int64_t pad_h, int64_t pad_w);

struct ConvKernels {
  /// col [N, C*kh*kw, OH*OW] (contiguous) from x [N, C, H, W] (contiguous); same dtype and device.
  void (*im2col)(const Tensor& x, Tensor& col, const Conv2dGeometry& g) = nullptr;
  /// x [N, C, H, W] = the adjoint of im2col applied to col: each input element is the sum, in the
  /// order (ki, kj) ascending, of the column entries that read it (a gather: no atomics, deterministic).
  void (*col2im)(const Tensor& col, Tensor& x, const Conv2dGeometry& g) = nullptr;
};

/// Validate (contiguity, shapes against g, one device and dtype) and dispatch.
void im2col(const Tensor& x, Tensor& col, const Conv2dGeometry& g);
void col2im(const Tensor& col, Tensor& x, const Conv2dGeometry& g);

}  // namespace ember::kernels
