/// @file kernels/cpu/pool.cpp @brief CPU 2-D max pooling (f32, f64): forward with argmax (AVX-512 and SSE2 fast paths for 2x2 / stride 2), backward scatter in output order, parallel over planes.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"
#include "kernels/pool.h"

namespace ember::kernels::cpu {
namespace {

/// The window rule of every max-pool kernel: candidates in scan order (rows, then columns, ascending);
/// a later one replaces the best when it is greater, or when it is NaN and the best is not.
inline bool takes(float v, float best) { return v > best || (std::isnan(v) && !std::isnan(best)); }

/// 2x2 / stride 2 / no padding over one float plane (the CNN's pooling). Every window is whole, so its
/// first candidate starts as the best (the general loop's -inf start picks it too). With SSE2 four
/// windows are done at once with compare-and-blend, no branch on the data: a scalar loop compiles the
/// rule to branches that mispredict on every other window.
void max_pool_2x2_plane(const float* img, float* y, int64_t* idx, const Pool2dGeometry& g) {
  const int64_t w = g.width;
  for (int64_t oh = 0; oh < g.out_h; ++oh) {
    const float* r0 = img + 2 * oh * w;
    const float* r1 = r0 + w;
    float* yrow = y + oh * g.out_w;
    int64_t* irow = idx + oh * g.out_w;
    const int64_t base = 2 * oh * w;
    int64_t ow = 0;
#if defined(__SSE2__)
    for (; ow + 4 <= g.out_w; ow += 4) {
      const __m128 a0 = _mm_loadu_ps(r0 + 2 * ow), b0 = _mm_loadu_ps(r0 + 2 * ow + 4);
      const __m128 a1 = _mm_loadu_ps(r1 + 2 * ow), b1 = _mm_loadu_ps(r1 + 2 * ow + 4);
      const __m128 cand[4] = {_mm_shuffle_ps(a0, b0, _MM_SHUFFLE(2, 0, 2, 0)),   // (0, 0) of 4 windows
                              _mm_shuffle_ps(a0, b0, _MM_SHUFFLE(3, 1, 3, 1)),   // (0, 1)
                              _mm_shuffle_ps(a1, b1, _MM_SHUFFLE(2, 0, 2, 0)),   // (1, 0)
                              _mm_shuffle_ps(a1, b1, _MM_SHUFFLE(3, 1, 3, 1))};  // (1, 1)
      __m128 best = cand[0];
      __m128i k = _mm_setzero_si128();
      for (int j = 1; j < 4; ++j) {
        const __m128 v = cand[j];
        const __m128 t = _mm_or_ps(_mm_cmpgt_ps(v, best), _mm_and_ps(_mm_cmpunord_ps(v, v), _mm_cmpord_ps(best, best)));
        best = _mm_or_ps(_mm_and_ps(t, v), _mm_andnot_ps(t, best));
        const __m128i ti = _mm_castps_si128(t);
        k = _mm_or_si128(_mm_and_si128(ti, _mm_set1_epi32(j)), _mm_andnot_si128(ti, k));
      }
      _mm_storeu_ps(yrow + ow, best);
      alignas(16) int32_t kk[4];
      _mm_store_si128(reinterpret_cast<__m128i*>(kk), k);
      for (int i = 0; i < 4; ++i) irow[ow + i] = base + 2 * (ow + i) + (kk[i] & 1) + (kk[i] >> 1) * w;
    }
#endif
    for (; ow < g.out_w; ++ow) {
      const int64_t c = base + 2 * ow;
      const int64_t at_k[4] = {c, c + 1, c + w, c + w + 1};
      float best = img[at_k[0]];
      int64_t at = at_k[0];
      for (int j = 1; j < 4; ++j)
        if (takes(img[at_k[j]], best)) {
          best = img[at_k[j]];
          at = at_k[j];
        }
      yrow[ow] = best;
      irow[ow] = at;
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
/// The same 2x2 / stride 2 pooling with AVX-512: 16 windows per step (a tail step masked), candidates
/// deinterleaved from two rows of 32 floats, the window rule as compare masks, indices widened to int64.
/// Same values and indices as max_pool_2x2_plane (the rule is the same per window).
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) void max_pool_2x2_plane_avx512(
    const float* img, float* y, int64_t* idx, const Pool2dGeometry& g) {
  const int64_t w = g.width;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int64_t oh = 0; oh < g.out_h; ++oh) {
    const float* r0 = img + 2 * oh * w;
    const float* r1 = r0 + w;
    const int64_t base = 2 * oh * w;
    for (int64_t ow = 0; ow < g.out_w; ow += 16) {
      const int64_t rem = std::min<int64_t>(16, g.out_w - ow);
      const __mmask16 m = static_cast<__mmask16>((1u << rem) - 1u);
      const __mmask16 m_lo = static_cast<__mmask16>(rem >= 8 ? 0xFFFFu : (1u << (2 * rem)) - 1u);
      const __mmask16 m_hi = static_cast<__mmask16>(rem <= 8 ? 0u : (1u << (2 * rem - 16)) - 1u);
      const __m512 a0 = _mm512_maskz_loadu_ps(m_lo, r0 + 2 * ow), b0 = _mm512_maskz_loadu_ps(m_hi, r0 + 2 * ow + 16);
      const __m512 a1 = _mm512_maskz_loadu_ps(m_lo, r1 + 2 * ow), b1 = _mm512_maskz_loadu_ps(m_hi, r1 + 2 * ow + 16);
      const __m512 cand[4] = {_mm512_permutex2var_ps(a0, even, b0), _mm512_permutex2var_ps(a0, odd, b0),
                              _mm512_permutex2var_ps(a1, even, b1), _mm512_permutex2var_ps(a1, odd, b1)};
      __m512 best = cand[0];
      __m512i k = _mm512_setzero_si512();
      for (int j = 1; j < 4; ++j) {
        const __m512 v = cand[j];
        const __mmask16 t = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) |
                            (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
        best = _mm512_mask_blend_ps(t, best, v);
        k = _mm512_mask_blend_epi32(t, k, _mm512_set1_epi32(j));
      }
      _mm512_mask_storeu_ps(y + oh * g.out_w + ow, m, best);
      // index = base + 2 (ow + lane) + (k & 1) + (k >= 2 ? w : 0); `even` holds 2 * lane
      const __m512i col = _mm512_add_epi32(even, _mm512_and_si512(k, _mm512_set1_epi32(1)));
      const __mmask16 lower = _mm512_cmpge_epi32_mask(k, _mm512_set1_epi32(2));
      const __m512i start = _mm512_set1_epi64(base + 2 * ow), row = _mm512_set1_epi64(w);
      // maskz forms: the plain ones start from an undefined vector, which g++ 12 warns about under -Werror
      __m512i lo = _mm512_add_epi64(start, _mm512_maskz_cvtepi32_epi64(0xFF, _mm512_maskz_extracti64x4_epi64(0xF, col, 0)));
      __m512i hi = _mm512_add_epi64(start, _mm512_maskz_cvtepi32_epi64(0xFF, _mm512_maskz_extracti64x4_epi64(0xF, col, 1)));
      lo = _mm512_mask_add_epi64(lo, static_cast<__mmask8>(lower), lo, row);
      hi = _mm512_mask_add_epi64(hi, static_cast<__mmask8>(lower >> 8), hi, row);
      int64_t* out = idx + oh * g.out_w + ow;
      _mm512_mask_storeu_epi64(out, static_cast<__mmask8>(m), lo);
      _mm512_mask_storeu_epi64(out + 8, static_cast<__mmask8>(m >> 8), hi);
    }
  }
}
const bool kHasAvx512 = has_avx512();
#else
void max_pool_2x2_plane_avx512(const float* img, float* y, int64_t* idx, const Pool2dGeometry& g) {
  max_pool_2x2_plane(img, y, idx, g);
}
const bool kHasAvx512 = false;
#endif

void max_pool2d_forward(const Tensor& x, Tensor& y, Tensor& indices, const Pool2dGeometry& g) {
  visit_floating(x.dtype(), "max_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = static_cast<const T*>(x.data_ptr());
    T* yp = static_cast<T*>(y.data_ptr());
    int64_t* ip = static_cast<int64_t*>(indices.data_ptr());
    const int64_t plane_in = g.height * g.width, plane_out = g.out_h * g.out_w;
    if constexpr (std::is_same_v<T, float>) {
      if (g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 && g.pad_w == 0) {
        auto* plane_fn = kHasAvx512 ? max_pool_2x2_plane_avx512 : max_pool_2x2_plane;
#pragma omp parallel for if (x.numel() > kParallelThreshold) schedule(static)
        for (int64_t p = 0; p < g.planes; ++p) plane_fn(xp + p * plane_in, yp + p * plane_out, ip + p * plane_out, g);
        return;
      }
    }
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
