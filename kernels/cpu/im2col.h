/// @file kernels/cpu/im2col.h @brief The CPU's im2col / col2im loops over one (image, channel) plane, shared by the im2col kernels (conv.cpp) and the direct convolution (conv_direct.cpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/conv.h"

namespace ember::kernels::cpu {

/// The output columns ow whose input column ow * stride - pad + kj lies inside [0, width): [lo, hi).
struct ColRange {
  int64_t lo, hi;
};
inline ColRange valid_cols(const Conv2dGeometry& g, int64_t kj) {
  const int64_t off = g.pad_w - kj;  // iw = ow * stride - off
  int64_t lo = off > 0 ? (off + g.stride_w - 1) / g.stride_w : 0;
  int64_t hi = (g.width + off + g.stride_w - 1) / g.stride_w;  // first ow with iw >= width
  lo = std::min(lo, g.out_w);
  hi = std::clamp(hi, lo, g.out_w);
  return {lo, hi};
}

/// One (image, channel) plane's rows of the column matrix: rows (ki, kj) of `rows`, each out_h * out_w long.
template <class T>
inline void im2col_plane(const T* img, T* rows, const Conv2dGeometry& g) {
  const int64_t l = g.col_cols();
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
        // Zero the padded columns, copy the rest (with stride_w == 1 a contiguous run: memcpy, whose
        // small-size paths beat a vectorized loop's prologue and epilogue on rows of 14 or 28).
        const T* __restrict__ src = img + ih * g.width;
        const int64_t shift = kj - g.pad_w;  // iw = ow * stride + shift, inside the row for ow in [lo, hi)
        for (int64_t ow = 0; ow < r.lo; ++ow) out[ow] = T(0);
        if (g.stride_w == 1)
          std::memcpy(out + r.lo, src + r.lo + shift, static_cast<size_t>(r.hi - r.lo) * sizeof(T));
        else
          for (int64_t ow = r.lo; ow < r.hi; ++ow) out[ow] = src[ow * g.stride_w + shift];
        for (int64_t ow = r.hi; ow < g.out_w; ++ow) out[ow] = T(0);
      }
    }
  }
}

/// The adjoint for one plane: img = the scatter of `rows`, over (ki, kj) ascending: each input element
/// receives its column entries in the same order as the CUDA gather kernel sums them (from 0, ki then kj
/// ascending), so both round alike.
template <class T>
inline void col2im_plane(const T* rows, T* img, const Conv2dGeometry& g) {
  const int64_t l = g.col_cols();
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

}  // namespace ember::kernels::cpu
