/// @file kernels/cpu/conv.cpp @brief CPU im2col / col2im (f32, f64), parallel over (image, channel) planes.
#include "kernels/conv.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"

namespace ember::kernels::cpu {
namespace {

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
          for (int64_t oh = 0; oh < g.out_h; ++oh) {
            const int64_t ih = oh * g.stride_h - g.pad_h + ki;
            T* out = row + oh * g.out_w;
            if (ih < 0 || ih >= g.height) {
              for (int64_t ow = 0; ow < g.out_w; ++ow) out[ow] = T(0);
              continue;
            }
            for (int64_t ow = 0; ow < g.out_w; ++ow) {
              const int64_t iw = ow * g.stride_w - g.pad_w + kj;
              out[ow] = (iw >= 0 && iw < g.width) ? img[ih * g.width + iw] : T(0);
            }
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
      // Gather in the same order as the CUDA kernel (ki, kj ascending), so both round alike.
      for (int64_t ih = 0; ih < g.height; ++ih) {
        for (int64_t iw = 0; iw < g.width; ++iw) {
          T acc = T(0);
          for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
            const int64_t th = ih + g.pad_h - ki;
            if (th < 0 || th % g.stride_h != 0 || th / g.stride_h >= g.out_h) continue;
            const int64_t oh = th / g.stride_h;
            for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
              const int64_t tw = iw + g.pad_w - kj;
              if (tw < 0 || tw % g.stride_w != 0 || tw / g.stride_w >= g.out_w) continue;
              acc += rows[(ki * g.kernel_w + kj) * l + oh * g.out_w + tw / g.stride_w];
            }
          }
          img[ih * g.width + iw] = acc;
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
