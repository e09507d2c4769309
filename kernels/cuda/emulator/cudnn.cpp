/// @file kernels/cuda/emulator/cudnn.cpp @brief The emulated cuDNN (include/cudnn.h): handles, descriptors, algorithm queries, and float NCHW convolutions (forward, backward data/filter/bias) and cudnnAddTensor as plain reference loops queued on the handle's stream.
//
// Statuses follow the cuDNN documentation of each function (legacy API, cuDNN 8/9). Where it says
// nothing, the choice is commented at the place it is made.
//
// The convolution (cuDNN's definition, cross-correlation; CUDNN_CONVOLUTION flips the filter):
//   y[n,k,p,q] = sum_{c,r,s} x[n, c, p*u - pad_h + r*dil_h, q*v - pad_w + s*dil_w] * w'[k,c,r,s]
// (x is 0 outside [0,H) x [0,W); w' = w, or w with r -> R-1-r, s -> S-1-s). Backward data and filter are
// its adjoints in x and w'. Every algorithm sums the same terms in the same order, so they agree bitwise;
// they differ in the workspace they stage the gathered operand in (see Staging).
#include <cudnn.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "kernels/cuda/emulator/device_work.h"
#include "kernels/cuda/emulator/live_handles.h"

struct cudnnContext {
  int device = 0;                 ///< current at cudnnCreate
  cudaStream_t stream = nullptr;  ///< nullptr: the legacy default stream
};
struct cudnnTensorStruct {
  bool set = false;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  int nb_dims = 0;
  int dims[CUDNN_DIM_MAX] = {};
  int strides[CUDNN_DIM_MAX] = {};
};
struct cudnnFilterStruct {
  bool set = false;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  int k = 0, c = 0, h = 0, w = 0;
};
struct cudnnConvolutionStruct {
  bool set = false;
  int pad_h = 0, pad_w = 0, u = 1, v = 1, dil_h = 1, dil_w = 1;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

namespace {

using ember::emu::DeviceSpan;
using ember::emu::LiveHandles;

LiveHandles<cudnnContext>& handles() {
  static auto& h = *new LiveHandles<cudnnContext>();  // never destroyed (released during static destruction)
  return h;
}
LiveHandles<cudnnTensorStruct>& tensors() {
  static auto& t = *new LiveHandles<cudnnTensorStruct>();  // never destroyed (released during static destruction)
  return t;
}
LiveHandles<cudnnFilterStruct>& filters() {
  static auto& f = *new LiveHandles<cudnnFilterStruct>();  // never destroyed (released during static destruction)
  return f;
}
LiveHandles<cudnnConvolutionStruct>& convolutions() {
  static auto& c = *new LiveHandles<cudnnConvolutionStruct>();  // never destroyed (released during static destruction)
  return c;
}

#define EMBER_CUDNN_TRY(expr)                                          \
  do {                                                                 \
    if (const cudnnStatus_t st_ = (expr); st_ != CUDNN_STATUS_SUCCESS) \
      return st_;                                                      \
  } while (0)

/// BAD_PARAM for a null handle (documented for every call taking one), NOT_INITIALIZED for a destroyed or
/// never created one ("cudnnCreate() has not been called"). A live handle used while another device is
/// current: undocumented; cuDNN documents CUDNN_STATUS_MAPPING_ERROR for a "mismatch between the user
/// stream and the cuDNN handle context" (cudnnSetStream), the closest case, so that is returned.
cudnnStatus_t check_handle(cudnnHandle_t h) {
  if (h == nullptr) return CUDNN_STATUS_BAD_PARAM;
  if (!handles().contains(h)) return CUDNN_STATUS_NOT_INITIALIZED;
  if (h->device != ember::emu::current_device()) return CUDNN_STATUS_MAPPING_ERROR;
  return CUDNN_STATUS_SUCCESS;
}

/// Creates a descriptor of type T for a Create*Descriptor call (BAD_PARAM for a null result pointer).
template <class T>
cudnnStatus_t create(LiveHandles<T>& live, T** out) {
  if (out == nullptr) return CUDNN_STATUS_BAD_PARAM;
  *out = live.add(new T{});
  return CUDNN_STATUS_SUCCESS;
}
/// Destroy*Descriptor: null is a no-op (as in cuDNN); a pointer that is not a live descriptor is BAD_PARAM.
template <class T>
cudnnStatus_t destroy(LiveHandles<T>& live, T* d) {
  return d == nullptr || live.remove(d) ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM;
}
/// A live descriptor that has been set (a null, destroyed or never-set descriptor is BAD_PARAM for the
/// calls that use it).
template <class T>
bool usable(LiveHandles<T>& live, const T* d) {
  return live.contains(d) && d->set;
}

bool valid_type(cudnnDataType_t t) { return t >= CUDNN_DATA_FLOAT && t <= CUDNN_DATA_COMPLEX_FP64; }
bool valid_format(cudnnTensorFormat_t f) { return f >= CUDNN_TENSOR_NCHW && f <= CUDNN_TENSOR_NCHW_VECT_C; }

// ---------------------------------------------------------------------------------- tensor shapes

/// A packed float NCHW tensor [n, c, h, w].
struct Shape4 {
  int n = 0, c = 0, h = 0, w = 0;
  std::size_t elems() const { return std::size_t(n) * c * h * w; }
  bool operator==(const Shape4&) const = default;
};

Shape4 shape_of(const cudnnTensorStruct& t) { return {t.dims[0], t.dims[1], t.dims[2], t.dims[3]}; }

/// NOT_SUPPORTED unless the tensor is a 4-D float tensor with packed NCHW strides (the emulation's only
/// layout; strides of dimensions of size 1 do not matter).
cudnnStatus_t check_float_nchw(const cudnnTensorStruct& t) {
  if (t.nb_dims != 4 || t.type != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  long long packed = 1;
  for (int d = 3; d >= 0; --d) {
    if (t.dims[d] != 1 && t.strides[d] != packed) return CUDNN_STATUS_NOT_SUPPORTED;
    packed *= t.dims[d];
  }
  return CUDNN_STATUS_SUCCESS;
}

/// Stores dims and strides; NOT_SUPPORTED beyond 2^31 elements (documented for the Set*Descriptor calls).
cudnnStatus_t set_tensor(cudnnTensorStruct* t, cudnnDataType_t type, int nb, const int* dims, const int* strides) {
  long long elems = 1;
  for (int d = 0; d < nb; ++d) elems *= dims[d];
  if (elems > INT32_MAX) return CUDNN_STATUS_NOT_SUPPORTED;
  t->type = type;
  t->nb_dims = nb;
  std::copy(dims, dims + nb, t->dims);
  std::copy(strides, strides + nb, t->strides);
  t->set = true;
  return CUDNN_STATUS_SUCCESS;
}

/// Blends one output element: alpha * result + beta * out, never reading `out` when beta == 0.
void blend(float& out, double result, float alpha, float beta) {
  out = static_cast<float>(double(alpha) * result + (beta == 0 ? 0.0 : double(beta) * out));
}

/// Reads the float scaling factors alpha and beta (host memory, read at the call).
struct Scale {
  float alpha, beta;
};
Scale read_scale(const void* alpha, const void* beta) {
  return {*static_cast<const float*>(alpha), *static_cast<const float*>(beta)};
}

/// Queues `work` on the handle's stream; EXECUTION_FAILED when the runtime refuses it.
cudnnStatus_t enqueue(cudnnHandle_t h, const char* name, std::vector<DeviceSpan> spans, std::function<void()> work) {
  const cudaError_t e = ember::emu::enqueue(h->stream, name, std::move(spans), [work = std::move(work)] {
    work();
    return ember::emu::WorkStatus::done;
  });
  return e == cudaSuccess ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
}

// ------------------------------------------------------------------------------ convolution geometry

/// A validated 2-D convolution: x [n,c,h,w] * w [k,c,r,s] -> y [n,k,p,q].
struct Geometry {
  Shape4 x;
  int k, r, s, p, q;
  int pad_h, pad_w, u, v, dil_h, dil_w;
  bool flip;  ///< CUDNN_CONVOLUTION: the filter is applied flipped
  cudnnMathType_t math;

  Shape4 y() const { return {x.n, k, p, q}; }
  std::size_t x_image() const { return std::size_t(x.c) * x.h * x.w; }  ///< elements of one image of x
  std::size_t y_image() const { return std::size_t(k) * p * q; }
  std::size_t w_elems() const { return std::size_t(k) * x.c * r * s; }
  int taps() const { return x.c * r * s; }  ///< (c, r, s) per output element
  /// Input row/column under filter tap r (s) at output row p (column q); outside [0,H) / [0,W) in the padding.
  int in_row(int p_, int r_) const { return p_ * u - pad_h + r_ * dil_h; }
  int in_col(int q_, int s_) const { return q_ * v - pad_w + s_ * dil_w; }
  /// Offset in w of w'[k,c,r,s] (the filter as applied).
  std::size_t w_at(int k_, int c_, int r_, int s_) const {
    const int rr = flip ? r - 1 - r_ : r_, ss = flip ? s - 1 - s_ : s_;
    return ((std::size_t(k_) * x.c + c_) * r + rr) * s + ss;
  }
  double macs() const { return double(x.n) * k * p * q * taps(); }
};

/// The output size of the documented formula: 1 + (in + 2*pad - ((filter-1)*dilation + 1)) / stride.
int output_size(int in, int pad, int filter, int dilation, int stride) {
  return 1 + (in + 2 * pad - ((filter - 1) * dilation + 1)) / stride;
}

/// BAD_PARAM checks shared by cudnnGetConvolution2dForwardOutputDim and the convolution calls: usable
/// descriptors, a 4-D input (the filter is 4-D), matching data types and input channels (group count 1),
/// and a dilated filter no larger than the padded input.
cudnnStatus_t check_input_and_filter(const cudnnConvolutionStruct* conv, const cudnnTensorStruct* x,
                                     const cudnnFilterStruct* w) {
  if (!usable(convolutions(), conv) || !usable(tensors(), x) || !usable(filters(), w)) return CUDNN_STATUS_BAD_PARAM;
  if (x->nb_dims != 4 || x->type != w->type || x->dims[1] != w->c) return CUDNN_STATUS_BAD_PARAM;
  if ((w->h - 1) * conv->dil_h + 1 > x->dims[2] + 2 * conv->pad_h ||
      (w->w - 1) * conv->dil_w + 1 > x->dims[3] + 2 * conv->pad_w)
    return CUDNN_STATUS_BAD_PARAM;
  return CUDNN_STATUS_SUCCESS;
}

/// Validates x (input side), w, conv and y (output side) of a convolution call and returns its geometry.
/// BAD_PARAM: unusable descriptors, mismatched dimension counts, data types or channels, y's batch or
/// channels differ from x's batch and w's filter count. NOT_SUPPORTED: anything but float NCHW (tensors,
/// filter format, compute type). y's spatial size differing from the formula gives `spatial_mismatch`:
/// NOT_SUPPORTED for the forward call, BAD_PARAM for backward data (as documented) and backward filter
/// (undocumented there; the same as backward data).
cudnnStatus_t make_geometry(const cudnnTensorStruct* x, const cudnnFilterStruct* w, const cudnnConvolutionStruct* conv,
                            const cudnnTensorStruct* y, cudnnStatus_t spatial_mismatch, Geometry* g) {
  EMBER_CUDNN_TRY(check_input_and_filter(conv, x, w));
  if (!usable(tensors(), y) || y->nb_dims != x->nb_dims || y->type != x->type) return CUDNN_STATUS_BAD_PARAM;
  if (y->dims[0] != x->dims[0] || y->dims[1] != w->k) return CUDNN_STATUS_BAD_PARAM;
  EMBER_CUDNN_TRY(check_float_nchw(*x));
  EMBER_CUDNN_TRY(check_float_nchw(*y));
  if (w->format != CUDNN_TENSOR_NCHW || conv->compute != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  *g = Geometry{shape_of(*x), w->k, w->h, w->w,
                output_size(x->dims[2], conv->pad_h, w->h, conv->dil_h, conv->u),
                output_size(x->dims[3], conv->pad_w, w->w, conv->dil_w, conv->v),
                conv->pad_h, conv->pad_w, conv->u, conv->v, conv->dil_h, conv->dil_w,
                conv->mode == CUDNN_CONVOLUTION, conv->math};
  if (y->dims[2] != g->p || y->dims[3] != g->q) return spatial_mismatch;
  return CUDNN_STATUS_SUCCESS;
}

// ------------------------------------------------------------------------------ reference loops

/// How an algorithm uses its workspace: it stages the gathered operand of `rows` output rows at a time
/// (C*R*S x rows*Q elements): none (implicit GEMM), one row (the tiled/precomputed variants) or the whole
/// image (GEMM with an im2col buffer). Unsupported algorithms are CUDNN_STATUS_NOT_SUPPORTED.
enum class Staging { none, row, image, unsupported };

/// Output rows staged at a time.
int staged_rows(Staging st, const Geometry& g) { return st == Staging::row ? 1 : st == Staging::image ? g.p : 0; }

/// The buffers of one convolution call: its x side, filter and y side, one of which is also `out`.
/// Forward: x, w -> out = y; backward data: w, y = dy -> out = x = dx; backward filter: x, y = dy -> out = w = dw.
struct Operands {
  const float* x;
  const float* w;
  const float* y;
  float* out;
  unsigned char* ws;  ///< the workspace given (poisoned, then staged into)
  std::size_t ws_bytes;
};

/// Element i of type T of a workspace (the workspace pointer may have any alignment).
template <class T>
T ws_load(const unsigned char* ws, std::size_t i) {
  T v;
  std::memcpy(&v, ws + i * sizeof(T), sizeof(T));
  return v;
}
template <class T>
void ws_store(unsigned char* ws, std::size_t i, T v) {
  std::memcpy(ws + i * sizeof(T), &v, sizeof(T));
}

/// x patches of one image: the value under tap (c,r,s) at output (p,q), 0 in the padding. Read from x,
/// or from a staged buffer of floats [taps][rows*Q] holding output rows [p0, p0 + rows).
struct Patches {
  const Geometry& g;
  const float* x_img;
  const unsigned char* staged = nullptr;
  int p0 = 0, rows = 0;

  float at(int c, int r, int s, int p, int q) const {
    if (staged != nullptr)
      return ws_load<float>(staged, ((c * g.r + r) * g.s + s) * std::size_t(rows) * g.q + (p - p0) * g.q + q);
    const int ih = g.in_row(p, r), iw = g.in_col(q, s);
    if (ih < 0 || ih >= g.x.h || iw < 0 || iw >= g.x.w) return 0.0f;
    return x_img[(std::size_t(c) * g.x.h + ih) * g.x.w + iw];
  }
  /// Copies output rows [p0, p0 + rows) of the patches into `buffer` and reads from there from now on.
  void stage(unsigned char* buffer, int first_row, int row_count) {
    Patches direct{g, x_img};
    for (int c = 0; c < g.x.c; ++c)
      for (int r = 0; r < g.r; ++r)
        for (int s = 0; s < g.s; ++s)
          for (int p = first_row; p < first_row + row_count; ++p)
            for (int q = 0; q < g.q; ++q)
              ws_store(buffer, ((c * g.r + r) * g.s + s) * std::size_t(row_count) * g.q + (p - first_row) * g.q + q,
                       direct.at(c, r, s, p, q));
    staged = buffer, p0 = first_row, rows = row_count;
  }
};

/// Calls body(p0, rows) over the output rows of an image in the algorithm's staging blocks.
template <class F>
void for_row_blocks(Staging st, const Geometry& g, F body) {
  const int block = std::max(1, staged_rows(st, g));
  for (int p0 = 0; p0 < g.p; p0 += block) body(p0, std::min(block, g.p - p0));
}

/// y = alpha * conv(x, w) + beta * y.
void run_forward(const Geometry& g, Staging st, Scale sc, const Operands& o) {
  for (int n = 0; n < g.x.n; ++n) {
    Patches x{g, o.x + n * g.x_image()};
    float* y = o.out + n * g.y_image();
    for_row_blocks(st, g, [&](int p0, int rows) {
      if (st != Staging::none) x.stage(o.ws, p0, rows);
      for (int p = p0; p < p0 + rows; ++p)
        for (int k = 0; k < g.k; ++k)
          for (int q = 0; q < g.q; ++q) {
            double acc = 0;
            for (int c = 0; c < g.x.c; ++c)
              for (int r = 0; r < g.r; ++r)
                for (int s = 0; s < g.s; ++s) acc += double(o.w[g.w_at(k, c, r, s)]) * x.at(c, r, s, p, q);
            blend(y[(std::size_t(k) * g.p + p) * g.q + q], acc, sc.alpha, sc.beta);
          }
    });
  }
}

/// dw' = alpha * sum_n dy (x) x-patches + beta * dw (dw stored unflipped: dw[w_at(k,c,r,s)]).
void run_backward_filter(const Geometry& g, Staging st, Scale sc, const Operands& o) {
  std::vector<double> acc(g.w_elems(), 0.0);  // [k][c][r][s] as applied
  for (int n = 0; n < g.x.n; ++n) {
    Patches x{g, o.x + n * g.x_image()};
    const float* dy = o.y + n * g.y_image();
    for_row_blocks(st, g, [&](int p0, int rows) {
      if (st != Staging::none) x.stage(o.ws, p0, rows);
      for (int p = p0; p < p0 + rows; ++p)
        for (int k = 0; k < g.k; ++k)
          for (int c = 0, t = 0; c < g.x.c; ++c)
            for (int r = 0; r < g.r; ++r)
              for (int s = 0; s < g.s; ++s, ++t)
                for (int q = 0; q < g.q; ++q)
                  acc[std::size_t(k) * g.taps() + t] += double(dy[(std::size_t(k) * g.p + p) * g.q + q]) *
                                                        x.at(c, r, s, p, q);
    });
  }
  for (int k = 0, i = 0; k < g.k; ++k)
    for (int c = 0; c < g.x.c; ++c)
      for (int r = 0; r < g.r; ++r)
        for (int s = 0; s < g.s; ++s, ++i) blend(o.out[g.w_at(k, c, r, s)], acc[i], sc.alpha, sc.beta);
}

/// dx = alpha * conv^T(dy, w) + beta * dx: per tap and output position, sum_k w'[k,c,r,s] dy[k,p,q]
/// (staged in the workspace as doubles by the staging algorithms), added into dx under that tap.
void run_backward_data(const Geometry& g, Staging st, Scale sc, const Operands& o) {
  std::vector<double> acc(g.x_image());
  auto tap_sum = [&](const float* dy, int c, int r, int s, int p, int q) {
    double t = 0;
    for (int k = 0; k < g.k; ++k) t += double(o.w[g.w_at(k, c, r, s)]) * dy[(std::size_t(k) * g.p + p) * g.q + q];
    return t;
  };
  for (int n = 0; n < g.x.n; ++n) {
    const float* dy = o.y + n * g.y_image();
    std::fill(acc.begin(), acc.end(), 0.0);
    for_row_blocks(st, g, [&](int p0, int rows) {
      auto at = [&](int c, int r, int s, int p, int q) -> std::size_t {
        return ((c * g.r + r) * g.s + s) * std::size_t(rows) * g.q + (p - p0) * g.q + q;
      };
      if (st != Staging::none)
        for (int c = 0; c < g.x.c; ++c)
          for (int r = 0; r < g.r; ++r)
            for (int s = 0; s < g.s; ++s)
              for (int p = p0; p < p0 + rows; ++p)
                for (int q = 0; q < g.q; ++q) ws_store(o.ws, at(c, r, s, p, q), tap_sum(dy, c, r, s, p, q));
      for (int p = p0; p < p0 + rows; ++p)
        for (int c = 0; c < g.x.c; ++c)
          for (int r = 0; r < g.r; ++r)
            for (int s = 0; s < g.s; ++s)
              for (int q = 0; q < g.q; ++q) {
                const int ih = g.in_row(p, r), iw = g.in_col(q, s);
                if (ih < 0 || ih >= g.x.h || iw < 0 || iw >= g.x.w) continue;
                acc[(std::size_t(c) * g.x.h + ih) * g.x.w + iw] +=
                    st == Staging::none ? tap_sum(dy, c, r, s, p, q) : ws_load<double>(o.ws, at(c, r, s, p, q));
              }
    });
    float* dx = o.out + n * acc.size();
    for (std::size_t i = 0; i < acc.size(); ++i) blend(dx[i], acc[i], sc.alpha, sc.beta);
  }
}

// -------------------------------------------------------------------------- the three directions

using RunFn = void (*)(const Geometry&, Staging, Scale, const Operands&);

/// Which buffer of a call: the x side (x, or dx), the filter (w, or dw), the y side (y, or dy).
enum class Side { x, w, y };

/// A convolution direction: its calls' names, reference loop, algorithm tables, the names of its
/// buffers (for fault messages), which of them it writes, and the status of a spatial size mismatch.
struct Direction {
  const char* name;       ///< the compute call
  const char* find_name;  ///< its cudnnFind*AlgorithmEx
  RunFn run;
  int algo_count;
  const Staging* staging;     ///< per algorithm
  const bool* deterministic;  ///< per algorithm (labels, as in cuDNN's enum comments)
  std::size_t staged_elem;    ///< bytes per staged element
  const char* names[3];       ///< per Side
  Side output;
  cudnnStatus_t spatial_mismatch;
};

constexpr Staging kNone = Staging::none, kRow = Staging::row, kImage = Staging::image, kNo = Staging::unsupported;
constexpr Staging kFwdStaging[CUDNN_CONVOLUTION_FWD_ALGO_COUNT] = {kNone, kRow, kImage, kNo, kNo, kNo, kNo, kNo};
constexpr bool kFwdDeterministic[CUDNN_CONVOLUTION_FWD_ALGO_COUNT] = {true, true, true, true, true, true, true, true};
// ALGO_0: none, ALGO_1: image, FFT_TILING: row.
constexpr Staging kBwdDataStaging[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT] = {kNone, kImage, kNo, kRow, kNo, kNo};
constexpr bool kBwdDataDeterministic[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT] = {false, true, true, true, true, true};
// ALGO_0: none, ALGO_1: image, ALGO_3: row.
constexpr Staging kBwdFilterStaging[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT] = {kNone, kImage, kNo, kRow,
                                                                                kNo,   kNo,    kNo};
constexpr bool kBwdFilterDeterministic[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT] = {false, true, true, false,
                                                                                   true,  true, true};

// Forward and backward filter stage x patches (float); backward data stages per-tap sums over k (double).
const Direction kForward{"cudnnConvolutionForward",    "cudnnFindConvolutionForwardAlgorithmEx",
                         run_forward,                  CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                         kFwdStaging,                  kFwdDeterministic,
                         sizeof(float),                {"x", "w", "y"},
                         Side::y,                      CUDNN_STATUS_NOT_SUPPORTED};
const Direction kBackwardData{"cudnnConvolutionBackwardData", "cudnnFindConvolutionBackwardDataAlgorithmEx",
                              run_backward_data,              CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                              kBwdDataStaging,                kBwdDataDeterministic,
                              sizeof(double),                 {"dx", "w", "dy"},
                              Side::x,                        CUDNN_STATUS_BAD_PARAM};
const Direction kBackwardFilter{"cudnnConvolutionBackwardFilter", "cudnnFindConvolutionBackwardFilterAlgorithmEx",
                                run_backward_filter,              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                kBwdFilterStaging,                kBwdFilterDeterministic,
                                sizeof(float),                    {"x", "dw", "dy"},
                                Side::w,                          CUDNN_STATUS_BAD_PARAM};

/// The workspace the algorithm needs.
std::size_t workspace_bytes(const Direction& d, Staging st, const Geometry& g) {
  return std::size_t(g.taps()) * staged_rows(st, g) * g.q * d.staged_elem;
}

/// The algorithm's staging: BAD_PARAM for a value outside the enum, NOT_SUPPORTED for an algorithm the
/// emulation does not implement.
cudnnStatus_t staging_of(const Direction& d, int algo, Staging* st) {
  if (algo < 0 || algo >= d.algo_count) return CUDNN_STATUS_BAD_PARAM;
  *st = d.staging[algo];
  return *st == Staging::unsupported ? CUDNN_STATUS_NOT_SUPPORTED : CUDNN_STATUS_SUCCESS;
}

/// A deterministic fake run time (ms): more staging is faster, as im2col GEMMs are on a GPU.
float fake_time_ms(Staging st, const Geometry& g) {
  const double ns_per_mac = st == Staging::image ? 0.001 : st == Staging::row ? 0.002 : 0.003;
  return static_cast<float>(g.macs() * ns_per_mac * 1e-6 + 0.01);
}

// -------------------------------------------------------------------------------------- queueing

/// The queued operation of one convolution call: poison the whole workspace given, then compute through it.
void run_convolution(RunFn run, const Geometry& g, Staging st, Scale sc, const Operands& o) {
  if (o.ws != nullptr) std::memset(o.ws, 0xFF, o.ws_bytes);
  run(g, st, sc, o);
}

/// The bytes of one side of the call.
std::size_t side_bytes(const Geometry& g, Side side) {
  const std::size_t elems = side == Side::x ? g.x.elems() : side == Side::w ? g.w_elems() : g.y().elems();
  return elems * sizeof(float);
}

/// The device memory of the call: the three sides (one of them the output) and the workspace given.
std::vector<DeviceSpan> conv_spans(const Direction& d, const Geometry& g, const Operands& o) {
  std::vector<DeviceSpan> spans{{o.x, side_bytes(g, Side::x), d.names[0]},
                                {o.w, side_bytes(g, Side::w), d.names[1]},
                                {o.y, side_bytes(g, Side::y), d.names[2]}};
  if (o.ws != nullptr) spans.push_back({o.ws, o.ws_bytes, "workspace"});
  return spans;
}

/// Validation of a convolution call after its geometry: algorithm, workspace (BAD_PARAM when smaller than
/// the size cudnnGet*WorkspaceSize reports for the algorithm, or null while that size is not 0: the cuDNN
/// documentation does not name a status for this; BAD_PARAM as for the other invalid arguments, while
/// the Find*Ex results report CUDNN_STATUS_ALLOC_FAILED for it as documented for the perf structs).
cudnnStatus_t check_algo_and_workspace(const Direction& d, int algo, const Geometry& g, const void* ws,
                                       std::size_t ws_bytes, Staging* st) {
  EMBER_CUDNN_TRY(staging_of(d, algo, st));
  const std::size_t need = workspace_bytes(d, *st, g);
  if (ws_bytes < need || (need > 0 && ws == nullptr)) return CUDNN_STATUS_BAD_PARAM;
  return CUDNN_STATUS_SUCCESS;
}

/// Validates and queues one convolution, after the handle and geometry: alpha/beta, algorithm and
/// workspace; the scaling factors are read at the call.
cudnnStatus_t convolve(const Direction& d, cudnnHandle_t handle, const Geometry& g, int algo, const void* alpha,
                       const void* beta, Operands o) {
  if (alpha == nullptr || beta == nullptr) return CUDNN_STATUS_BAD_PARAM;
  Staging st{};
  EMBER_CUDNN_TRY(check_algo_and_workspace(d, algo, g, o.ws, o.ws_bytes, &st));
  if (o.ws == nullptr) o.ws_bytes = 0;
  const Scale sc = read_scale(alpha, beta);
  const RunFn run = d.run;
  return enqueue(handle, d.name, conv_spans(d, g, o), [run, g, st, sc, o] { run_convolution(run, g, st, sc, o); });
}

// ------------------------------------------------------------------------------ algorithm lists

/// The perf entry of one algorithm for a geometry: its workspace, fake time and determinism; `status`
/// NOT_SUPPORTED for algorithms the emulation does not implement.
template <class Perf>
Perf perf_of(const Direction& d, int algo, const Geometry& g) {
  Perf perf{};
  perf.algo = static_cast<decltype(perf.algo)>(algo);
  perf.determinism = d.deterministic[algo] ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
  perf.mathType = g.math;
  const Staging st = d.staging[algo];
  if (st == Staging::unsupported) {
    perf.status = CUDNN_STATUS_NOT_SUPPORTED;
    perf.time = -1.0f;
    return perf;
  }
  perf.status = CUDNN_STATUS_SUCCESS;
  perf.time = fake_time_ms(st, g);
  perf.memory = workspace_bytes(d, st, g);
  return perf;
}

/// Successful entries by increasing time (then algorithm), failed ones after them in algorithm order;
/// copies the first min(requested, all) entries. BAD_PARAM for requested < 1 or null outputs.
template <class Perf>
cudnnStatus_t return_perf(std::vector<Perf> all, int requested, int* returned, Perf* out) {
  if (requested < 1 || returned == nullptr || out == nullptr) return CUDNN_STATUS_BAD_PARAM;
  std::stable_sort(all.begin(), all.end(), [](const Perf& a, const Perf& b) {
    const bool a_ok = a.status == CUDNN_STATUS_SUCCESS, b_ok = b.status == CUDNN_STATUS_SUCCESS;
    if (a_ok != b_ok) return a_ok;
    return a_ok && a.time < b.time;
  });
  *returned = std::min<int>(requested, static_cast<int>(all.size()));
  std::copy(all.begin(), all.begin() + *returned, out);
  return CUDNN_STATUS_SUCCESS;
}

/// Every algorithm's entry (cudnnGet*Algorithm_v7 and cudnnFind*Algorithm: cuDNN allocates the
/// workspace itself there, so every implemented algorithm succeeds).
template <class Perf>
std::vector<Perf> all_perf(const Direction& d, const Geometry& g) {
  std::vector<Perf> all;
  for (int a = 0; a < d.algo_count; ++a) all.push_back(perf_of<Perf>(d, a, g));
  return all;
}

/// cudnnFind*AlgorithmEx: one queued operation that runs every implemented algorithm whose workspace fits
/// the one given on the given buffers (alpha 1, beta 0), then poisons the output (the real call leaves it
/// unspecified). An algorithm whose workspace does not fit reports CUDNN_STATUS_ALLOC_FAILED (documented
/// for the perf structs: "the provided workspace is insufficient").
template <class Perf>
cudnnStatus_t find_ex(const Direction& d, cudnnHandle_t handle, const Geometry& g, Operands o, int requested,
                      int* returned, Perf* out) {
  if (o.x == nullptr || o.w == nullptr || o.y == nullptr) return CUDNN_STATUS_BAD_PARAM;
  if (requested < 1 || returned == nullptr || out == nullptr) return CUDNN_STATUS_BAD_PARAM;
  if (o.ws == nullptr) o.ws_bytes = 0;
  std::vector<Perf> all = all_perf<Perf>(d, g);
  std::vector<Staging> runs;
  for (Perf& perf : all) {
    if (perf.status != CUDNN_STATUS_SUCCESS) continue;
    if (perf.memory > o.ws_bytes) {
      perf.status = CUDNN_STATUS_ALLOC_FAILED;
      perf.time = -1.0f;
    } else {
      runs.push_back(d.staging[perf.algo]);
    }
  }
  const RunFn run = d.run;
  const std::size_t out_bytes = side_bytes(g, d.output);
  EMBER_CUDNN_TRY(enqueue(handle, d.find_name, conv_spans(d, g, o), [run, g, o, runs, out_bytes] {
    for (Staging st : runs) run_convolution(run, g, st, Scale{1.0f, 0.0f}, o);
    std::memset(o.out, 0xFF, out_bytes);
  }));
  return return_perf(std::move(all), requested, returned, out);
}

// --------------------------------------------------------------------------- AddTensor / bias

/// cudnnAddTensor's shapes: both float NCHW; each dimension of A equals C's or is 1 (broadcast).
cudnnStatus_t check_add(const cudnnTensorStruct* a, const cudnnTensorStruct* c) {
  if (!usable(tensors(), a) || !usable(tensors(), c) || a->type != c->type) return CUDNN_STATUS_BAD_PARAM;
  EMBER_CUDNN_TRY(check_float_nchw(*a));
  EMBER_CUDNN_TRY(check_float_nchw(*c));
  for (int d = 0; d < 4; ++d)
    if (a->dims[d] != c->dims[d] && a->dims[d] != 1) return CUDNN_STATUS_BAD_PARAM;
  return CUDNN_STATUS_SUCCESS;
}

/// C = alpha * A + beta * C with A broadcast over its dimensions of size 1.
void run_add(Shape4 sa, Shape4 sc, Scale s, const float* a, float* c) {
  for (int n = 0; n < sc.n; ++n)
    for (int ch = 0; ch < sc.c; ++ch)
      for (int h = 0; h < sc.h; ++h)
        for (int w = 0; w < sc.w; ++w) {
          const std::size_t ia = ((std::size_t(sa.n == 1 ? 0 : n) * sa.c + (sa.c == 1 ? 0 : ch)) * sa.h +
                                  (sa.h == 1 ? 0 : h)) * sa.w + (sa.w == 1 ? 0 : w);
          blend(c[((std::size_t(n) * sc.c + ch) * sc.h + h) * sc.w + w], a[ia], s.alpha, s.beta);
        }
}

/// db[k] = alpha * sum_{n,h,w} dy[n,k,h,w] + beta * db[k].
void run_bias(Shape4 dy_shape, Scale s, const float* dy, float* db) {
  const std::size_t plane = std::size_t(dy_shape.h) * dy_shape.w;
  for (int k = 0; k < dy_shape.c; ++k) {
    double acc = 0;
    for (int n = 0; n < dy_shape.n; ++n)
      for (std::size_t i = 0; i < plane; ++i) acc += dy[(std::size_t(n) * dy_shape.c + k) * plane + i];
    blend(db[k], acc, s.alpha, s.beta);
  }
}

}  // namespace

// ======================================================================================== the C API

size_t cudnnGetVersion(void) { return CUDNN_VERSION; }

const char* cudnnGetErrorString(cudnnStatus_t status) {
  switch (status) {
#define EMBER_CUDNN_NAME(s) \
  case s: return #s;
    EMBER_CUDNN_NAME(CUDNN_STATUS_SUCCESS)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_INITIALIZED)
    EMBER_CUDNN_NAME(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH)
    EMBER_CUDNN_NAME(CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH)
    EMBER_CUDNN_NAME(CUDNN_STATUS_DEPRECATED)
    EMBER_CUDNN_NAME(CUDNN_STATUS_LICENSE_ERROR)
    EMBER_CUDNN_NAME(CUDNN_STATUS_RUNTIME_IN_PROGRESS)
    EMBER_CUDNN_NAME(CUDNN_STATUS_RUNTIME_FP_OVERFLOW)
    EMBER_CUDNN_NAME(CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED)
    EMBER_CUDNN_NAME(CUDNN_STATUS_BAD_PARAM)
    EMBER_CUDNN_NAME(CUDNN_STATUS_INVALID_VALUE)
    EMBER_CUDNN_NAME(CUDNN_STATUS_BAD_PARAM_NULL_POINTER)
    EMBER_CUDNN_NAME(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER)
    EMBER_CUDNN_NAME(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED)
    EMBER_CUDNN_NAME(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND)
    EMBER_CUDNN_NAME(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT)
    EMBER_CUDNN_NAME(CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH)
    EMBER_CUDNN_NAME(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH)
    EMBER_CUDNN_NAME(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES)
    EMBER_CUDNN_NAME(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE)
    EMBER_CUDNN_NAME(CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH)
    EMBER_CUDNN_NAME(CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_SUPPORTED)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_SUPPORTED_SHAPE)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_SUPPORTED_PADDING)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API)
    EMBER_CUDNN_NAME(CUDNN_STATUS_NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE)
    EMBER_CUDNN_NAME(CUDNN_STATUS_INTERNAL_ERROR)
    EMBER_CUDNN_NAME(CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED)
    EMBER_CUDNN_NAME(CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE)
    EMBER_CUDNN_NAME(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED)
    EMBER_CUDNN_NAME(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
    EMBER_CUDNN_NAME(CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM)
    EMBER_CUDNN_NAME(CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED)
    EMBER_CUDNN_NAME(CUDNN_STATUS_EXECUTION_FAILED)
    EMBER_CUDNN_NAME(CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER)
    EMBER_CUDNN_NAME(CUDNN_STATUS_EXECUTION_FAILED_CUBLAS)
    EMBER_CUDNN_NAME(CUDNN_STATUS_EXECUTION_FAILED_CUDART)
    EMBER_CUDNN_NAME(CUDNN_STATUS_EXECUTION_FAILED_CURAND)
#undef EMBER_CUDNN_NAME
  }
  return "CUDNN_UNKNOWN_STATUS_FOUND";
}

