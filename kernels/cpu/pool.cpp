/// @file kernels/cpu/pool.cpp @brief CPU 2-D max pooling (f32, f64): forward with argmax, backward scatter in output order, parallel over planes.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"
#include "kernels/pool.h"

namespace ember::kernels::cpu {
namespace {

void max_pool2d_forward(const Tensor& x, Tensor& y, Tensor& indices, const Pool2dGeometry& g) {
  visit_floating(x.dtype(), "max_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = static_cast<const T*>(x.data_ptr());
    T* yp = static_cast<T*>(y.data_ptr());
    int64_t* ip = static_cast<int64_t*>(indices.data_ptr());
    const int64_t plane_in = g.height * g.width, plane_out = g.out_h * g.out_w;
#pragma omp parallel for if (x.numel() > kParallelThreshold) schedule(static)
    for (int64_t p = 0; p < g.planes; ++p) {
      const T* img = xp + p * plane_in;
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        const int64_t h0 = oh * g.stride_h - g.pad_h;
        const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + g.kernel_h, g.height);
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          const int64_t w0 = ow * g.stride_w - g.pad_w;
          const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(w0 + g.kernel_w, g.width);
          T best = -std::numeric_limits<T>::infinity();
          int64_t at = hs * g.width + ws;
          for (int64_t ih = hs; ih < he; ++ih) {
            for (int64_t iw = ws; iw < we; ++iw) {
              const T v = img[ih * g.width + iw];
              if (v > best || (std::isnan(v) && !std::isnan(best))) {
                best = v;
                at = ih * g.width + iw;
              }
            }
          }
          yp[p * plane_out + oh * g.out_w + ow] = best;
          ip[p * plane_out + oh * g.out_w + ow] = at;
        }
      }
    }
  });
}

void max_pool2d_backward(const Tensor& gy, const Tensor& indices, Tensor& gx, const Pool2dGeometry& g) {
  visit_floating(gx.dtype(), "max_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* gp = static_cast<const T*>(gy.data_ptr());
    const int64_t* ip = static_cast<const int64_t*>(indices.data_ptr());
    T* xp = static_cast<T*>(gx.data_ptr());
    const int64_t plane_in = g.height * g.width, plane_out = g.out_h * g.out_w;
#pragma omp parallel for if (gx.numel() > kParallelThreshold) schedule(static)
    for (int64_t p = 0; p < g.planes; ++p) {
      T* img = xp + p * plane_in;
      for (int64_t i = 0; i < plane_in; ++i) img[i] = T(0);
      // Ascending output order: the CUDA gather kernel sums overlapping windows in the same order.
      for (int64_t o = 0; o < plane_out; ++o) img[ip[p * plane_out + o]] += gp[p * plane_out + o];
    }
  });
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<PoolKernels>(DeviceType::CPU);
  t.max_pool2d_forward = max_pool2d_forward;
  t.max_pool2d_backward = max_pool2d_backward;
});

}  // namespace ember::kernels::cpu
