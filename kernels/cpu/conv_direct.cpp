/// @file kernels/cpu/conv_direct.cpp @brief The CPU's direct convolution (the five direct entries of ConvKernels): per image, im2col into a scratch block of the thread's, then one GEMM; images spread over the OpenMP threads.
//
// Why not the batch-wide lowering (im2col of the whole micro-batch, then one GEMM per image): its column
// matrix (32 x 144 x 196 floats = 3.6 MB for the CNN's conv2 at micro-batch 32) left the caches between
// im2col and the GEMMs, and the small per-image GEMMs ran one after the other, each too small to keep two
// threads busy. Here each thread takes whole images: its column block (113 KB for conv2) is written and
// read while it is in L2, and OpenBLAS, called inside the parallel region, runs single-threaded.
//
// Determinism: the forward and the input gradient compute each image on its own, so the thread count
// changes nothing. The weight gradient sums over images: it is split into min(N, kGroups) fixed groups of
// consecutive images (each a chain of GEMMs, beta = 1 after the first), and the groups' partial sums are
// added in group order — the same bits for every thread count. With beta = 1 the result is
// dw + (partial_0 + partial_1 + ...), the micro-batch's gradient added to .grad as one term.
#include <omp.h>

#include <algorithm>

#include "kernels/conv.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/im2col.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/dispatch.h"

namespace ember::kernels::cpu {
namespace {

/// Fixed number of image groups of the weight gradient (partial sums kept: kGroups x Cout x C*kh*kw).
constexpr int64_t kGroups = 16;

/// A 1x1 kernel with stride 1 and no padding: an image [C, H*W] is its own column matrix.
bool image_is_col(const Conv2dGeometry& g) {
  return g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;
}

/// The sizes every entry point uses: per image, the input plane block, K = C*kh*kw, L = OH*OW.
struct Sizes {
  int64_t image, k, l, cout;
  Sizes(const Conv2dGeometry& g, int64_t out_channels)
      : image(g.channels * g.height * g.width), k(g.col_rows()), l(g.col_cols()), cout(out_channels) {}
};

/// Image n's column matrix [K, L]: the image itself when image_is_col, else im2col into `scratch`.
template <class T>
const T* image_col(const T* x, const Conv2dGeometry& g, const Sizes& s, T* scratch) {
  if (image_is_col(g)) return x;
  const int64_t kk = g.kernel_h * g.kernel_w, plane = g.height * g.width;
  for (int64_t c = 0; c < g.channels; ++c) im2col_plane(x + c * plane, scratch + c * kk * s.l, g);
  return scratch;
}

/// Runs body(i, scratch) for i in [0, count), the items split statically over the OpenMP threads when
/// there are several and `work` (elements touched) is large enough; each thread gets its own block of
/// `scratch_elems` from the (caching) allocator.
template <class T, class F>
void parallel_items(int64_t count, int64_t scratch_elems, DType dtype, int64_t work, F&& body) {
  const bool parallel = count > 1 && work > kParallelThreshold;
  const int64_t threads = parallel ? omp_get_max_threads() : 1, block = std::max<int64_t>(scratch_elems, 1);
  Tensor scratch = empty({threads, block}, TensorOptions{}.set_dtype(dtype));
  T* base = static_cast<T*>(scratch.data_ptr());
#pragma omp parallel if (parallel) num_threads(static_cast<int>(threads))
  {
    T* mine = base + static_cast<int64_t>(omp_get_thread_num()) * block;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < count; ++i) body(i, mine);
  }
}

void forward(const Tensor& x, const Tensor& w, Tensor& y, const Conv2dGeometry& g) {
  visit_floating(x.dtype(), "conv2d_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = static_cast<const T*>(x.data_ptr());
    const T* wp = static_cast<const T*>(w.data_ptr());
    T* yp = static_cast<T*>(y.data_ptr());
    const Sizes s(g, w.size(0));
    // y_n [Cout, L] = W [Cout, K] col_n [K, L]
    parallel_items<T>(g.batch, image_is_col(g) ? 0 : s.k * s.l, x.dtype(), g.batch * s.k * s.l, [&](int64_t n, T* col) {
      gemm_row_major(false, false, s.cout, s.l, s.k, T(1), wp, s.k, image_col(xp + n * s.image, g, s, col), s.l, T(0),
              yp + n * s.cout * s.l, s.l);
    });
  });
}