// ---- handle ---------------------------------------------------------------------------------------------

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
  if (handle == nullptr) return CUDNN_STATUS_BAD_PARAM;
  *handle = handles().add(new cudnnContext{.device = ember::emu::current_device()});
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
  if (handle == nullptr) return CUDNN_STATUS_BAD_PARAM;
  return handles().remove(handle) ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_NOT_INITIALIZED;
}

/// A stream of another device than the handle's: CUDNN_STATUS_MAPPING_ERROR (documented: "mismatch between
/// the user stream and the cuDNN handle context"); an invalid stream handle likewise.
cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId) {
  EMBER_CUDNN_TRY(check_handle(handle));
  if (ember::emu::stream_device(streamId) != handle->device) return CUDNN_STATUS_MAPPING_ERROR;
  handle->stream = streamId;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetStream(cudnnHandle_t handle, cudaStream_t* streamId) {
  EMBER_CUDNN_TRY(check_handle(handle));
  if (streamId == nullptr) return CUDNN_STATUS_BAD_PARAM;
  *streamId = handle->stream;
  return CUDNN_STATUS_SUCCESS;
}

// ---- tensor descriptors ---------------------------------------------------------------------------------

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* tensorDesc) { return create(tensors(), tensorDesc); }
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc) {
  return destroy(tensors(), tensorDesc);
}

