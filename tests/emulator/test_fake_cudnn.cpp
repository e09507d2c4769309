/// @file tests/emulator/test_fake_cudnn.cpp @brief Tests of the emulated cuDNN (kernels/cuda/emulator/cudnn.cpp) against a naive convolution: forward, backward data/filter/bias over several geometries and every implemented algorithm, adjoint identities, alpha/beta, AddTensor, documented validation errors, workspaces, algorithm lists, handles and streams.
#include <cudnn.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tests/emulator/fake_library_util.h"

using fake_test::DeviceBuffer;
using fake_test::random_floats;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ------------------------------------------------------------------------------- RAII wrappers

struct Dnn {
  cudnnHandle_t h = nullptr;
  Dnn() { REQUIRE(cudnnCreate(&h) == CUDNN_STATUS_SUCCESS); }
  ~Dnn() { cudnnDestroy(h); }
};
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { REQUIRE(cudnnCreateTensorDescriptor(&d) == CUDNN_STATUS_SUCCESS); }
  TensorDesc(int n, int c, int h, int w, cudnnTensorFormat_t f = CUDNN_TENSOR_NCHW,
             cudnnDataType_t t = CUDNN_DATA_FLOAT)
      : TensorDesc() {
    REQUIRE(cudnnSetTensor4dDescriptor(d, f, t, n, c, h, w) == CUDNN_STATUS_SUCCESS);
  }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
};
struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc(int k, int c, int h, int w, cudnnTensorFormat_t f = CUDNN_TENSOR_NCHW,
             cudnnDataType_t t = CUDNN_DATA_FLOAT) {
    REQUIRE(cudnnCreateFilterDescriptor(&d) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetFilter4dDescriptor(d, t, f, k, c, h, w) == CUDNN_STATUS_SUCCESS);
  }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
};
struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc() { REQUIRE(cudnnCreateConvolutionDescriptor(&d) == CUDNN_STATUS_SUCCESS); }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
};

// ------------------------------------------------------------------------ the naive convolution

/// A convolution problem: x [n,c,h,w], w [k,c,r,s], padding, stride, dilation, mode.
struct Geo {
  int n, c, h, w, k, r, s, pad_h, pad_w, u, v, dil_h, dil_w;
  cudnnConvolutionMode_t mode;
  int p() const { return (h + 2 * pad_h - (r - 1) * dil_h - 1) / u + 1; }
  int q() const { return (w + 2 * pad_w - (s - 1) * dil_w - 1) / v + 1; }
  std::size_t x_size() const { return std::size_t(n) * c * h * w; }
  std::size_t w_size() const { return std::size_t(k) * c * r * s; }
  std::size_t y_size() const { return std::size_t(n) * k * p() * q(); }
};

const Geo kGeometries[] = {
    {2, 3, 7, 6, 4, 3, 2, 1, 0, 2, 1, 1, 2, CUDNN_CROSS_CORRELATION},  // stride, padding, dilation, non-square
    {1, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, CUDNN_CONVOLUTION},        // "same" 3x3, flipped filter
    {3, 1, 8, 5, 2, 2, 3, 0, 2, 3, 2, 2, 1, CUDNN_CONVOLUTION},        // wide padding, strides 3 and 2
    {2, 4, 4, 6, 5, 1, 1, 0, 0, 1, 2, 1, 1, CUDNN_CROSS_CORRELATION},  // 1x1 filter
};

std::string describe(const Geo& g) {
  return "x " + std::to_string(g.n) + "x" + std::to_string(g.c) + "x" + std::to_string(g.h) + "x" +
         std::to_string(g.w) + ", w " + std::to_string(g.k) + "x" + std::to_string(g.r) + "x" + std::to_string(g.s) +
         ", pad " + std::to_string(g.pad_h) + "," + std::to_string(g.pad_w) + ", stride " + std::to_string(g.u) +
         "," + std::to_string(g.v) + ", dilation " + std::to_string(g.dil_h) + "," + std::to_string(g.dil_w) +
         (g.mode == CUDNN_CONVOLUTION ? ", convolution" : ", cross-correlation");
}

/// Visits every (x index, w index, y index) triple that the convolution multiplies together, from the
/// definition y[n,k,p,q] += x[n,c,p*u-pad_h+r*dil_h, q*v-pad_w+s*dil_w] * w[k,c,r',s'] (r' = R-1-r for
/// CUDNN_CONVOLUTION), skipping taps in the padding.
template <class F>
void for_each_product(const Geo& g, F f) {
  for (int n = 0; n < g.n; ++n)
    for (int k = 0; k < g.k; ++k)
      for (int p = 0; p < g.p(); ++p)
        for (int q = 0; q < g.q(); ++q)
          for (int c = 0; c < g.c; ++c)
            for (int r = 0; r < g.r; ++r)
              for (int s = 0; s < g.s; ++s) {
                const int ih = p * g.u - g.pad_h + r * g.dil_h, iw = q * g.v - g.pad_w + s * g.dil_w;
                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                const int rr = g.mode == CUDNN_CONVOLUTION ? g.r - 1 - r : r;
                const int ss = g.mode == CUDNN_CONVOLUTION ? g.s - 1 - s : s;
                const std::size_t xi = ((std::size_t(n) * g.c + c) * g.h + ih) * g.w + iw;
                const std::size_t wi = ((std::size_t(k) * g.c + c) * g.r + rr) * g.s + ss;
                f(xi, wi, ((std::size_t(n) * g.k + k) * g.p() + p) * g.q() + q);
              }
}

std::vector<double> naive_forward(const Geo& g, const std::vector<float>& x, const std::vector<float>& w) {
  std::vector<double> y(g.y_size(), 0.0);
  for_each_product(g, [&](std::size_t xi, std::size_t wi, std::size_t yi) { y[yi] += double(x[xi]) * w[wi]; });
  return y;
}
std::vector<double> naive_backward_data(const Geo& g, const std::vector<float>& w, const std::vector<float>& dy) {
  std::vector<double> dx(g.x_size(), 0.0);
  for_each_product(g, [&](std::size_t xi, std::size_t wi, std::size_t yi) { dx[xi] += double(w[wi]) * dy[yi]; });
  return dx;
}
std::vector<double> naive_backward_filter(const Geo& g, const std::vector<float>& x, const std::vector<float>& dy) {
  std::vector<double> dw(g.w_size(), 0.0);
  for_each_product(g, [&](std::size_t xi, std::size_t wi, std::size_t yi) { dw[wi] += double(x[xi]) * dy[yi]; });
  return dw;
}

/// alpha * result + beta * out0 (beta 0 ignores out0).
std::vector<double> blended(const std::vector<double>& result, float alpha, float beta,
                            const std::vector<float>& out0) {
  std::vector<double> want(result.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    want[i] = alpha * result[i] + (beta == 0 ? 0.0 : beta * double(out0[i]));
  return want;
}

void check_close(const std::vector<float>& got, const std::vector<double>& want, double tol = 1e-5) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i])));
  }
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
  return s;
}

