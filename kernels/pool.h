/// @file kernels/pool.h @brief 2-D max pooling over NCHW planes: forward with argmax indices (i64), backward routing gradients to the argmax.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ember::kernels {

/// Sizes of one max pooling (dilation 1, floor mode). Windows start at o * stride - pad; padded
/// positions never win (PyTorch pads with -inf).
struct Pool2dGeometry {
  int64_t planes = 0;  ///< N * C
  int64_t height = 0, width = 0;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t out_h = 0, out_w = 0;
};

/// Geometry for input [N, C, H, W] (or [C, H, W]); validates kernel >= 1, stride >= 1,
/// 0 <= pad <= kernel / 2 (as PyTorch) and a non-empty output, naming the values on error.
Pool2dGeometry max_pool2d_geometry(const Shape& input, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
                                   int64_t stride_w, int64_t pad_h, int64_t pad_w);

struct PoolKernels {
  /// y [planes, OH, OW] = window maxima of x [planes, H, W]; indices (i64, same shape as y) = the flat
  /// index ih * W + iw of the maximum within its plane (first maximum; NaN propagates: the first NaN wins).
  void (*max_pool2d_forward)(const Tensor& x, Tensor& y, Tensor& indices, const Pool2dGeometry& g) = nullptr;
  /// gx [planes, H, W] = sum of gy over the windows whose argmax is that element (gx is fully written).
  void (*max_pool2d_backward)(const Tensor& gy, const Tensor& indices, Tensor& gx, const Pool2dGeometry& g) = nullptr;
};

/// Validate (contiguous, element counts against g, devices, dtypes) and dispatch.
void max_pool2d_forward(const Tensor& x, Tensor& y, Tensor& indices, const Pool2dGeometry& g);
void max_pool2d_backward(const Tensor& gy, const Tensor& indices, Tensor& gx, const Pool2dGeometry& g);

}  // namespace ember::kernels