/// BAD_PARAM: a dimension <= 0 (the documentation says negative; cuDNN rejects empty tensors too), an
/// invalid format or data type. NCHW_VECT_C (for vectorized integer types) is NOT_SUPPORTED here.
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc, cudnnTensorFormat_t format,
                                         cudnnDataType_t dataType, int n, int c, int h, int w) {
  if (!tensors().contains(tensorDesc) || !valid_format(format) || !valid_type(dataType)) return CUDNN_STATUS_BAD_PARAM;
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
  if (format == CUDNN_TENSOR_NCHW_VECT_C || static_cast<long long>(n) * c * h * w > INT32_MAX)
    return CUDNN_STATUS_NOT_SUPPORTED;
  const int dims[4] = {n, c, h, w};
  const int nchw[4] = {c * h * w, h * w, w, 1}, nhwc[4] = {h * w * c, 1, w * c, c};
  return set_tensor(tensorDesc, dataType, 4, dims, format == CUDNN_TENSOR_NCHW ? nchw : nhwc);
}

/// BAD_PARAM: a dimension <= 0, a negative stride, an invalid data type.
cudnnStatus_t cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t tensorDesc, cudnnDataType_t dataType, int n,
                                           int c, int h, int w, int nStride, int cStride, int hStride,
                                           int wStride) {
  if (!tensors().contains(tensorDesc) || !valid_type(dataType)) return CUDNN_STATUS_BAD_PARAM;
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || nStride < 0 || cStride < 0 || hStride < 0 || wStride < 0)
    return CUDNN_STATUS_BAD_PARAM;
  const int dims[4] = {n, c, h, w}, strides[4] = {nStride, cStride, hStride, wStride};
  return set_tensor(tensorDesc, dataType, 4, dims, strides);
}