/// The descriptors, data and device buffers of one geometry.
struct Problem {
  Geo g;
  TensorDesc x_desc, y_desc;
  FilterDesc w_desc;
  ConvDesc conv;
  std::vector<float> x, w, dy;
  DeviceBuffer<float> dev_x, dev_w, dev_dy;

  explicit Problem(const Geo& geo)
      : g(geo),
        x_desc(g.n, g.c, g.h, g.w),
        y_desc(g.n, g.k, g.p(), g.q()),
        w_desc(g.k, g.c, g.r, g.s),
        x(random_floats(g.x_size(), 21)),
        w(random_floats(g.w_size(), 22)),
        dy(random_floats(g.y_size(), 23)),
        dev_x(x),
        dev_w(w),
        dev_dy(dy) {
    REQUIRE(cudnnSetConvolution2dDescriptor(conv.d, g.pad_h, g.pad_w, g.u, g.v, g.dil_h, g.dil_w, g.mode,
                                            CUDNN_DATA_FLOAT) == CUDNN_STATUS_SUCCESS);
  }
};

// Each direction's implemented algorithms: no workspace, a one-row buffer, a whole-image buffer.
const cudnnConvolutionFwdAlgo_t kFwdAlgos[] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                               CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                               CUDNN_CONVOLUTION_FWD_ALGO_GEMM};
const cudnnConvolutionBwdDataAlgo_t kBwdDataAlgos[] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0,
                                                       CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING,
                                                       CUDNN_CONVOLUTION_BWD_DATA_ALGO_1};
const cudnnConvolutionBwdFilterAlgo_t kBwdFilterAlgos[] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
                                                           CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3,
                                                           CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1};

/// Runs the forward convolution with `algo` and the workspace it asks for; returns y.
std::vector<float> forward(Dnn& dnn, Problem& pb, cudnnConvolutionFwdAlgo_t algo, float alpha, float beta,
                           const std::vector<float>& y0) {
  std::size_t bytes = 0;
  REQUIRE(cudnnGetConvolutionForwardWorkspaceSize(dnn.h, pb.x_desc.d, pb.w_desc.d, pb.conv.d, pb.y_desc.d, algo,
                                                  &bytes) == CUDNN_STATUS_SUCCESS);
  DeviceBuffer<char> ws(bytes);
  DeviceBuffer<float> y(y0);
  REQUIRE(cudnnConvolutionForward(dnn.h, &alpha, pb.x_desc.d, pb.dev_x.get(), pb.w_desc.d, pb.dev_w.get(), pb.conv.d,
                                  algo, ws.get(), bytes, &beta, pb.y_desc.d, y.get()) == CUDNN_STATUS_SUCCESS);
  return y.download();
}
std::vector<float> backward_data(Dnn& dnn, Problem& pb, cudnnConvolutionBwdDataAlgo_t algo, float alpha, float beta,
                                 const std::vector<float>& dx0) {
  std::size_t bytes = 0;
  REQUIRE(cudnnGetConvolutionBackwardDataWorkspaceSize(dnn.h, pb.w_desc.d, pb.y_desc.d, pb.conv.d, pb.x_desc.d, algo,
                                                       &bytes) == CUDNN_STATUS_SUCCESS);
  DeviceBuffer<char> ws(bytes);
  DeviceBuffer<float> dx(dx0);
  REQUIRE(cudnnConvolutionBackwardData(dnn.h, &alpha, pb.w_desc.d, pb.dev_w.get(), pb.y_desc.d, pb.dev_dy.get(),
                                       pb.conv.d, algo, ws.get(), bytes, &beta, pb.x_desc.d,
                                       dx.get()) == CUDNN_STATUS_SUCCESS);
  return dx.download();
}
std::vector<float> backward_filter(Dnn& dnn, Problem& pb, cudnnConvolutionBwdFilterAlgo_t algo, float alpha,
                                   float beta, const std::vector<float>& dw0) {
  std::size_t bytes = 0;
  REQUIRE(cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn.h, pb.x_desc.d, pb.y_desc.d, pb.conv.d, pb.w_desc.d,
                                                         algo, &bytes) == CUDNN_STATUS_SUCCESS);
  DeviceBuffer<char> ws(bytes);
  DeviceBuffer<float> dw(dw0);
  REQUIRE(cudnnConvolutionBackwardFilter(dnn.h, &alpha, pb.x_desc.d, pb.dev_x.get(), pb.y_desc.d, pb.dev_dy.get(),
                                         pb.conv.d, algo, ws.get(), bytes, &beta, pb.w_desc.d,
                                         dw.get()) == CUDNN_STATUS_SUCCESS);
  return dw.download();
}

}  // namespace

// ====================================================================================== results

TEST_CASE("cuDNN convolutions match a naive convolution for every geometry, mode and implemented algorithm",
          "[fake][cudnn]") {
  Dnn dnn;
  const float alpha = 1.25f;
  for (const Geo& geo : kGeometries) {
    INFO(describe(geo));
    Problem pb(geo);
    std::vector<float> first;
    for (auto algo : kFwdAlgos) {
      INFO("forward algorithm " << algo);
      const std::vector<float> y = forward(dnn, pb, algo, alpha, 0.0f, std::vector<float>(geo.y_size(), kNaN));
      check_close(y, blended(naive_forward(geo, pb.x, pb.w), alpha, 0.0f, {}));
      if (first.empty()) first = y;
      CHECK(y == first);  // every algorithm sums the same terms in the same order
    }
    first.clear();
    for (auto algo : kBwdDataAlgos) {
      INFO("backward data algorithm " << algo);
      const std::vector<float> dx = backward_data(dnn, pb, algo, alpha, 0.0f, std::vector<float>(geo.x_size(), kNaN));
      check_close(dx, blended(naive_backward_data(geo, pb.w, pb.dy), alpha, 0.0f, {}));
      if (first.empty()) first = dx;
      CHECK(dx == first);
    }
    first.clear();
    for (auto algo : kBwdFilterAlgos) {
      INFO("backward filter algorithm " << algo);
      const std::vector<float> dw = backward_filter(dnn, pb, algo, alpha, 0.0f, std::vector<float>(geo.w_size(), kNaN));
      check_close(dw, blended(naive_backward_filter(geo, pb.x, pb.dy), alpha, 0.0f, {}));
      if (first.empty()) first = dw;
      CHECK(dw == first);
    }
  }
}

TEST_CASE("cuDNN backward data and filter are the adjoints of the forward convolution", "[fake][cudnn]") {
  Dnn dnn;
  for (const Geo& geo : kGeometries) {
    INFO(describe(geo));
    Problem pb(geo);
    const std::vector<float> y = forward(dnn, pb, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, 1.0f, 0.0f,
                                         std::vector<float>(geo.y_size()));
    const std::vector<float> dx = backward_data(dnn, pb, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, 1.0f, 0.0f,
                                                std::vector<float>(geo.x_size()));
    const std::vector<float> dw = backward_filter(dnn, pb, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, 1.0f, 0.0f,
                                                  std::vector<float>(geo.w_size()));
    const double ydy = dot(y, pb.dy);
    CHECK(dot(pb.x, dx) == Approx(ydy).epsilon(1e-5));  // <conv(x, w), dy> = <x, conv^T_x(dy, w)>
    CHECK(dot(pb.w, dw) == Approx(ydy).epsilon(1e-5));  // <conv(x, w), dy> = <w, conv^T_w(x, dy)>
  }
}

