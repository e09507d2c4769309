/// @file kernels/cuda/pool.cu @brief CUDA 2-D max pooling: forward with argmax (i64), backward as a gather over the windows holding each input (no atomics).
//
// Forward: one thread per output element. Backward: one thread per input element that sums gy over the
// windows (oh, ow ascending) whose recorded argmax is that element (as PyTorch's max_pool_backward_nchw).
// When stride >= kernel (the usual non-overlapping pooling) at most one window holds an element, so
// the loop has one candidate; overlapping windows need neither atomics nor a zero-fill pass, and the
// order of the sum equals the CPU backend's scatter order, so results are bitwise equal. Both kernels
// take 32-bit indices with fast division (kernels/cuda/index_math.h) when the tensors allow.
#include <cmath>
#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/index_math.h"
#include "kernels/dispatch.h"
#include "kernels/pool.h"

namespace ember::kernels::cuda_backend {
namespace {

constexpr unsigned kThreads = 256;

struct PoolDims {
  int64_t height, width, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w;
};

/// The divisions of the per-element index math, for the kernel instance's index type (32-bit:
/// multiply-high + shift, kernels/cuda/index_math.h).
template <class Index>
struct PoolDivisors {
  ember::cuda::Divisor<Index> width, height, out_w, out_h, stride_h, stride_w;
};

// ---------------------------------------------------------------------------------------- kernels

/// y[p, oh, ow] = max of x[p] over the window; indices = ih * W + iw of the first maximum (NaN wins).
/// Grid-stride over planes*OH*OW, 256 threads; Index uint32_t (fast division) when every index and
/// dividend fits int32, else int64_t. Bytes: 4 * planes*H*W read (once when stride >= kernel) +
/// 12 * planes*OH*OW written (value + i64 index).
template <class Index>
__global__ void max_pool2d_forward_kernel(const float* x, float* y, int64_t* indices, Index total, PoolDims d,
                                          PoolDivisors<Index> div) {
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const Index row = div.out_w.div(i);  // p * OH + oh
    const Index pq = div.out_h.div(row);
    const int64_t ow = i - row * static_cast<Index>(d.out_w), oh = row - pq * static_cast<Index>(d.out_h), p = pq;
    const float* img = x + p * d.height * d.width;
    const int64_t h0 = oh * d.stride_h - d.pad_h, w0 = ow * d.stride_w - d.pad_w;
    const int64_t hs = h0 > 0 ? h0 : 0, ws = w0 > 0 ? w0 : 0;
    const int64_t he = h0 + d.kernel_h < d.height ? h0 + d.kernel_h : d.height;
    const int64_t we = w0 + d.kernel_w < d.width ? w0 + d.kernel_w : d.width;
    float best = -INFINITY;
    int64_t at = hs * d.width + ws;
    for (int64_t ih = hs; ih < he; ++ih) {
      for (int64_t iw = ws; iw < we; ++iw) {
        const float v = img[ih * d.width + iw];
        if (v > best || (v != v && best == best)) {  // NaN: the first one wins
          best = v;
          at = ih * d.width + iw;
        }
      }
    }
    y[i] = best;
    indices[i] = at;
  }
}

/// gx[p, ih, iw] = sum over windows (oh, ow) ascending that contain (ih, iw) and whose argmax is it of
/// gy[p, oh, ow]. Grid-stride over planes*H*W, 256 threads; Index as the forward. Bytes: 4 * planes*H*W
/// written + 12 * planes*OH*OW * ceil(kh/sh)*ceil(kw/sw) read (once each when stride >= kernel).
template <class Index>
__global__ void max_pool2d_backward_kernel(const float* gy, const int64_t* indices, float* gx, Index total,
                                           PoolDims d, PoolDivisors<Index> div) {
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const Index row = div.width.div(i);  // p * H + ih
    const Index pq = div.height.div(row);
    const int64_t iw = i - row * static_cast<Index>(d.width), ih = row - pq * static_cast<Index>(d.height), p = pq;
    const int64_t self = ih * d.width + iw, plane_out = d.out_h * d.out_w;
    // Windows containing ih: oh * sh - ph <= ih < oh * sh - ph + kh. Every dividend is >= 0.
    const int64_t top = ih + d.pad_h - d.kernel_h + 1, left = iw + d.pad_w - d.kernel_w + 1;
    const int64_t oh0 = top > 0 ? div.stride_h.div(static_cast<Index>(top + d.stride_h - 1)) : 0;
    const int64_t ow0 = left > 0 ? div.stride_w.div(static_cast<Index>(left + d.stride_w - 1)) : 0;
    const int64_t oh1_raw = div.stride_h.div(static_cast<Index>(ih + d.pad_h)) + 1;
    const int64_t ow1_raw = div.stride_w.div(static_cast<Index>(iw + d.pad_w)) + 1;
    const int64_t oh1 = oh1_raw < d.out_h ? oh1_raw : d.out_h, ow1 = ow1_raw < d.out_w ? ow1_raw : d.out_w;
    float acc = 0.0f;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const int64_t o = p * plane_out + oh * d.out_w + ow;
        if (indices[o] == self) acc += gy[o];
      }
    }
    gx[i] = acc;
  }
}