/// BAD_PARAM: null arrays, a dimension <= 0, a negative stride, an invalid data type; NOT_SUPPORTED: nbDims
/// outside [4, CUDNN_DIM_MAX] (as documented).
cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t tensorDesc, cudnnDataType_t dataType, int nbDims,
                                         const int dimA[], const int strideA[]) {
  if (!tensors().contains(tensorDesc) || !valid_type(dataType) || dimA == nullptr || strideA == nullptr)
    return CUDNN_STATUS_BAD_PARAM;
  if (nbDims < 4 || nbDims > CUDNN_DIM_MAX) return CUDNN_STATUS_NOT_SUPPORTED;
  for (int d = 0; d < nbDims; ++d)
    if (dimA[d] <= 0 || strideA[d] < 0) return CUDNN_STATUS_BAD_PARAM;
  return set_tensor(tensorDesc, dataType, nbDims, dimA, strideA);
}

/// The first four dimensions and strides; BAD_PARAM for an unusable descriptor or a null output.
cudnnStatus_t cudnnGetTensor4dDescriptor(const cudnnTensorDescriptor_t tensorDesc, cudnnDataType_t* dataType, int* n,
                                         int* c, int* h, int* w, int* nStride, int* cStride, int* hStride,
                                         int* wStride) {
  int* const out[8] = {n, c, h, w, nStride, cStride, hStride, wStride};
  if (!usable(tensors(), tensorDesc) || dataType == nullptr || std::count(out, out + 8, nullptr) != 0)
    return CUDNN_STATUS_BAD_PARAM;
  *dataType = tensorDesc->type;
  for (int d = 0; d < 4; ++d) *out[d] = tensorDesc->dims[d], *out[4 + d] = tensorDesc->strides[d];
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t aDesc,
                             const void* A, const void* beta, const cudnnTensorDescriptor_t cDesc, void* C) {
  EMBER_CUDNN_TRY(check_handle(handle));
  if (alpha == nullptr || beta == nullptr || A == nullptr || C == nullptr) return CUDNN_STATUS_BAD_PARAM;
  EMBER_CUDNN_TRY(check_add(aDesc, cDesc));
  const Shape4 sa = shape_of(*aDesc), sc = shape_of(*cDesc);
  const Scale s = read_scale(alpha, beta);
  const float* a = static_cast<const float*>(A);
  float* c = static_cast<float*>(C);
  return enqueue(handle, "cudnnAddTensor", {{a, sa.elems() * sizeof(float), "A"}, {c, sc.elems() * sizeof(float), "C"}},
                 [sa, sc, s, a, c] { run_add(sa, sc, s, a, c); });
}