void add_bias(const Tensor& bias, Tensor& y) {
  visit_floating(y.dtype(), "conv2d_add_bias", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* bp = static_cast<const T*>(bias.data_ptr());
    T* yp = static_cast<T*>(y.data_ptr());
    const int64_t cout = y.size(1), l = y.size(2) * y.size(3), rows = y.size(0) * cout;
#pragma omp parallel for if (y.numel() > kParallelThreshold) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T b = bp[r % cout];
      T* __restrict__ row = yp + r * l;
      for (int64_t i = 0; i < l; ++i) row[i] += b;
    }
  });
}

void backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv2dGeometry& g) {
  visit_floating(dx.dtype(), "conv2d_backward_data", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* dyp = static_cast<const T*>(dy.data_ptr());
    const T* wp = static_cast<const T*>(w.data_ptr());
    T* dxp = static_cast<T*>(dx.data_ptr());
    const Sizes s(g, w.size(0));
    const bool direct = image_is_col(g);
    const int64_t kk = g.kernel_h * g.kernel_w, plane = g.height * g.width;
    // dcol_n [K, L] = W^T dy_n, then dx_n = col2im(dcol_n) (the image itself is dcol_n for a 1x1 kernel).
    parallel_items<T>(g.batch, direct ? 0 : s.k * s.l, dx.dtype(), g.batch * s.k * s.l, [&](int64_t n, T* dcol) {
      T* img = dxp + n * s.image;
      gemm_row_major(true, false, s.k, s.l, s.cout, T(1), wp, s.k, dyp + n * s.cout * s.l, s.l, T(0), direct ? img : dcol, s.l);
      if (!direct)
        for (int64_t c = 0; c < g.channels; ++c) col2im_plane(dcol + c * kk * s.l, img + c * plane, g);
    });
  });
}

void backward_filter(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv2dGeometry& g, double beta) {
  visit_floating(dw.dtype(), "conv2d_backward_filter", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = static_cast<const T*>(x.data_ptr());
    const T* dyp = static_cast<const T*>(dy.data_ptr());
    T* dwp = static_cast<T*>(dw.data_ptr());
    const Sizes s(g, dw.size(0));
    const int64_t groups = std::min(g.batch, kGroups), wk = s.cout * s.k;
    Tensor partials = empty({groups, wk}, TensorOptions{}.set_dtype(dw.dtype()));
    T* pp = static_cast<T*>(partials.data_ptr());
    // partial_j [Cout, K] = sum over the images n of group j of dy_n [Cout, L] col_n^T [L, K]
    parallel_items<T>(groups, image_is_col(g) ? 0 : s.k * s.l, dw.dtype(), g.batch * s.k * s.l, [&](int64_t j, T* col) {
      const int64_t first = j * g.batch / groups, last = (j + 1) * g.batch / groups;
      for (int64_t n = first; n < last; ++n)
        gemm_row_major(false, true, s.cout, s.k, s.l, T(1), dyp + n * s.cout * s.l, s.l, image_col(xp + n * s.image, g, s, col), s.l,
                n == first ? T(0) : T(1), pp + j * wk, s.k);
    });
    const bool add = beta != 0.0;
#pragma omp parallel for if (groups * wk > kParallelThreshold) schedule(static)
    for (int64_t i = 0; i < wk; ++i) {
      T sum = pp[i];
      for (int64_t j = 1; j < groups; ++j) sum += pp[j * wk + i];
      dwp[i] = add ? dwp[i] + sum : sum;
    }
  });
}

void backward_bias(const Tensor& dy, Tensor& db, double beta) {
  visit_floating(db.dtype(), "conv2d_backward_bias", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* dyp = static_cast<const T*>(dy.data_ptr());
    T* dbp = static_cast<T*>(db.data_ptr());
    const int64_t n = dy.size(0), cout = dy.size(1), l = dy.size(2) * dy.size(3);
    const bool add = beta != 0.0;
    // db[c] = sum over images and positions, in double, images in order.
#pragma omp parallel for if (dy.numel() > kParallelThreshold) schedule(static)
    for (int64_t c = 0; c < cout; ++c) {
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const T* row = dyp + (i * cout + c) * l;
#pragma omp simd reduction(+ : sum)
        for (int64_t p = 0; p < l; ++p) sum += static_cast<double>(row[p]);
      }
      dbp[c] = add ? static_cast<T>(static_cast<double>(dbp[c]) + sum) : static_cast<T>(sum);
    }
  });
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<ConvKernels>(DeviceType::CPU);
  t.conv2d_forward = forward;
  t.conv2d_add_bias = add_bias;
  t.conv2d_backward_data = backward_data;
  t.conv2d_backward_filter = backward_filter;
  t.conv2d_backward_bias = backward_bias;
});

}  // namespace ember::kernels::cpu