TEST_CASE("cuDNN convolutions blend: beta 0 never reads the output (NaN stays out), beta != 0 accumulates",
          "[fake][cudnn]") {
  Dnn dnn;
  const Geo& geo = kGeometries[0];
  Problem pb(geo);
  const float alpha = -0.5f, beta = 0.75f;
  const std::vector<float> y0 = random_floats(geo.y_size(), 31), dx0 = random_floats(geo.x_size(), 32),
                           dw0 = random_floats(geo.w_size(), 33);
  for (int i = 0; i < 3; ++i) {
    INFO("algorithm index " << i);
    check_close(forward(dnn, pb, kFwdAlgos[i], alpha, beta, y0),
                blended(naive_forward(geo, pb.x, pb.w), alpha, beta, y0));
    check_close(backward_data(dnn, pb, kBwdDataAlgos[i], alpha, beta, dx0),
                blended(naive_backward_data(geo, pb.w, pb.dy), alpha, beta, dx0));
    check_close(backward_filter(dnn, pb, kBwdFilterAlgos[i], alpha, beta, dw0),
                blended(naive_backward_filter(geo, pb.x, pb.dy), alpha, beta, dw0));
  }
}

TEST_CASE("cudnnConvolutionBackwardBias and cudnnAddTensor match naive sums, with broadcasting and blending",
          "[fake][cudnn]") {
  Dnn dnn;
  const int n = 3, k = 4, h = 5, w = 2;
  const std::vector<float> dy = random_floats(std::size_t(n) * k * h * w, 41);
  TensorDesc dy_desc(n, k, h, w), bias_desc(1, k, 1, 1);
  DeviceBuffer<float> dev_dy(dy);

  std::vector<double> sums(k, 0.0);
  for (int i = 0; i < n * k * h * w; ++i) sums[(i / (h * w)) % k] += dy[i];
  const float alpha = 2.0f, zero = 0.0f, beta = 0.5f;
  DeviceBuffer<float> db(std::vector<float>(k, kNaN));
  REQUIRE(cudnnConvolutionBackwardBias(dnn.h, &alpha, dy_desc.d, dev_dy.get(), &zero, bias_desc.d, db.get()) ==
          CUDNN_STATUS_SUCCESS);
  const std::vector<float> db1 = db.download();
  check_close(db1, blended(sums, alpha, 0.0f, {}));
  REQUIRE(cudnnConvolutionBackwardBias(dnn.h, &alpha, dy_desc.d, dev_dy.get(), &beta, bias_desc.d, db.get()) ==
          CUDNN_STATUS_SUCCESS);
  check_close(db.download(), blended(sums, alpha, beta, db1));

  // C = alpha * A + beta * C with A broadcast over its dimensions of size 1 (a bias, a per-sample map) or not.
  struct Broadcast {
    int n, c, h, w;
  };
  for (Broadcast a : {Broadcast{1, k, 1, 1}, Broadcast{n, 1, h, w}, Broadcast{n, k, h, w}}) {
    INFO("A " << a.n << "x" << a.c << "x" << a.h << "x" << a.w);
    const std::vector<float> av = random_floats(std::size_t(a.n) * a.c * a.h * a.w, 42);
    TensorDesc a_desc(a.n, a.c, a.h, a.w);
    DeviceBuffer<float> dev_a(av), dev_c(dy);
    REQUIRE(cudnnAddTensor(dnn.h, &alpha, a_desc.d, dev_a.get(), &beta, dy_desc.d, dev_c.get()) ==
            CUDNN_STATUS_SUCCESS);
    std::vector<double> want(dy.size());
    for (int i0 = 0; i0 < n; ++i0)
      for (int i1 = 0; i1 < k; ++i1)
        for (int i2 = 0; i2 < h; ++i2)
          for (int i3 = 0; i3 < w; ++i3) {
            const int j0 = a.n == 1 ? 0 : i0, j1 = a.c == 1 ? 0 : i1, j2 = a.h == 1 ? 0 : i2, j3 = a.w == 1 ? 0 : i3;
            const int ci = ((i0 * k + i1) * h + i2) * w + i3, ai = ((j0 * a.c + j1) * a.h + j2) * a.w + j3;
            want[ci] = alpha * double(av[ai]) + beta * double(dy[ci]);
          }
    check_close(dev_c.download(), want);
  }
  // beta 0 ignores NaN in C.
  DeviceBuffer<float> dev_nan(std::vector<float>(dy.size(), kNaN));
  REQUIRE(cudnnAddTensor(dnn.h, &alpha, dy_desc.d, dev_dy.get(), &zero, dy_desc.d, dev_nan.get()) ==
          CUDNN_STATUS_SUCCESS);
  std::vector<double> twice(dy.begin(), dy.end());
  for (double& x : twice) x *= alpha;
  check_close(dev_nan.download(), twice);
}