// ---- filter descriptors ---------------------------------------------------------------------------------

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* filterDesc) { return create(filters(), filterDesc); }
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc) {
  return destroy(filters(), filterDesc);
}

/// BAD_PARAM: a dimension <= 0 (documented: negative), an invalid data type or format.
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc, cudnnDataType_t dataType,
                                         cudnnTensorFormat_t format, int k, int c, int h, int w) {
  if (!filters().contains(filterDesc) || !valid_type(dataType) || !valid_format(format)) return CUDNN_STATUS_BAD_PARAM;
  if (k <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
  if (static_cast<long long>(k) * c * h * w > INT32_MAX) return CUDNN_STATUS_NOT_SUPPORTED;
  *filterDesc = cudnnFilterStruct{true, dataType, format, k, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}

// ---- convolution descriptors ----------------------------------------------------------------------------

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* convDesc) {
  return create(convolutions(), convDesc);
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc) {
  return destroy(convolutions(), convDesc);
}

/// BAD_PARAM: a stride or dilation <= 0, a negative padding, an invalid mode or compute type (documented).
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc, int pad_h, int pad_w, int u,
                                              int v, int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType) {
  if (!convolutions().contains(convDesc) || !valid_type(computeType)) return CUDNN_STATUS_BAD_PARAM;
  if (u <= 0 || v <= 0 || dilation_h <= 0 || dilation_w <= 0 || pad_h < 0 || pad_w < 0) return CUDNN_STATUS_BAD_PARAM;
  if (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) return CUDNN_STATUS_BAD_PARAM;
  const cudnnMathType_t math = convDesc->math;
  *convDesc = cudnnConvolutionStruct{true, pad_h, pad_w, u, v, dilation_h, dilation_w, mode, computeType, math};
  return CUDNN_STATUS_SUCCESS;
}

