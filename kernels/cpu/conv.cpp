/// @file kernels/cpu/conv.cpp @brief CPU im2col / col2im kernels (f32, f64), parallel over (image, channel) planes (the loops: im2col.h).
#include "kernels/conv.h"
#include "kernels/cpu/im2col.h"
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
    // Plane p = (n, c) owns rows c*kk .. c*kk + kk - 1 of image n's column matrix.
#pragma omp parallel for if (col.numel() > kParallelThreshold) schedule(static)
    for (int64_t p = 0; p < planes; ++p) im2col_plane(xp + p * g.height * g.width, cp + p * kk * l, g);
  });
}

void col2im(const Tensor& col, Tensor& x, const Conv2dGeometry& g) {
  visit_floating(x.dtype(), "col2im", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* cp = static_cast<const T*>(col.data_ptr());
    T* xp = static_cast<T*>(x.data_ptr());
    const int64_t planes = g.batch * g.channels, kk = g.kernel_h * g.kernel_w, l = g.col_cols();
#pragma omp parallel for if (x.numel() * kk > kParallelThreshold) schedule(static)
    for (int64_t p = 0; p < planes; ++p) col2im_plane(cp + p * kk * l, xp + p * g.height * g.width, g);
  });
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<ConvKernels>(DeviceType::CPU);
  t.im2col = im2col;
  t.col2im = col2im;
});

}  // namespace ember::kernels::cpu
