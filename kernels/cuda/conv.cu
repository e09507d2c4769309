/// @file kernels/cuda/conv.cu @brief CUDA im2col and col2im (the gather adjoint, no atomics) for the GEMM lowering of conv2d.
//
// Both kernels are grid-stride loops with 256 threads per block (grid capped at 8 blocks per SM):
//  - im2col: one thread per column-matrix element (n, row = (c, ki, kj), col = (oh, ow)); consecutive
//    threads write consecutive columns (coalesced stores), reads of x are strided by the conv stride.
//  - col2im: one thread per input element (n, c, ih, iw) that sums, in (ki, kj) ascending order, every
//    column entry that read it: no atomics, deterministic, and the same order as kernels/cpu/conv.cpp,
//    so both backends give bitwise-equal results.
// Index math in 32 bits with fast division (kernels/cuda/index_math.h) when the tensors allow.
#include <cstdint>

#include "kernels/conv.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/index_math.h"
#include "kernels/dispatch.h"

namespace ember::kernels::cuda_backend {
namespace {

constexpr unsigned kThreads = 256;

/// The geometry as plain integers (passed by value to the kernels).
struct ConvDims {
  int64_t channels, height, width, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w;
};

// ---------------------------------------------------------------------------------------- kernels

/// The divisions of the per-element index math, for the kernel instance's index type (32-bit: fast
/// division, kernels/cuda/index_math.h).
template <class Index>
struct ConvDivisors {
  ember::cuda::Divisor<Index> channels, height, width, kernel_h, kernel_w, stride_h, stride_w, out_h, out_w;
};

/// col[n, (c, ki, kj), (oh, ow)] = x[n, c, oh*sh - ph + ki, ow*sw - pw + kj] (0 outside the image).
/// Grid-stride over N*C*kh*kw*OH*OW elements, 256 threads, no shared memory; Index uint32_t (the five
/// coordinate splits by fast division) when every index fits int32, else int64_t.
/// Bytes: 4 * N*C*kh*kw*OH*OW written + up to the same read (each x element is read kh*kw/(sh*sw) times).
template <class Index>
__global__ void im2col_kernel(const float* x, float* col, Index total, ConvDims d, ConvDivisors<Index> v) {
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    Index t = v.out_w.div(i);
    const int64_t ow = i - t * static_cast<Index>(d.out_w);
    Index u = v.out_h.div(t);
    const int64_t oh = t - u * static_cast<Index>(d.out_h);
    t = v.kernel_w.div(u);
    const int64_t kj = u - t * static_cast<Index>(d.kernel_w);
    u = v.kernel_h.div(t);
    const int64_t ki = t - u * static_cast<Index>(d.kernel_h);
    t = v.channels.div(u);
    const int64_t c = u - t * static_cast<Index>(d.channels), n = t;
    const int64_t ih = oh * d.stride_h - d.pad_h + ki, iw = ow * d.stride_w - d.pad_w + kj;
    const bool inside = ih >= 0 && ih < d.height && iw >= 0 && iw < d.width;
    col[i] = inside ? x[((n * d.channels + c) * d.height + ih) * d.width + iw] : 0.0f;
  }
}

/// x[n, c, ih, iw] = sum over (ki, kj) ascending of col[n, (c, ki, kj), (oh, ow)] with
/// oh*sh - ph + ki == ih and ow*sw - pw + kj == iw. Grid-stride over N*C*H*W, 256 threads; Index as
/// im2col (also the stride divisions of each tap). Bytes: 4 * N*C*H*W written + 4 * N*C*kh*kw*OH*OW read.
template <class Index>
__global__ void col2im_kernel(const float* col, float* x, Index total, ConvDims d, ConvDivisors<Index> v) {
  const int64_t l_size = d.out_h * d.out_w, kk = d.kernel_h * d.kernel_w;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const Index row = v.width.div(i), plane = v.height.div(row);
    const int64_t iw = i - row * static_cast<Index>(d.width), ih = row - plane * static_cast<Index>(d.height);
    // plane = n * C + c owns rows c*kk .. c*kk + kk - 1
    const float* rows = col + static_cast<int64_t>(plane) * kk * l_size;
    float acc = 0.0f;
    for (int64_t ki = 0; ki < d.kernel_h; ++ki) {
      const int64_t th = ih + d.pad_h - ki;
      if (th < 0) continue;
      const int64_t oh = v.stride_h.div(static_cast<Index>(th));
      if (oh * d.stride_h != th || oh >= d.out_h) continue;
      for (int64_t kj = 0; kj < d.kernel_w; ++kj) {
        const int64_t tw = iw + d.pad_w - kj;
        if (tw < 0) continue;
        const int64_t ow = v.stride_w.div(static_cast<Index>(tw));
        if (ow * d.stride_w != tw || ow >= d.out_w) continue;
        acc += rows[(ki * d.kernel_w + kj) * l_size + oh * d.out_w + ow];
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

using ember::cuda::check_f32;

template <class Index>
ConvDivisors<Index> divisors_of(const Conv2dGeometry& g) {
  using D = ember::cuda::Divisor<Index>;
  return ConvDivisors<Index>{D(g.channels), D(g.height),   D(g.width),    D(g.kernel_h), D(g.kernel_w),
                             D(g.stride_h), D(g.stride_w), D(g.out_h),    D(g.out_w)};
}

/// The 32-bit path: the grid-stride loop over `total` and col2im's tap dividends (< H + pad, W + pad)
/// fit int32.
bool fits32(int64_t total, const Conv2dGeometry& g) {
  return ember::cuda::fits_int32_loop(total, static_cast<int64_t>(blocks_for(total)) * kThreads) &&
         ember::cuda::fits_int32_index(g.height + g.pad_h) && ember::cuda::fits_int32_index(g.width + g.pad_w);
}

/// Launches the uint32_t or int64_t instance (kernel32 / kernel64) of im2col or col2im over `total`
/// elements of `out`.
template <class Kernel32, class Kernel64>
void launch_indexed(Kernel32 kernel32, Kernel64 kernel64, const Tensor& in, Tensor& out, int64_t total,
                    const Conv2dGeometry& g) {
  const float* src = static_cast<const float*>(in.data_ptr());
  float* dst = static_cast<float*>(out.data_ptr());
  if (ember::cuda::use_int32_index(fits32(total, g))) {
    ember::cuda::launch(kernel32, blocks_for(total), kThreads, 0, ember::cuda::stream(), src, dst,
                        static_cast<uint32_t>(total), dims_of(g), divisors_of<uint32_t>(g));
  } else {
    ember::cuda::launch(kernel64, blocks_for(total), kThreads, 0, ember::cuda::stream(), src, dst, total, dims_of(g),
                        divisors_of<int64_t>(g));
  }
  EMBER_CUDA_CHECK_LAUNCH("im2col_kernel / col2im_kernel");
}

void im2col(const Tensor& x, Tensor& col, const Conv2dGeometry& g) {
  check_f32("im2col", x);
  launch_indexed(im2col_kernel<uint32_t>, im2col_kernel<int64_t>, x, col, col.numel(), g);
}

void col2im(const Tensor& col, Tensor& x, const Conv2dGeometry& g) {
  check_f32("col2im", x);
  launch_indexed(col2im_kernel<uint32_t>, col2im_kernel<int64_t>, col, x, x.numel(), g);
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<ConvKernels>(DeviceType::CUDA);
  t.im2col = im2col;
  t.col2im = col2im;
});

}  // namespace ember::kernels::cuda_backend