TEST_CASE("cudnnGetConvolution2dForwardOutputDim follows the documented output size formula", "[fake][cudnn]") {
  for (const Geo& geo : kGeometries) {
    INFO(describe(geo));
    Problem pb(geo);
    int n = 0, c = 0, h = 0, w = 0;
    REQUIRE(cudnnGetConvolution2dForwardOutputDim(pb.conv.d, pb.x_desc.d, pb.w_desc.d, &n, &c, &h, &w) ==
            CUDNN_STATUS_SUCCESS);
    CHECK(n == geo.n);
    CHECK(c == geo.k);
    CHECK(h == 1 + (geo.h + 2 * geo.pad_h - ((geo.r - 1) * geo.dil_h + 1)) / geo.u);
    CHECK(w == 1 + (geo.w + 2 * geo.pad_w - ((geo.s - 1) * geo.dil_w + 1)) / geo.v);
    CHECK(cudnnGetConvolution2dForwardOutputDim(pb.conv.d, pb.x_desc.d, pb.w_desc.d, &n, &c, nullptr, &w) ==
          CUDNN_STATUS_BAD_PARAM);
  }
  TensorDesc x(1, 3, 4, 4);
  FilterDesc wrong_channels(2, 2, 3, 3), too_big(2, 3, 7, 3);
  ConvDesc conv;
  REQUIRE(cudnnSetConvolution2dDescriptor(conv.d, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
          CUDNN_STATUS_SUCCESS);
  int n, c, h, w;
  CHECK(cudnnGetConvolution2dForwardOutputDim(conv.d, x.d, wrong_channels.d, &n, &c, &h, &w) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnGetConvolution2dForwardOutputDim(conv.d, x.d, too_big.d, &n, &c, &h, &w) == CUDNN_STATUS_BAD_PARAM);
}

// =================================================================================== validation

TEST_CASE("cuDNN descriptor setters reject what the documentation names", "[fake][cudnn]") {
  TensorDesc t;
  CHECK(cudnnSetTensor4dDescriptor(t.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, -1, 2, 3, 4) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetTensor4dDescriptor(t.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 0, 3, 4) == CUDNN_STATUS_BAD_PARAM);
  // Invalid enumerators within each enum's value range (others are not representable in C++).
  CHECK(cudnnSetTensor4dDescriptor(t.d, static_cast<cudnnTensorFormat_t>(3), CUDNN_DATA_FLOAT, 1, 2, 3, 4) ==
        CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetTensor4dDescriptor(t.d, CUDNN_TENSOR_NCHW, static_cast<cudnnDataType_t>(30), 1, 2, 3, 4) ==
        CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetTensor4dDescriptor(t.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 65536, 65536, 1, 1) ==
        CUDNN_STATUS_NOT_SUPPORTED);  // beyond 2^31 elements
  CHECK(cudnnSetTensor4dDescriptorEx(t.d, CUDNN_DATA_FLOAT, 1, 2, 3, 4, 24, -12, 4, 1) == CUDNN_STATUS_BAD_PARAM);
  const int dims3[3] = {2, 3, 4}, strides3[3] = {12, 4, 1};
  CHECK(cudnnSetTensorNdDescriptor(t.d, CUDNN_DATA_FLOAT, 3, dims3, strides3) == CUDNN_STATUS_NOT_SUPPORTED);
  const int dims4[4] = {2, 3, 0, 4}, strides4[4] = {12, 4, 4, 1};
  CHECK(cudnnSetTensorNdDescriptor(t.d, CUDNN_DATA_FLOAT, 4, dims4, strides4) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetTensorNdDescriptor(t.d, CUDNN_DATA_FLOAT, 4, nullptr, strides4) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnCreateTensorDescriptor(nullptr) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnDestroyTensorDescriptor(nullptr) == CUDNN_STATUS_SUCCESS);

  // Set4d, Set4dEx and SetNd describe the same tensor; Get4d reads it back.
  const int dims[4] = {2, 3, 4, 5}, strides[4] = {60, 20, 5, 1};
  for (int how = 0; how < 3; ++how) {
    INFO("setter " << how);
    TensorDesc d;
    if (how == 0) REQUIRE(cudnnSetTensor4dDescriptor(d.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 3, 4, 5) == 0);
    if (how == 1) REQUIRE(cudnnSetTensor4dDescriptorEx(d.d, CUDNN_DATA_FLOAT, 2, 3, 4, 5, 60, 20, 5, 1) == 0);
    if (how == 2) REQUIRE(cudnnSetTensorNdDescriptor(d.d, CUDNN_DATA_FLOAT, 4, dims, strides) == 0);
    cudnnDataType_t type{};
    int got[8];
    REQUIRE(cudnnGetTensor4dDescriptor(d.d, &type, &got[0], &got[1], &got[2], &got[3], &got[4], &got[5], &got[6],
                                       &got[7]) == CUDNN_STATUS_SUCCESS);
    CHECK(type == CUDNN_DATA_FLOAT);
    CHECK(std::vector<int>(got, got + 8) == std::vector<int>{2, 3, 4, 5, 60, 20, 5, 1});
  }
  TensorDesc nhwc(2, 3, 4, 5, CUDNN_TENSOR_NHWC);
  cudnnDataType_t type{};
  int got[8];
  REQUIRE(cudnnGetTensor4dDescriptor(nhwc.d, &type, &got[0], &got[1], &got[2], &got[3], &got[4], &got[5], &got[6],
                                     &got[7]) == CUDNN_STATUS_SUCCESS);
  CHECK(std::vector<int>(got + 4, got + 8) == std::vector<int>{60, 1, 15, 3});

  cudnnFilterDescriptor_t f = nullptr;
  REQUIRE(cudnnCreateFilterDescriptor(&f) == CUDNN_STATUS_SUCCESS);
  CHECK(cudnnSetFilter4dDescriptor(f, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 2, -3, 3, 3) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetFilter4dDescriptor(f, CUDNN_DATA_FLOAT, static_cast<cudnnTensorFormat_t>(3), 2, 3, 3, 3) ==
        CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnDestroyFilterDescriptor(f) == CUDNN_STATUS_SUCCESS);

  ConvDesc c;
  const auto xc = CUDNN_CROSS_CORRELATION;
  CHECK(cudnnSetConvolution2dDescriptor(c.d, 0, 0, 0, 1, 1, 1, xc, CUDNN_DATA_FLOAT) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetConvolution2dDescriptor(c.d, 0, 0, 1, 1, 1, 0, xc, CUDNN_DATA_FLOAT) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetConvolution2dDescriptor(c.d, -1, 0, 1, 1, 1, 1, xc, CUDNN_DATA_FLOAT) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetConvolutionGroupCount(c.d, 0) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetConvolutionGroupCount(c.d, 2) == CUDNN_STATUS_NOT_SUPPORTED);
  CHECK(cudnnSetConvolutionGroupCount(c.d, 1) == CUDNN_STATUS_SUCCESS);
  CHECK(cudnnSetConvolutionMathType(c.d, CUDNN_TENSOR_OP_MATH) == CUDNN_STATUS_SUCCESS);
}

TEST_CASE("cuDNN convolution calls validate handle, pointers, descriptors and algorithm as documented",
          "[fake][cudnn]") {
  Dnn dnn;
  const Geo geo = kGeometries[0];
  Problem pb(geo);
  const std::vector<float> y0 = random_floats(geo.y_size(), 51), dx0 = random_floats(geo.x_size(), 52),
                           dw0 = random_floats(geo.w_size(), 53);
  DeviceBuffer<float> y(y0), dx(dx0), dw(dw0);
  DeviceBuffer<char> ws(1 << 16);
  const float one = 1.0f;
  cudnnHandle_t gone = nullptr;
  REQUIRE(cudnnCreate(&gone) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnDestroy(gone) == CUDNN_STATUS_SUCCESS);

  // Descriptors that are wrong in one respect each.
  TensorDesc y_channels(geo.n, geo.k + 1, geo.p(), geo.q()), y_batch(geo.n + 1, geo.k, geo.p(), geo.q());
  TensorDesc y_spatial(geo.n, geo.k, geo.p() + 1, geo.q()), y_double(geo.n, geo.k, geo.p(), geo.q(), CUDNN_TENSOR_NCHW,
                                                                      CUDNN_DATA_DOUBLE);
  TensorDesc x_channels(geo.n, geo.c + 1, geo.h, geo.w), x_nhwc(geo.n, geo.c, geo.h, geo.w, CUDNN_TENSOR_NHWC);
  TensorDesc x_double(geo.n, geo.c, geo.h, geo.w, CUDNN_TENSOR_NCHW, CUDNN_DATA_DOUBLE), never_set;
  FilterDesc w_double(geo.k, geo.c, geo.r, geo.s, CUDNN_TENSOR_NCHW, CUDNN_DATA_DOUBLE);
  FilterDesc w_nhwc(geo.k, geo.c, geo.r, geo.s, CUDNN_TENSOR_NHWC);
  ConvDesc conv_double;
  REQUIRE(cudnnSetConvolution2dDescriptor(conv_double.d, geo.pad_h, geo.pad_w, geo.u, geo.v, geo.dil_h, geo.dil_w,
                                          geo.mode, CUDNN_DATA_DOUBLE) == CUDNN_STATUS_SUCCESS);

  struct Case {
    const char* what;
    cudnnHandle_t h;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    bool null_data, null_alpha;
    int algo;  ///< for the three directions: 0 (no workspace), 4 (not implemented), kCount (ALGO_COUNT)
    std::size_t ws_bytes;
    cudnnStatus_t fwd, bwd_data, bwd_filter;
  };
  const auto ok = CUDNN_STATUS_SUCCESS, bad = CUDNN_STATUS_BAD_PARAM, unsupported = CUDNN_STATUS_NOT_SUPPORTED;
  const int kCount = -1;  // stands for each direction's ALGO_COUNT (the first value outside its enum)
  const Case cases[] = {
      {"valid", dnn.h, pb.x_desc.d, pb.y_desc.d, pb.w_desc.d, pb.conv.d, false, false, 0, 0, ok, ok, ok},
      {"null handle", nullptr, pb.x_desc.d, pb.y_desc.d, pb.w_desc.d, pb.conv.d, false, false, 0, 0, bad, bad, bad},
      {"destroyed handle", gone, pb.x_desc.d, pb.y_desc.d, pb.w_desc.d, pb.conv.d, false, false, 0, 0,
       CUDNN_STATUS_NOT_INITIALIZED, CUDNN_STATUS_NOT_INITIALIZED, CUDNN_STATUS_NOT_INITIALIZED},
      {"null data pointer", dnn.h, pb.x_desc.d, pb.y_desc.d, pb.w_desc.d, pb.conv.d, true, false, 0, 0, bad, bad, bad},
      {"null alpha", dnn.h, pb.x_desc.d, pb.y_desc.d, pb.w_desc.d, pb.conv.d, false, true, 0, 0, bad, bad, bad},
      {"null descriptor", dnn.h, nullptr, pb.y_desc.d, pb.w_desc.d, pb.conv.d, false, false, 0, 0, bad, bad, bad},
      {"descriptor never set", dnn.h, never_set.d, pb.y_desc.d, pb.w_desc.d, pb.conv.d, false, false, 0, 0, bad, bad,
       bad},
      {"x channels differ from w's", dnn.h, x_channels.d, pb.y_desc.d, pb.w_desc.d, pb.conv.d, false, false, 0, 0, bad,
       bad, bad},
      {"y channels differ from w's count", dnn.h, pb.x_desc.d, y_channels.d, pb.w_desc.d, pb.conv.d, false, false, 0,
       0, bad, bad, bad},
      {"y batch differs from x's", dnn.h, pb.x_desc.d, y_batch.d, pb.w_desc.d, pb.conv.d, false, false, 0, 0, bad,
       bad, bad},
      {"y spatial size differs from the formula", dnn.h, pb.x_desc.d, y_spatial.d, pb.w_desc.d, pb.conv.d, false,
       false, 0, 0, unsupported, bad, bad},
      {"data types differ", dnn.h, pb.x_desc.d, y_double.d, pb.w_desc.d, pb.conv.d, false, false, 0, 0, bad, bad,
       bad},
      {"double data", dnn.h, x_double.d, y_double.d, w_double.d, pb.conv.d, false, false, 0, 0, unsupported,
       unsupported, unsupported},
      {"double compute type", dnn.h, pb.x_desc.d, pb.y_desc.d, pb.w_desc.d, conv_double.d, false, false, 0, 0,
       unsupported, unsupported, unsupported},
      {"NHWC tensor", dnn.h, x_nhwc.d, pb.y_desc.d, pb.w_desc.d, pb.conv.d, false, false, 0, 0, unsupported,
       unsupported, unsupported},
      {"NHWC filter", dnn.h, pb.x_desc.d, pb.y_desc.d, w_nhwc.d, pb.conv.d, false, false, 0, 0, unsupported,
       unsupported, unsupported},
      {"algorithm not implemented", dnn.h, pb.x_desc.d, pb.y_desc.d, pb.w_desc.d, pb.conv.d, false, false, 4, 0,
       unsupported, unsupported, unsupported},
      {"algorithm outside the enum", dnn.h, pb.x_desc.d, pb.y_desc.d, pb.w_desc.d, pb.conv.d, false, false, kCount, 0,
       bad, bad, bad},
  };
  for (const Case& t : cases) {
    INFO(t.what);
    const float* alpha = t.null_alpha ? nullptr : &one;
    auto data = [&](const void* p) { return t.null_data ? nullptr : p; };
    auto algo = [&](int count) { return t.algo == kCount ? count : t.algo; };
    const auto fwd_algo = static_cast<cudnnConvolutionFwdAlgo_t>(algo(CUDNN_CONVOLUTION_FWD_ALGO_COUNT));
    const auto data_algo = static_cast<cudnnConvolutionBwdDataAlgo_t>(algo(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT));
    const auto filter_algo =
        static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT));
    CHECK(cudnnConvolutionForward(t.h, alpha, t.x, data(pb.dev_x.get()), t.w, pb.dev_w.get(), t.conv, fwd_algo,
                                  ws.get(), t.ws_bytes, &one, t.y, y.get()) == t.fwd);
    CHECK(cudnnConvolutionBackwardData(t.h, alpha, t.w, pb.dev_w.get(), t.y, data(pb.dev_dy.get()), t.conv, data_algo,
                                       ws.get(), t.ws_bytes, &one, t.x, dx.get()) == t.bwd_data);
    CHECK(cudnnConvolutionBackwardFilter(t.h, alpha, t.x, data(pb.dev_x.get()), t.y, pb.dev_dy.get(), t.conv,
                                         filter_algo, ws.get(), t.ws_bytes, &one, t.w, dw.get()) == t.bwd_filter);
    if (t.fwd != ok) CHECK(y.download() == y0);
    if (t.bwd_data != ok) CHECK(dx.download() == dx0);
    if (t.bwd_filter != ok) CHECK(dw.download() == dw0);
    y.upload(y0), dx.upload(dx0), dw.upload(dw0);
  }

  SECTION("a filter larger than the padded input is BAD_PARAM") {
    FilterDesc huge(geo.k, geo.c, geo.h + 2 * geo.pad_h + 1, geo.s);
    CHECK(cudnnConvolutionForward(dnn.h, &one, pb.x_desc.d, pb.dev_x.get(), huge.d, pb.dev_w.get(), pb.conv.d,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &one, pb.y_desc.d,
                                  y.get()) == CUDNN_STATUS_BAD_PARAM);
  }
  SECTION("cudnnConvolutionBackwardBias and cudnnAddTensor shapes") {
    TensorDesc bias(1, geo.k, 1, 1), bias_wrong_k(1, geo.k + 1, 1, 1), bias_with_h(1, geo.k, 2, 1);
    DeviceBuffer<float> db(std::size_t(2) * (geo.k + 1));
    CHECK(cudnnConvolutionBackwardBias(dnn.h, &one, pb.y_desc.d, pb.dev_dy.get(), &one, bias_wrong_k.d, db.get()) ==
          CUDNN_STATUS_BAD_PARAM);
    CHECK(cudnnConvolutionBackwardBias(dnn.h, &one, pb.y_desc.d, pb.dev_dy.get(), &one, bias_with_h.d, db.get()) ==
          CUDNN_STATUS_BAD_PARAM);
    CHECK(cudnnConvolutionBackwardBias(dnn.h, &one, pb.y_desc.d, nullptr, &one, bias.d, db.get()) ==
          CUDNN_STATUS_BAD_PARAM);
    CHECK(cudnnAddTensor(dnn.h, &one, bias_wrong_k.d, db.get(), &one, pb.y_desc.d, y.get()) == CUDNN_STATUS_BAD_PARAM);
    CHECK(cudnnAddTensor(dnn.h, &one, pb.y_desc.d, pb.dev_dy.get(), &one, bias.d, db.get()) ==
          CUDNN_STATUS_BAD_PARAM);  // C smaller than A
    CHECK(cudnnAddTensor(dnn.h, &one, y_double.d, y.get(), &one, y_double.d, y.get()) == CUDNN_STATUS_NOT_SUPPORTED);
    CHECK(y.download() == y0);
  }
}