/// Recorded (reported in the perf results); the reference loops always compute in double.
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc, cudnnMathType_t mathType) {
  if (!convolutions().contains(convDesc) || mathType < CUDNN_DEFAULT_MATH || mathType > CUDNN_FMA_MATH)
    return CUDNN_STATUS_BAD_PARAM;
  convDesc->math = mathType;
  return CUDNN_STATUS_SUCCESS;
}

/// Group count 1 only: other positive counts are NOT_SUPPORTED in the emulation; < 1 is BAD_PARAM.
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t convDesc, int groupCount) {
  if (!convolutions().contains(convDesc) || groupCount < 1) return CUDNN_STATUS_BAD_PARAM;
  return groupCount == 1 ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_NOT_SUPPORTED;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t convDesc,
                                                    const cudnnTensorDescriptor_t inputTensorDesc,
                                                    const cudnnFilterDescriptor_t filterDesc, int* n, int* c, int* h,
                                                    int* w) {
  EMBER_CUDNN_TRY(check_input_and_filter(convDesc, inputTensorDesc, filterDesc));
  if (n == nullptr || c == nullptr || h == nullptr || w == nullptr) return CUDNN_STATUS_BAD_PARAM;
  *n = inputTensorDesc->dims[0];
  *c = filterDesc->k;
  *h = output_size(inputTensorDesc->dims[2], convDesc->pad_h, filterDesc->h, convDesc->dil_h, convDesc->u);
  *w = output_size(inputTensorDesc->dims[3], convDesc->pad_w, filterDesc->w, convDesc->dil_w, convDesc->v);
  return CUDNN_STATUS_SUCCESS;
}

