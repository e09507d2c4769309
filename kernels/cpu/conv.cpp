/// @file kernels/cpu/conv.cpp @brief CPU im2col / col2im (f32, f64), parallel over (image, channel) planes.
#include <algorithm>

#include "kernels/conv.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"

namespace ember::kernels::cpu {
namespace {

/// The output columns ow whose input column ow * stride - pad + kj lies inside [0, width): [lo, hi).
struct ColRange {
  int64_t lo, hi;
};
ColRange valid_cols(const Conv2dGeometry& g, int64_t kj) {
  const int64_t off = g.pad_w - kj;  // iw = ow * stride - off
  int64_t lo = off > 0 ? (off + g.stride_w - 1) / g.stride_w : 0;
  int64_t hi = (g.width + off + g.stride_w - 1) / g.stride_w;  // first ow with iw >= width
  lo = std::min(lo, g.out_w);
  hi = std::clamp(hi, lo, g.out_w);
  return {lo, hi};
}

void im2col(const Tensor& x, Tensor& col, const Conv2dGeometry& g) {
  visit_floating(x.dtype(), "im2col", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = static_cast<const T*>(x.data_ptr());
    T* cp = static_cast<T*>(col.data_ptr());
    const int64_t planes = g.batch * g.channels, kk = g.kernel_h * g.kernel_w, l = g.col_cols();
#pragma omp parallel for if (col.numel() > kParallelThreshold) schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const T* img = xp + p * g.height * g.width;
      // Plane p = (n, c) owns rows c*kk .. c*kk + kk - 1 of image n's column matrix.
      T* rows = cp + p * kk * l;
      for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
        for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
          T* row = rows + (ki * g.kernel_w + kj) * l;
          const ColRange r = valid_cols(g, kj);
          for (int64_t oh = 0; oh < g.out_h; ++oh) {
            const int64_t ih = oh * g.stride_h - g.pad_h + ki;
            T* __restrict__ out = row + oh * g.out_w;
            if (ih < 0 || ih >= g.height) {
              for (int64_t ow = 0; ow < g.out_w; ++ow) out[ow] = T(0);
              continue;
            }
            // Zero the padded columns, copy the rest (a contiguous run when stride_w == 1).
            const T* __restrict__ src = img + ih * g.width;
            const int64_t shift = kj - g.pad_w;  // iw = ow * stride + shift, inside the row for ow in [lo, hi)
            for (int64_t ow = 0; ow < r.lo; ++ow) out[ow] = T(0);
            if (g.stride_w == 1)
              for (int64_t ow = r.lo; ow < r.hi; ++ow) out[ow] = src[ow + shift];
            else
              for (int64_t ow = r.lo; ow < r.hi; ++ow) out[ow] = src[ow * g.stride_w + shift];
            for (int64_t ow = r.hi; ow < g.out_w; ++ow) out[ow] = T(0);
          }
        }
      }
    }
  });
}

void col2im(const Tensor& col, Tensor& x, const Conv2dGeometry& g) {
  visit_floating(x.dtype(), "col2im", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* cp = static_cast<const T*>(col.data_ptr());
    T* xp = static_cast<T*>(x.data_ptr());
    const int64_t planes = g.batch * g.channels, kk = g.kernel_h * g.kernel_w, l = g.col_cols();
#pragma omp parallel for if (x.numel() * kk > kParallelThreshold) schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const T* rows = cp + p * kk * l;
      T* img = xp + p * g.height * g.width;
      // A scatter over (ki, kj) ascending: each input element receives its column entries in the same
      // order as the CUDA gather kernel sums them (from 0, ki then kj ascending), so both round alike.
      for (int64_t i = 0; i < g.height * g.width; ++i) img[i] = T(0);
      for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
        for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
          const T* row = rows + (ki * g.kernel_w + kj) * l;
          const ColRange r = valid_cols(g, kj);
          for (int64_t oh = 0; oh < g.out_h; ++oh) {
            const int64_t ih = oh * g.stride_h - g.pad_h + ki;
            if (ih < 0 || ih >= g.height) continue;
            T* __restrict__ dst = img + ih * g.width;
            const T* __restrict__ src = row + oh * g.out_w;
            const int64_t shift = kj - g.pad_w;
            if (g.stride_w == 1)
              for (int64_t ow = r.lo; ow < r.hi; ++ow) dst[ow + shift] += src[ow];
            else
              for (int64_t ow = r.lo; ow < r.hi; ++ow) dst[ow * g.stride_w + shift] += src[ow];
          }
        }
      }
    }
  });
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<ConvKernels>(DeviceType::CPU);
  t.im2col = im2col;
  t.col2im = col2im;
});

}  // namespace ember::kernels::cpu