// =================================================================================== workspaces

TEST_CASE("cuDNN workspaces: distinct per algorithm, checked at the call, poisoned by the queued work",
          "[fake][cudnn]") {
  Dnn dnn;
  const Geo geo = kGeometries[0];
  Problem pb(geo);
  auto fwd_size = [&](cudnnConvolutionFwdAlgo_t algo, std::size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(dnn.h, pb.x_desc.d, pb.w_desc.d, pb.conv.d, pb.y_desc.d, algo,
                                                   bytes);
  };
  std::size_t implicit = 1, precomp = 0, gemm = 0, unused = 0;
  REQUIRE(fwd_size(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, &implicit) == CUDNN_STATUS_SUCCESS);
  REQUIRE(fwd_size(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, &precomp) == CUDNN_STATUS_SUCCESS);
  REQUIRE(fwd_size(CUDNN_CONVOLUTION_FWD_ALGO_GEMM, &gemm) == CUDNN_STATUS_SUCCESS);
  CHECK(implicit == 0);
  CHECK(gemm == sizeof(float) * geo.c * geo.r * geo.s * geo.p() * geo.q());  // the im2col buffer of one image
  CHECK(precomp > 0);
  CHECK(precomp < gemm);
  CHECK(fwd_size(CUDNN_CONVOLUTION_FWD_ALGO_FFT, &unused) == CUDNN_STATUS_NOT_SUPPORTED);
  CHECK(fwd_size(CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &unused) == CUDNN_STATUS_BAD_PARAM);
  CHECK(fwd_size(CUDNN_CONVOLUTION_FWD_ALGO_GEMM, nullptr) == CUDNN_STATUS_BAD_PARAM);

  std::size_t data0 = 1, data1 = 0, filter0 = 1, filter1 = 0;
  REQUIRE(cudnnGetConvolutionBackwardDataWorkspaceSize(dnn.h, pb.w_desc.d, pb.y_desc.d, pb.conv.d, pb.x_desc.d,
                                                       CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, &data0) == 0);
  REQUIRE(cudnnGetConvolutionBackwardDataWorkspaceSize(dnn.h, pb.w_desc.d, pb.y_desc.d, pb.conv.d, pb.x_desc.d,
                                                       CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, &data1) == 0);
  REQUIRE(cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn.h, pb.x_desc.d, pb.y_desc.d, pb.conv.d, pb.w_desc.d,
                                                         CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, &filter0) == 0);
  REQUIRE(cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn.h, pb.x_desc.d, pb.y_desc.d, pb.conv.d, pb.w_desc.d,
                                                         CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, &filter1) == 0);
  CHECK(data0 == 0);
  CHECK(data1 > 0);
  CHECK(filter0 == 0);
  CHECK(filter1 == gemm);

  const float one = 1.0f, zero = 0.0f;
  const std::vector<float> y0 = random_floats(geo.y_size(), 61);
  DeviceBuffer<float> y(y0);
  SECTION("a workspace smaller than the queried size, or null, is BAD_PARAM and queues nothing") {
    DeviceBuffer<char> ws(gemm);
    for (auto algo : {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_GEMM}) {
      INFO("algorithm " << algo);
      std::size_t need = 0;
      REQUIRE(fwd_size(algo, &need) == CUDNN_STATUS_SUCCESS);
      CHECK(cudnnConvolutionForward(dnn.h, &one, pb.x_desc.d, pb.dev_x.get(), pb.w_desc.d, pb.dev_w.get(), pb.conv.d,
                                    algo, ws.get(), need - 1, &zero, pb.y_desc.d, y.get()) == CUDNN_STATUS_BAD_PARAM);
      CHECK(cudnnConvolutionForward(dnn.h, &one, pb.x_desc.d, pb.dev_x.get(), pb.w_desc.d, pb.dev_w.get(), pb.conv.d,
                                    algo, nullptr, need, &zero, pb.y_desc.d, y.get()) == CUDNN_STATUS_BAD_PARAM);
    }
    CHECK(cudnnConvolutionBackwardData(dnn.h, &one, pb.w_desc.d, pb.dev_w.get(), pb.y_desc.d, pb.dev_dy.get(),
                                       pb.conv.d, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, ws.get(), data1 - 1, &zero,
                                       pb.x_desc.d, pb.dev_x.get()) == CUDNN_STATUS_BAD_PARAM);
    CHECK(cudnnConvolutionBackwardFilter(dnn.h, &one, pb.x_desc.d, pb.dev_x.get(), pb.y_desc.d, pb.dev_dy.get(),
                                         pb.conv.d, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, ws.get(), filter1 - 1, &zero,
                                         pb.w_desc.d, pb.dev_w.get()) == CUDNN_STATUS_BAD_PARAM);
    CHECK(y.download() == y0);
    CHECK(pb.dev_x.download() == pb.x);
    CHECK(pb.dev_w.download() == pb.w);
  }
  SECTION("the queued work poisons the whole workspace it was given, beyond what it needs") {
    const std::size_t given = gemm + 100;
    DeviceBuffer<char> ws(given);
    REQUIRE(cudaMemset(ws.get(), 0, given) == cudaSuccess);
    REQUIRE(cudnnConvolutionForward(dnn.h, &one, pb.x_desc.d, pb.dev_x.get(), pb.w_desc.d, pb.dev_w.get(), pb.conv.d,
                                    CUDNN_CONVOLUTION_FWD_ALGO_GEMM, ws.get(), given, &zero, pb.y_desc.d,
                                    y.get()) == CUDNN_STATUS_SUCCESS);
    const std::vector<char> after = ws.download();
    CHECK(fake_test::all_poisoned(after, gemm));  // the part it did not stage into
    check_close(y.download(), naive_forward(geo, pb.x, pb.w));
  }
  SECTION("a workspace at an odd address works") {
    DeviceBuffer<char> ws(data1 + 3);
    DeviceBuffer<float> dx(geo.x_size());
    REQUIRE(cudnnConvolutionBackwardData(dnn.h, &one, pb.w_desc.d, pb.dev_w.get(), pb.y_desc.d, pb.dev_dy.get(),
                                         pb.conv.d, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, ws.get() + 3, data1, &zero,
                                         pb.x_desc.d, dx.get()) == CUDNN_STATUS_SUCCESS);
    check_close(dx.download(), naive_backward_data(geo, pb.w, pb.dy));
  }
  SECTION("a workspace shared with data of the call gives wrong results (the data is poisoned first)") {
    // x lives inside the workspace: as with a workspace shared between calls in flight, the result is garbage.
    DeviceBuffer<float> shared(geo.x_size() + gemm / sizeof(float));
    REQUIRE(cudaMemcpy(shared.get(), pb.x.data(), geo.x_size() * sizeof(float), cudaMemcpyHostToDevice) ==
            cudaSuccess);
    REQUIRE(cudnnConvolutionForward(dnn.h, &one, pb.x_desc.d, shared.get(), pb.w_desc.d, pb.dev_w.get(), pb.conv.d,
                                    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, shared.get(), shared.bytes(),
                                    &zero, pb.y_desc.d, y.get()) == CUDNN_STATUS_SUCCESS);
    const std::vector<float> got = y.download();
    CHECK(std::count_if(got.begin(), got.end(), [](float v) { return std::isnan(v); }) > 0);
  }
}

