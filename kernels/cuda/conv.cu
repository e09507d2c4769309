/// @file kernels/cuda/conv.cu @brief CUDA im2col and col2im (the gather adjoint, no atomics) for the GEMM lowering of conv2d.
//
// Both kernels are grid-stride loops with 256 threads per block (grid capped at 8 blocks per SM):
//  - im2col: one thread per column-matrix element (n, row = (c, ki, kj), col = (oh, ow)); consecutive
//    threads write consecutive columns (coalesced stores), reads of x are strided by the conv stride.
//  - col2im: one thread per input element (n, c, ih, iw) that sums, in (ki, kj) ascending order, every
//    column entry that read it: no atomics, deterministic, and the same order as kernels/cpu/conv.cpp,
//    so both backends give bitwise-equal results.
#include <cstdint>

#include "kernels/conv.h"
#include "kernels/cuda/common.cuh"
#include "kernels/dispatch.h"

namespace ember::kernels::cuda_backend {
namespace {

constexpr unsigned kThreads = 256;

/// The geometry as plain integers (passed by value to the kernels).
struct ConvDims {
  int64_t channels, height, width, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w;
};

// ---------------------------------------------------------------------------------------- kernels

/// col[n, (c, ki, kj), (oh, ow)] = x[n, c, oh*sh - ph + ki, ow*sw - pw + kj] (0 outside the image).
/// Grid-stride over N*C*kh*kw*OH*OW elements, 256 threads, no shared memory.
/// Bytes: 4 * N*C*kh*kw*OH*OW written + up to the same read (each x element is read kh*kw/(sh*sw) times).
__global__ void im2col_kernel(const float* x, float* col, int64_t total, ConvDims d) {
  const int64_t l_size = d.out_h * d.out_w, kk = d.kernel_h * d.kernel_w;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t l = i % l_size, row = (i / l_size) % (d.channels * kk), n = i / (l_size * d.channels * kk);
    const int64_t c = row / kk, ki = (row / d.kernel_w) % d.kernel_h, kj = row % d.kernel_w;
    const int64_t ih = (l / d.out_w) * d.stride_h - d.pad_h + ki, iw = (l % d.out_w) * d.stride_w - d.pad_w + kj;
    const bool inside = ih >= 0 && ih < d.height && iw >= 0 && iw < d.width;
    col[i] = inside ? x[((n * d.channels + c) * d.height + ih) * d.width + iw] : 0.0f;
  }
}

/// x[n, c, ih, iw] = sum over (ki, kj) ascending of col[n, (c, ki, kj), (oh, ow)] with
/// oh*sh - ph + ki == ih and ow*sw - pw + kj == iw. Grid-stride over N*C*H*W, 256 threads.
/// Bytes: 4 * N*C*H*W written + 4 * N*C*kh*kw*OH*OW read.
__global__ void col2im_kernel(const float* col, float* x, int64_t total, ConvDims d) {
  const int64_t l_size = d.out_h * d.out_w, kk = d.kernel_h * d.kernel_w;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t iw = i % d.width, ih = (i / d.width) % d.height, plane = i / (d.width * d.height);
    const float* rows = col + plane * kk * l_size;  // plane = n * C + c owns rows c*kk .. c*kk + kk - 1
    float acc = 0.0f;
    for (int64_t ki = 0; ki < d.kernel_h; ++ki) {
      const int64_t th = ih + d.pad_h - ki;
      if (th < 0 || th % d.stride_h != 0 || th / d.stride_h >= d.out_h) continue;
      const int64_t oh = th / d.stride_h;
      for (int64_t kj = 0; kj < d.kernel_w; ++kj) {
        const int64_t tw = iw + d.pad_w - kj;
        if (tw < 0 || tw % d.stride_w != 0 || tw / d.stride_w >= d.out_w) continue;
        acc += rows[(ki * d.kernel_w + kj) * l_size + oh * d.out_w + tw / d.stride_w];
      }
    }
    x[i] = acc;
  }
}

// -------------------------------------------------------------------------------------- launchers

ConvDims dims_of(const Conv2dGeometry& g) {
  return ConvDims{g.channels, g.height,   g.width, g.kernel_h, g.kernel_w, g.stride_h,
                  g.stride_w, g.pad_h, g.pad_w, g.out_h,    g.out_w};
}

unsigned blocks_for(int64_t n) {
  return ember::cuda::grid_for(n, kThreads);
}

void check_f32(const char* op, const Tensor& t) {
  EMBER_CHECK(t.dtype() == DType::f32, op, ": the CUDA backend computes in f32 only, got ", describe(t));
}

void im2col(const Tensor& x, Tensor& col, const Conv2dGeometry& g) {
  check_f32("im2col", x);
  const int64_t total = col.numel();
  ember::cuda::launch(im2col_kernel, blocks_for(total), kThreads, 0, ember::cuda::stream(),
                      static_cast<const float*>(x.data_ptr()), static_cast<float*>(col.data_ptr()), total, dims_of(g));
  EMBER_CUDA_CHECK_LAUNCH("im2col_kernel");
}

void col2im(const Tensor& col, Tensor& x, const Conv2dGeometry& g) {
  check_f32("col2im", x);
  const int64_t total = x.numel();
  ember::cuda::launch(col2im_kernel, blocks_for(total), kThreads, 0, ember::cuda::stream(),
                      static_cast<const float*>(col.data_ptr()), static_cast<float*>(x.data_ptr()), total, dims_of(g));
  EMBER_CUDA_CHECK_LAUNCH("col2im_kernel");
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<ConvKernels>(DeviceType::CUDA);
  t.im2col = im2col;
  t.col2im = col2im;
});

}  // namespace ember::kernels::cuda_backend