// -------------------------------------------------------------------------------------- launchers

PoolDims dims_of(const Pool2dGeometry& g) {
  return PoolDims{g.height, g.width, g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.out_h, g.out_w};
}

unsigned blocks_for(int64_t n) {
  return ember::cuda::grid_for(n, kThreads);
}

using ember::cuda::check_f32;

template <class Index>
PoolDivisors<Index> divisors_of(const Pool2dGeometry& g) {
  using D = ember::cuda::Divisor<Index>;
  return PoolDivisors<Index>{D(g.width), D(g.height), D(g.out_w), D(g.out_h), D(g.stride_h), D(g.stride_w)};
}

/// The 32-bit path when the grid-stride loop over `total` and every dividend of the index math (at
/// most H + pad + stride, W + pad + stride) fit int32.
bool fits32(int64_t total, const Pool2dGeometry& g) {
  const int64_t stride = static_cast<int64_t>(blocks_for(total)) * kThreads;
  return ember::cuda::fits_int32_loop(total, stride) &&
         ember::cuda::fits_int32_index(g.height + g.pad_h + g.stride_h + g.kernel_h) &&
         ember::cuda::fits_int32_index(g.width + g.pad_w + g.stride_w + g.kernel_w);
}

void forward(const Tensor& x, Tensor& y, Tensor& indices, const Pool2dGeometry& g) {
  check_f32("max_pool2d", x);
  const int64_t total = y.numel();
  ember::cuda::with_index_type(fits32(total, g), [&](auto index) {
    using Index = decltype(index);
    ember::cuda::launch(max_pool2d_forward_kernel<Index>, blocks_for(total), kThreads, 0, ember::cuda::stream(),
                        static_cast<const float*>(x.data_ptr()), static_cast<float*>(y.data_ptr()),
                        static_cast<int64_t*>(indices.data_ptr()), static_cast<Index>(total), dims_of(g),
                        divisors_of<Index>(g));
    EMBER_CUDA_CHECK_LAUNCH("max_pool2d_forward_kernel");
  });
}

void backward(const Tensor& gy, const Tensor& indices, Tensor& gx, const Pool2dGeometry& g) {
  check_f32("max_pool2d_backward", gx);
  const int64_t total = gx.numel();
  ember::cuda::with_index_type(fits32(total, g), [&](auto index) {
    using Index = decltype(index);
    ember::cuda::launch(max_pool2d_backward_kernel<Index>, blocks_for(total), kThreads, 0, ember::cuda::stream(),
                        static_cast<const float*>(gy.data_ptr()), static_cast<const int64_t*>(indices.data_ptr()),
                        static_cast<float*>(gx.data_ptr()), static_cast<Index>(total), dims_of(g),
                        divisors_of<Index>(g));
    EMBER_CUDA_CHECK_LAUNCH("max_pool2d_backward_kernel");
  });
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<PoolKernels>(DeviceType::CUDA);
  t.max_pool2d_forward = forward;
  t.max_pool2d_backward = backward;
});

}  // namespace ember::kernels::cuda_backend