// =============================================================================== algorithm lists

TEST_CASE("cuDNN algorithm queries: counts, heuristics, Find and FindEx (which really runs the candidates)",
          "[fake][cudnn]") {
  Dnn dnn;
  const Geo geo = kGeometries[1];
  Problem pb(geo);
  int count = 0;
  REQUIRE(cudnnGetConvolutionForwardAlgorithmMaxCount(dnn.h, &count) == CUDNN_STATUS_SUCCESS);
  CHECK(count == CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
  REQUIRE(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(dnn.h, &count) == CUDNN_STATUS_SUCCESS);
  CHECK(count == CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
  REQUIRE(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(dnn.h, &count) == CUDNN_STATUS_SUCCESS);
  CHECK(count == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
  CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(dnn.h, nullptr) == CUDNN_STATUS_BAD_PARAM);

  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  auto check_sorted_list = [&](int returned, std::size_t ws_limit) {
    // Successful entries first, by increasing time, with the workspace the size query reports.
    int ok = 0;
    for (int i = 0; i < returned; ++i) {
      INFO("entry " << i << ": algorithm " << perf[i].algo << ", status " << cudnnGetErrorString(perf[i].status));
      if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
      CHECK(i == ok++);
      if (i > 0) CHECK(perf[i - 1].time <= perf[i].time);
      std::size_t bytes = 0;
      REQUIRE(cudnnGetConvolutionForwardWorkspaceSize(dnn.h, pb.x_desc.d, pb.w_desc.d, pb.conv.d, pb.y_desc.d,
                                                      perf[i].algo, &bytes) == CUDNN_STATUS_SUCCESS);
      CHECK(perf[i].memory == bytes);
      CHECK(perf[i].memory <= ws_limit);
      CHECK(perf[i].determinism == CUDNN_DETERMINISTIC);
    }
    return ok;
  };
  int returned = 0;
  REQUIRE(cudnnGetConvolutionForwardAlgorithm_v7(dnn.h, pb.x_desc.d, pb.w_desc.d, pb.conv.d, pb.y_desc.d,
                                                 CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned,
                                                 perf) == CUDNN_STATUS_SUCCESS);
  CHECK(returned == CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
  CHECK(check_sorted_list(returned, SIZE_MAX) == 3);
  CHECK(perf[0].algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM);  // the fake's fastest
  CHECK(perf[returned - 1].status == CUDNN_STATUS_NOT_SUPPORTED);
  REQUIRE(cudnnFindConvolutionForwardAlgorithm(dnn.h, pb.x_desc.d, pb.w_desc.d, pb.conv.d, pb.y_desc.d, 2, &returned,
                                               perf) == CUDNN_STATUS_SUCCESS);
  CHECK(returned == 2);
  CHECK(check_sorted_list(returned, SIZE_MAX) == 2);
  CHECK(cudnnFindConvolutionForwardAlgorithm(dnn.h, pb.x_desc.d, pb.w_desc.d, pb.conv.d, pb.y_desc.d, 0, &returned,
                                             perf) == CUDNN_STATUS_BAD_PARAM);

  SECTION("FindEx runs the candidates that fit the workspace on the given buffers and leaves the output poisoned") {
    std::size_t precomp = 0;
    REQUIRE(cudnnGetConvolutionForwardWorkspaceSize(dnn.h, pb.x_desc.d, pb.w_desc.d, pb.conv.d, pb.y_desc.d,
                                                    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                                    &precomp) == CUDNN_STATUS_SUCCESS);
    DeviceBuffer<char> ws(precomp);  // enough for IMPLICIT_GEMM and IMPLICIT_PRECOMP_GEMM, not for GEMM
    REQUIRE(cudaMemset(ws.get(), 0, ws.bytes()) == cudaSuccess);
    DeviceBuffer<float> y(random_floats(geo.y_size(), 71));
    cudnnConvolutionFwdAlgoPerf_t again[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    for (auto* out : {perf, again})
      REQUIRE(cudnnFindConvolutionForwardAlgorithmEx(dnn.h, pb.x_desc.d, pb.dev_x.get(), pb.w_desc.d, pb.dev_w.get(),
                                                     pb.conv.d, pb.y_desc.d, y.get(), CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                     &returned, out, ws.get(), ws.bytes()) == CUDNN_STATUS_SUCCESS);
    CHECK(check_sorted_list(returned, precomp) == 2);
    CHECK(perf[2].algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM);
    CHECK(perf[2].status == CUDNN_STATUS_ALLOC_FAILED);  // "the provided workspace is insufficient"
    for (int i = 0; i < returned; ++i) {
      INFO("entry " << i);
      CHECK(again[i].algo == perf[i].algo);  // deterministic
      CHECK(again[i].time == perf[i].time);
    }
    CHECK(fake_test::all_poisoned(y.download()));
    const std::vector<char> staged = ws.download();
    CHECK(staged != std::vector<char>(staged.size(), 0));  // the candidates worked in it
  }
  SECTION("FindEx on host memory faults the device: the candidates run on the buffers given") {
    std::vector<float> host_x = pb.x;
    DeviceBuffer<float> y(geo.y_size());
    REQUIRE(cudnnFindConvolutionForwardAlgorithmEx(dnn.h, pb.x_desc.d, host_x.data(), pb.w_desc.d, pb.dev_w.get(),
                                                   pb.conv.d, pb.y_desc.d, y.get(), 1, &returned, perf, nullptr,
                                                   0) == CUDNN_STATUS_SUCCESS);
    CHECK(fake_test::device_faulted());
  }
  SECTION("backward data and filter lists") {
    cudnnConvolutionBwdDataAlgoPerf_t data[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    cudnnConvolutionBwdFilterAlgoPerf_t filter[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    REQUIRE(cudnnGetConvolutionBackwardDataAlgorithm_v7(dnn.h, pb.w_desc.d, pb.y_desc.d, pb.conv.d, pb.x_desc.d,
                                                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned,
                                                        data) == CUDNN_STATUS_SUCCESS);
    CHECK(returned == CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    CHECK(data[0].algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
    CHECK(data[2].algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0);
    CHECK(data[2].determinism == CUDNN_NON_DETERMINISTIC);
    CHECK(data[3].status == CUDNN_STATUS_NOT_SUPPORTED);
    REQUIRE(cudnnFindConvolutionBackwardDataAlgorithm(dnn.h, pb.w_desc.d, pb.y_desc.d, pb.conv.d, pb.x_desc.d, 1,
                                                      &returned, data) == CUDNN_STATUS_SUCCESS);
    CHECK(returned == 1);
    DeviceBuffer<float> dx(geo.x_size()), dw(geo.w_size());
    REQUIRE(cudnnFindConvolutionBackwardDataAlgorithmEx(dnn.h, pb.w_desc.d, pb.dev_w.get(), pb.y_desc.d,
                                                        pb.dev_dy.get(), pb.conv.d, pb.x_desc.d, dx.get(), 6, &returned,
                                                        data, nullptr, 0) == CUDNN_STATUS_SUCCESS);
    CHECK(data[0].algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0);  // the only one without a workspace
    CHECK(data[1].status == CUDNN_STATUS_ALLOC_FAILED);
    CHECK(fake_test::all_poisoned(dx.download()));

    REQUIRE(cudnnGetConvolutionBackwardFilterAlgorithm_v7(dnn.h, pb.x_desc.d, pb.y_desc.d, pb.conv.d, pb.w_desc.d,
                                                          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned,
                                                          filter) == CUDNN_STATUS_SUCCESS);
    CHECK(filter[0].algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
    CHECK(filter[1].algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3);
    CHECK(filter[1].determinism == CUDNN_NON_DETERMINISTIC);
    REQUIRE(cudnnFindConvolutionBackwardFilterAlgorithm(dnn.h, pb.x_desc.d, pb.y_desc.d, pb.conv.d, pb.w_desc.d, 7,
                                                        &returned, filter) == CUDNN_STATUS_SUCCESS);
    CHECK(returned == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
    REQUIRE(cudnnFindConvolutionBackwardFilterAlgorithmEx(dnn.h, pb.x_desc.d, pb.dev_x.get(), pb.y_desc.d,
                                                          pb.dev_dy.get(), pb.conv.d, pb.w_desc.d, dw.get(), 7,
                                                          &returned, filter, nullptr, 0) == CUDNN_STATUS_SUCCESS);
    CHECK(filter[0].algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0);
    CHECK(fake_test::all_poisoned(dw.download()));
  }
}

// ========================================================================= memory, handles, streams

TEST_CASE("cuDNN: host memory as an operand faults the device and the work does not run", "[fake][cudnn]") {
  Dnn dnn;
  Problem pb(kGeometries[3]);
  std::vector<float> host_w = pb.w;
  const std::vector<float> y0 = random_floats(pb.g.y_size(), 81);
  DeviceBuffer<float> y(y0);
  const float one = 1.0f, zero = 0.0f;
  REQUIRE(cudnnConvolutionForward(dnn.h, &one, pb.x_desc.d, pb.dev_x.get(), pb.w_desc.d, host_w.data(), pb.conv.d,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, pb.y_desc.d,
                                  y.get()) == CUDNN_STATUS_SUCCESS);
  CHECK(fake_test::device_faulted());
  std::vector<float> after(y0.size());
  REQUIRE(cudaMemcpy(after.data(), y.get(), y.bytes(), cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(after == y0);
}

TEST_CASE("cuDNN handle: stream, version, status strings", "[fake][cudnn]") {
  Dnn dnn;
  CHECK(cudnnCreate(nullptr) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnDestroy(nullptr) == CUDNN_STATUS_BAD_PARAM);
  cudaStream_t s = nullptr, got = reinterpret_cast<cudaStream_t>(1);
  REQUIRE(cudaStreamCreate(&s) == cudaSuccess);
  CHECK(cudnnGetStream(dnn.h, &got) == CUDNN_STATUS_SUCCESS);
  CHECK(got == nullptr);
  CHECK(cudnnSetStream(dnn.h, s) == CUDNN_STATUS_SUCCESS);
  CHECK(cudnnGetStream(dnn.h, &got) == CUDNN_STATUS_SUCCESS);
  CHECK(got == s);
  CHECK(cudnnGetStream(dnn.h, nullptr) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetStream(nullptr, s) == CUDNN_STATUS_BAD_PARAM);

  // The work runs on the handle's stream: synchronizing it is enough.
  TensorDesc t(1, 1, 1, 2);
  DeviceBuffer<float> a(std::vector<float>{1.0f, 2.0f}), c(std::vector<float>{10.0f, 20.0f});
  const float alpha = 3.0f, beta = 1.0f;
  REQUIRE(cudnnAddTensor(dnn.h, &alpha, t.d, a.get(), &beta, t.d, c.get()) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudaStreamSynchronize(s) == cudaSuccess);
  std::vector<float> result(2);
  REQUIRE(cudaMemcpy(result.data(), c.get(), c.bytes(), cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(result == std::vector<float>{13.0f, 26.0f});
  CHECK(cudnnSetStream(dnn.h, nullptr) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudaStreamDestroy(s) == cudaSuccess);

  CHECK(cudnnGetVersion() / 10000 == 9);
  CHECK(std::string(cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM)) == "CUDNN_STATUS_BAD_PARAM");
  CHECK(std::string(cudnnGetErrorString(CUDNN_STATUS_NOT_SUPPORTED)) == "CUDNN_STATUS_NOT_SUPPORTED");
  CHECK(std::string(cudnnGetErrorString(CUDNN_STATUS_SUCCESS)) == "CUDNN_STATUS_SUCCESS");
}

TEST_CASE("cuDNN handles belong to the device current at cudnnCreate", "[fake][cudnn]") {
  if (!fake_test::has_two_devices()) {
    WARN("the emulated runtime has one device: the cross-device checks need two");
    return;
  }
  Dnn dnn;  // on device 0
  REQUIRE(cudaSetDevice(1) == cudaSuccess);
  cudaStream_t other = nullptr;
  REQUIRE(cudaStreamCreate(&other) == cudaSuccess);
  TensorDesc t(1, 1, 1, 1);
  DeviceBuffer<float> a(1), c(1);
  const float one = 1.0f;
  CHECK(cudnnAddTensor(dnn.h, &one, t.d, a.get(), &one, t.d, c.get()) == CUDNN_STATUS_MAPPING_ERROR);
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  CHECK(cudnnSetStream(dnn.h, other) == CUDNN_STATUS_MAPPING_ERROR);
  REQUIRE(cudaSetDevice(1) == cudaSuccess);
  CHECK(cudaStreamDestroy(other) == cudaSuccess);
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
}