// ---- forward --------------------------------------------------------------------------------------------

namespace {
/// Handle and geometry of a forward call.
cudnnStatus_t forward_geometry(cudnnHandle_t handle, const cudnnTensorStruct* x, const cudnnFilterStruct* w,
                               const cudnnConvolutionStruct* conv, const cudnnTensorStruct* y, Geometry* g) {
  EMBER_CUDNN_TRY(check_handle(handle));
  return make_geometry(x, w, conv, y, kForward.spatial_mismatch, g);
}
}  // namespace

cudnnStatus_t cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
  EMBER_CUDNN_TRY(check_handle(handle));
  if (count == nullptr) return CUDNN_STATUS_BAD_PARAM;
  *count = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
                                                     const cudnnFilterDescriptor_t filterDesc,
                                                     const cudnnConvolutionDescriptor_t convDesc,
                                                     const cudnnTensorDescriptor_t destDesc,
                                                     const int requestedAlgoCount, int* returnedAlgoCount,
                                                     cudnnConvolutionFwdAlgoPerf_t* perfResults) {
  Geometry g{};
  EMBER_CUDNN_TRY(forward_geometry(handle, srcDesc, filterDesc, convDesc, destDesc, &g));
  return return_perf(all_perf<cudnnConvolutionFwdAlgoPerf_t>(kForward, g), requestedAlgoCount, returnedAlgoCount,
                     perfResults);
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                   const cudnnFilterDescriptor_t wDesc,
                                                   const cudnnConvolutionDescriptor_t convDesc,
                                                   const cudnnTensorDescriptor_t yDesc, const int requestedAlgoCount,
                                                   int* returnedAlgoCount,
                                                   cudnnConvolutionFwdAlgoPerf_t* perfResults) {
  return cudnnGetConvolutionForwardAlgorithm_v7(handle, xDesc, wDesc, convDesc, yDesc, requestedAlgoCount,
                                                returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                     const void* x, const cudnnFilterDescriptor_t wDesc,
                                                     const void* w, const cudnnConvolutionDescriptor_t convDesc,
                                                     const cudnnTensorDescriptor_t yDesc, void* y,
                                                     const int requestedAlgoCount, int* returnedAlgoCount,
                                                     cudnnConvolutionFwdAlgoPerf_t* perfResults, void* workSpace,
                                                     size_t workSpaceSizeInBytes) {
  Geometry g{};
  EMBER_CUDNN_TRY(forward_geometry(handle, xDesc, wDesc, convDesc, yDesc, &g));
  const Operands o{static_cast<const float*>(x), static_cast<const float*>(w), static_cast<const float*>(y),
                   static_cast<float*>(y), static_cast<unsigned char*>(workSpace), workSpaceSizeInBytes};
  return find_ex(kForward, handle, g, o, requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                      const cudnnFilterDescriptor_t wDesc,
                                                      const cudnnConvolutionDescriptor_t convDesc,
                                                      const cudnnTensorDescriptor_t yDesc,
                                                      cudnnConvolutionFwdAlgo_t algo, size_t* sizeInBytes) {
  Geometry g{};
  Staging st{};
  EMBER_CUDNN_TRY(forward_geometry(handle, xDesc, wDesc, convDesc, yDesc, &g));
  if (sizeInBytes == nullptr) return CUDNN_STATUS_BAD_PARAM;
  EMBER_CUDNN_TRY(staging_of(kForward, algo, &st));
  *sizeInBytes = workspace_bytes(kForward, st, g);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t xDesc,
                                      const void* x, const cudnnFilterDescriptor_t wDesc, const void* w,
                                      const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionFwdAlgo_t algo,
                                      void* workSpace, size_t workSpaceSizeInBytes, const void* beta,
                                      const cudnnTensorDescriptor_t yDesc, void* y) {
  Geometry g{};
  EMBER_CUDNN_TRY(forward_geometry(handle, xDesc, wDesc, convDesc, yDesc, &g));
  if (x == nullptr || w == nullptr || y == nullptr) return CUDNN_STATUS_BAD_PARAM;
  const Operands o{static_cast<const float*>(x), static_cast<const float*>(w), static_cast<const float*>(y),
                   static_cast<float*>(y), static_cast<unsigned char*>(workSpace), workSpaceSizeInBytes};
  return convolve(kForward, handle, g, algo, alpha, beta, o);
}

// ---- backward data --------------------------------------------------------------------------------------

namespace {
/// Handle and geometry of a backward-data call (x side: dx, y side: dy).
cudnnStatus_t backward_data_geometry(cudnnHandle_t handle, const cudnnFilterStruct* w, const cudnnTensorStruct* dy,
                                     const cudnnConvolutionStruct* conv, const cudnnTensorStruct* dx, Geometry* g) {
  EMBER_CUDNN_TRY(check_handle(handle));
  return make_geometry(dx, w, conv, dy, kBackwardData.spatial_mismatch, g);
}
}  // namespace

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
  EMBER_CUDNN_TRY(check_handle(handle));
  if (count == nullptr) return CUDNN_STATUS_BAD_PARAM;
  *count = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t handle,
                                                          const cudnnFilterDescriptor_t filterDesc,
                                                          const cudnnTensorDescriptor_t diffDesc,
                                                          const cudnnConvolutionDescriptor_t convDesc,
                                                          const cudnnTensorDescriptor_t gradDesc,
                                                          const int requestedAlgoCount, int* returnedAlgoCount,
                                                          cudnnConvolutionBwdDataAlgoPerf_t* perfResults) {
  Geometry g{};
  EMBER_CUDNN_TRY(backward_data_geometry(handle, filterDesc, diffDesc, convDesc, gradDesc, &g));
  return return_perf(all_perf<cudnnConvolutionBwdDataAlgoPerf_t>(kBackwardData, g), requestedAlgoCount,
                     returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
                                                        const cudnnTensorDescriptor_t dyDesc,
                                                        const cudnnConvolutionDescriptor_t convDesc,
                                                        const cudnnTensorDescriptor_t dxDesc,
                                                        const int requestedAlgoCount, int* returnedAlgoCount,
                                                        cudnnConvolutionBwdDataAlgoPerf_t* perfResults) {
  return cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, wDesc, dyDesc, convDesc, dxDesc, requestedAlgoCount,
                                                     returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const void* w, const cudnnTensorDescriptor_t dyDesc,
    const void* dy, const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc, void* dx,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionBwdDataAlgoPerf_t* perfResults,
    void* workSpace, size_t workSpaceSizeInBytes) {
  Geometry g{};
  EMBER_CUDNN_TRY(backward_data_geometry(handle, wDesc, dyDesc, convDesc, dxDesc, &g));
  const Operands o{static_cast<const float*>(dx), static_cast<const float*>(w), static_cast<const float*>(dy),
                   static_cast<float*>(dx), static_cast<unsigned char*>(workSpace), workSpaceSizeInBytes};
  return find_ex(kBackwardData, handle, g, o, requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
                                                           const cudnnTensorDescriptor_t dyDesc,
                                                           const cudnnConvolutionDescriptor_t convDesc,
                                                           const cudnnTensorDescriptor_t dxDesc,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t* sizeInBytes) {
  Geometry g{};
  Staging st{};
  EMBER_CUDNN_TRY(backward_data_geometry(handle, wDesc, dyDesc, convDesc, dxDesc, &g));
  if (sizeInBytes == nullptr) return CUDNN_STATUS_BAD_PARAM;
  EMBER_CUDNN_TRY(staging_of(kBackwardData, algo, &st));
  *sizeInBytes = workspace_bytes(kBackwardData, st, g);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha,
                                           const cudnnFilterDescriptor_t wDesc, const void* w,
                                           const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void* workSpace,
                                           size_t workSpaceSizeInBytes, const void* beta,
                                           const cudnnTensorDescriptor_t dxDesc, void* dx) {
  Geometry g{};
  EMBER_CUDNN_TRY(backward_data_geometry(handle, wDesc, dyDesc, convDesc, dxDesc, &g));
  if (w == nullptr || dy == nullptr || dx == nullptr) return CUDNN_STATUS_BAD_PARAM;
  // x: the output dx; it is listed as an operand span like the others (written, and read when beta != 0).
  const Operands o{static_cast<const float*>(dx), static_cast<const float*>(w), static_cast<const float*>(dy),
                   static_cast<float*>(dx), static_cast<unsigned char*>(workSpace), workSpaceSizeInBytes};
  return convolve(kBackwardData, handle, g, algo, alpha, beta, o);
}

// ---- backward filter ------------------------------------------------------------------------------------

namespace {
/// Handle and geometry of a backward-filter call (y side: dy).
cudnnStatus_t backward_filter_geometry(cudnnHandle_t handle, const cudnnTensorStruct* x, const cudnnTensorStruct* dy,
                                       const cudnnConvolutionStruct* conv, const cudnnFilterStruct* dw, Geometry* g) {
  EMBER_CUDNN_TRY(check_handle(handle));
  return make_geometry(x, dw, conv, dy, kBackwardFilter.spatial_mismatch, g);
}
}  // namespace

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
  EMBER_CUDNN_TRY(check_handle(handle));
  if (count == nullptr) return CUDNN_STATUS_BAD_PARAM;
  *count = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t handle,
                                                            const cudnnTensorDescriptor_t srcDesc,
                                                            const cudnnTensorDescriptor_t diffDesc,
                                                            const cudnnConvolutionDescriptor_t convDesc,
                                                            const cudnnFilterDescriptor_t gradDesc,
                                                            const int requestedAlgoCount, int* returnedAlgoCount,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t* perfResults) {
  Geometry g{};
  EMBER_CUDNN_TRY(backward_filter_geometry(handle, srcDesc, diffDesc, convDesc, gradDesc, &g));
  return return_perf(all_perf<cudnnConvolutionBwdFilterAlgoPerf_t>(kBackwardFilter, g), requestedAlgoCount,
                     returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                          const cudnnTensorDescriptor_t dyDesc,
                                                          const cudnnConvolutionDescriptor_t convDesc,
                                                          const cudnnFilterDescriptor_t dwDesc,
                                                          const int requestedAlgoCount, int* returnedAlgoCount,
                                                          cudnnConvolutionBwdFilterAlgoPerf_t* perfResults) {
  return cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, xDesc, dyDesc, convDesc, dwDesc, requestedAlgoCount,
                                                       returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t dyDesc,
    const void* y, const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t dwDesc, void* dw,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionBwdFilterAlgoPerf_t* perfResults,
    void* workSpace, size_t workSpaceSizeInBytes) {
  Geometry g{};
  EMBER_CUDNN_TRY(backward_filter_geometry(handle, xDesc, dyDesc, convDesc, dwDesc, &g));
  const Operands o{static_cast<const float*>(x), static_cast<const float*>(dw), static_cast<const float*>(y),
                   static_cast<float*>(dw), static_cast<unsigned char*>(workSpace), workSpaceSizeInBytes};
  return find_ex(kBackwardFilter, handle, g, o, requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t handle,
                                                             const cudnnTensorDescriptor_t xDesc,
                                                             const cudnnTensorDescriptor_t dyDesc,
                                                             const cudnnConvolutionDescriptor_t convDesc,
                                                             const cudnnFilterDescriptor_t gradDesc,
                                                             cudnnConvolutionBwdFilterAlgo_t algo,
                                                             size_t* sizeInBytes) {
  Geometry g{};
  Staging st{};
  EMBER_CUDNN_TRY(backward_filter_geometry(handle, xDesc, dyDesc, convDesc, gradDesc, &g));
  if (sizeInBytes == nullptr) return CUDNN_STATUS_BAD_PARAM;
  EMBER_CUDNN_TRY(staging_of(kBackwardFilter, algo, &st));
  *sizeInBytes = workspace_bytes(kBackwardFilter, st, g);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha,
                                             const cudnnTensorDescriptor_t xDesc, const void* x,
                                             const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void* workSpace,
                                             size_t workSpaceSizeInBytes, const void* beta,
                                             const cudnnFilterDescriptor_t dwDesc, void* dw) {
  Geometry g{};
  EMBER_CUDNN_TRY(backward_filter_geometry(handle, xDesc, dyDesc, convDesc, dwDesc, &g));
  if (x == nullptr || dy == nullptr || dw == nullptr) return CUDNN_STATUS_BAD_PARAM;
  const Operands o{static_cast<const float*>(x), static_cast<const float*>(dw), static_cast<const float*>(dy),
                   static_cast<float*>(dw), static_cast<unsigned char*>(workSpace), workSpaceSizeInBytes};
  return convolve(kBackwardFilter, handle, g, algo, alpha, beta, o);
}

// ---- bias -----------------------------------------------------------------------------------------------

/// BAD_PARAM (documented): db is not 1 x K x 1 x 1 for dy's K channels, or the data types differ;
/// NOT_SUPPORTED: not float NCHW.
cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void* alpha,
                                           const cudnnTensorDescriptor_t dyDesc, const void* dy, const void* beta,
                                           const cudnnTensorDescriptor_t dbDesc, void* db) {
  EMBER_CUDNN_TRY(check_handle(handle));
  if (alpha == nullptr || beta == nullptr || dy == nullptr || db == nullptr) return CUDNN_STATUS_BAD_PARAM;
  if (!usable(tensors(), dyDesc) || !usable(tensors(), dbDesc) || dyDesc->type != dbDesc->type)
    return CUDNN_STATUS_BAD_PARAM;
  EMBER_CUDNN_TRY(check_float_nchw(*dyDesc));
  EMBER_CUDNN_TRY(check_float_nchw(*dbDesc));
  const Shape4 sdy = shape_of(*dyDesc), sdb = shape_of(*dbDesc);
  if (sdb != Shape4{1, sdy.c, 1, 1}) return CUDNN_STATUS_BAD_PARAM;
  const Scale s = read_scale(alpha, beta);
  const float* in = static_cast<const float*>(dy);
  float* out = static_cast<float*>(db);
  return enqueue(handle, "cudnnConvolutionBackwardBias",
                 {{in, sdy.elems() * sizeof(float), "dy"}, {out, sdb.elems() * sizeof(float), "db"}},
                 [sdy, s, in, out] { run_bias(sdy, s, in, out); });
}
