/// @file kernels/conv.h @brief 2-D convolution kernels: the convolution conv2d runs on (cuDNN on CUDA, per-image im2col + GEMM on the CPU), and im2col (image -> column matrix) and col2im (its adjoint).
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

  // The convolution (every backend provides all five).
  // Operands are contiguous NCHW of one dtype and device; w is [Cout, C, kh, kw], y and dy are
  // [N, Cout, out_h, out_w]. beta = 0 overwrites the output (it is not read), beta = 1 adds to it.
  /// y = conv(x, w), cross-correlation as in PyTorch.
  void (*conv2d_forward)(const Tensor& x, const Tensor& w, Tensor& y, const Conv2dGeometry& g) = nullptr;
  /// y[n, c, i, j] += bias[c].
  void (*conv2d_add_bias)(const Tensor& bias, Tensor& y) = nullptr;
  /// dx = the gradient of conv(x, w) with respect to x, for output gradient dy.
  void (*conv2d_backward_data)(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv2dGeometry& g) = nullptr;
  /// dw = beta * dw + the gradient with respect to w (beta = 1: straight into an existing .grad).
  void (*conv2d_backward_filter)(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv2dGeometry& g,
                                 double beta) = nullptr;
  /// db [Cout] = beta * db + the sum of dy over N, out_h and out_w.
  void (*conv2d_backward_bias)(const Tensor& dy, Tensor& db, double beta) = nullptr;
};

/// Validate (contiguity, shapes against g, one device and dtype) and dispatch.
void im2col(const Tensor& x, Tensor& col, const Conv2dGeometry& g);
void col2im(const Tensor& col, Tensor& x, const Conv2dGeometry& g);

/// Validate (contiguity, shapes against g, one device and dtype, beta in {0, 1}) and dispatch; an
/// empty batch writes zeros (beta 0) or leaves the output (beta 1).
void conv2d_forward(const Tensor& x, const Tensor& w, Tensor& y, const Conv2dGeometry& g);
void conv2d_add_bias(const Tensor& bias, Tensor& y);
void conv2d_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv2dGeometry& g);
void conv2d_backward_filter(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv2dGeometry& g, double beta);
void conv2d_backward_bias(const Tensor& dy, Tensor& db, double beta);

}  // namespace ember::kernels
