/// @file kernels/cuda/lib/cudnn_conv.cpp @brief Conv2d on CUDA through cuDNN: forward, backward data, backward filter (beta = 1 straight into .grad), bias add and bias gradient; the algorithm found once per shape and cached, its workspace from Ember's caching allocator.
//
// Every call runs on Ember's stream with cuDNN's handle for the current device. A plan (descriptors,
// algorithm, workspace size) is made the first time a (device, direction, shape) is seen: cuDNN's
// Find*AlgorithmEx times the candidates on a scratch output (so .grad is never clobbered) with the
// largest workspace its heuristics ask for (at most kMaxWorkspace, from Ember's allocator), and the
// fastest deterministic candidate wins. Math is restricted to FMA (no TF32): fp32-accurate results.
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "core/allocator.h"
#include "core/error.h"
#include "kernels/conv.h"
#include "kernels/cuda/device_context.h"
#include "kernels/cuda/device_scratch.h"
#include "kernels/dispatch.h"

namespace ember::cuda {
namespace {

/// Throws ember::Error naming the cuDNN call and status.
#define EMBER_CUDNN_CHECK(expr)                                                                     \
  do {                                                                                              \
    const cudnnStatus_t ember_cudnn_st_ = (expr);                                                   \
    EMBER_CHECK(ember_cudnn_st_ == CUDNN_STATUS_SUCCESS, #expr, " failed: ",                        \
                cudnnGetErrorString(ember_cudnn_st_));                                              \
  } while (0)

constexpr size_t kMaxWorkspace = size_t{256} << 20;  // the most a convolution may borrow for scratch

/// cuDNN's handle for the current device, created on first use, bound to Ember's stream.
cudnnHandle_t handle() {
  static std::mutex mu;
  static auto& handles = *new std::map<int, cudnnHandle_t>();  // never destroyed: used until the process ends
  std::lock_guard<std::mutex> lock(mu);
  cudnnHandle_t& h = handles[current_device()];
  if (h == nullptr) EMBER_CUDNN_CHECK(cudnnCreate(&h));
  EMBER_CUDNN_CHECK(cudnnSetStream(h, stream()));
  return h;
}

// ---- descriptors (move-only RAII) ----

template <class T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class Descriptor {
 public:
  Descriptor() { EMBER_CUDNN_CHECK(Create(&d_)); }
  ~Descriptor() {
    if (d_ != nullptr) Destroy(d_);
  }
  Descriptor(Descriptor&& o) noexcept : d_(std::exchange(o.d_, nullptr)) {}
  Descriptor& operator=(Descriptor&&) = delete;
  T get() const { return d_; }

 private:
  T d_ = nullptr;
};
using TensorDesc = Descriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDesc = Descriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvDesc =
    Descriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;

int as_int(int64_t v, const char* what) {
  EMBER_CHECK(v >= 0 && v <= INT32_MAX, "conv2d (cuDNN): ", what, " = ", v, " exceeds cuDNN's int range");
  return static_cast<int>(v);
}

TensorDesc tensor_desc(int64_t n, int64_t c, int64_t h, int64_t w) {
  TensorDesc d;
  EMBER_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d.get(), CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, as_int(n, "N"),
                                               as_int(c, "C"), as_int(h, "H"), as_int(w, "W")));
  return d;
}

/// The descriptors of one convolution geometry with cout output channels.
struct Descriptors {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  Descriptors(const kernels::Conv2dGeometry& g, int64_t cout)
      : x(tensor_desc(g.batch, g.channels, g.height, g.width)), y(tensor_desc(g.batch, cout, g.out_h, g.out_w)) {
    EMBER_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w.get(), CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, as_int(cout, "Cout"),
                                                 as_int(g.channels, "C"), as_int(g.kernel_h, "kh"),
                                                 as_int(g.kernel_w, "kw")));
    EMBER_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv.get(), as_int(g.pad_h, "pad"), as_int(g.pad_w, "pad"),
                                                      as_int(g.stride_h, "stride"), as_int(g.stride_w, "stride"), 1,
                                                      1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    EMBER_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.get(), CUDNN_FMA_MATH));
  }
};

// ---- the three directions, described once each ----

/// What differs between forward, backward data and backward filter: the algorithm type, cuDNN's
/// find/workspace/compute calls with their operand order, and which operand is the output.
struct Forward {
  using Algo = cudnnConvolutionFwdAlgo_t;
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  static constexpr const char* name = "forward";
  // operands: a = x, b = w, out = y
  static cudnnStatus_t heuristics(cudnnHandle_t h, const Descriptors& d, int n, int* got, Perf* perf) {
    return cudnnGetConvolutionForwardAlgorithm_v7(h, d.x.get(), d.w.get(), d.conv.get(), d.y.get(), n, got, perf);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const Descriptors& d, const void* a, const void* b, void* out, int n,
                            int* got, Perf* perf, void* ws, size_t ws_bytes) {
    return cudnnFindConvolutionForwardAlgorithmEx(h, d.x.get(), a, d.w.get(), b, d.conv.get(), d.y.get(), out, n, got,
                                                  perf, ws, ws_bytes);
  }
  static cudnnStatus_t run(cudnnHandle_t h, const Descriptors& d, Algo algo, const void* a, const void* b, void* out,
                           void* ws, size_t ws_bytes, float beta) {
    const float alpha = 1.0f;
    return cudnnConvolutionForward(h, &alpha, d.x.get(), a, d.w.get(), b, d.conv.get(), algo, ws, ws_bytes, &beta,
                                   d.y.get(), out);
  }
};
struct BackwardData {
  using Algo = cudnnConvolutionBwdDataAlgo_t;
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  static constexpr const char* name = "backward data";
  // operands: a = dy, b = w, out = dx
  static cudnnStatus_t heuristics(cudnnHandle_t h, const Descriptors& d, int n, int* got, Perf* perf) {
    return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(), n, got, perf);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const Descriptors& d, const void* a, const void* b, void* out, int n,
                            int* got, Perf* perf, void* ws, size_t ws_bytes) {
    return cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w.get(), b, d.y.get(), a, d.conv.get(), d.x.get(), out, n,
                                                       got, perf, ws, ws_bytes);
  }
  static cudnnStatus_t run(cudnnHandle_t h, const Descriptors& d, Algo algo, const void* a, const void* b, void* out,
                           void* ws, size_t ws_bytes, float beta) {
    const float alpha = 1.0f;
    return cudnnConvolutionBackwardData(h, &alpha, d.w.get(), b, d.y.get(), a, d.conv.get(), algo, ws, ws_bytes,
                                        &beta, d.x.get(), out);
  }
};
struct BackwardFilter {
  using Algo = cudnnConvolutionBwdFilterAlgo_t;
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  static constexpr const char* name = "backward filter";
  // operands: a = x, b = dy, out = dw
  static cudnnStatus_t heuristics(cudnnHandle_t h, const Descriptors& d, int n, int* got, Perf* perf) {
    return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(), n, got,
                                                         perf);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const Descriptors& d, const void* a, const void* b, void* out, int n,
                            int* got, Perf* perf, void* ws, size_t ws_bytes) {
    return cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x.get(), a, d.y.get(), b, d.conv.get(), d.w.get(), out,
                                                         n, got, perf, ws, ws_bytes);
  }
  static cudnnStatus_t run(cudnnHandle_t h, const Descriptors& d, Algo algo, const void* a, const void* b, void* out,
                           void* ws, size_t ws_bytes, float beta) {
    const float alpha = 1.0f;
    return cudnnConvolutionBackwardFilter(h, &alpha, d.x.get(), a, d.y.get(), b, d.conv.get(), algo, ws, ws_bytes,
                                          &beta, d.w.get(), out);
  }
};

/// Descriptors and the chosen algorithm of one (device, direction, geometry).
template <class Dir>
struct Plan {
  Descriptors desc;
  typename Dir::Algo algo{};
  size_t workspace = 0;
};

using PlanKey = std::array<int64_t, 12>;
PlanKey key_of(int device, const kernels::Conv2dGeometry& g, int64_t cout) {
  return {device, g.batch, g.channels, g.height, g.width, cout, g.kernel_h, g.kernel_w, g.stride_h, g.stride_w,
          g.pad_h, g.pad_w};
}

/// The workspace to offer Find: the largest any candidate of cuDNN's heuristics asks for, at most kMaxWorkspace.
template <class Dir>
size_t workspace_to_offer(const Plan<Dir>& plan) {
  std::vector<typename Dir::Perf> perf(16);
  int got = 0;
  EMBER_CUDNN_CHECK(Dir::heuristics(handle(), plan.desc, static_cast<int>(perf.size()), &got, perf.data()));
  size_t bytes = 0;
  for (int i = 0; i < got; ++i) {
    const auto& p = perf[static_cast<size_t>(i)];
    if (p.status == CUDNN_STATUS_SUCCESS && p.memory <= kMaxWorkspace) bytes = std::max(bytes, p.memory);
  }
  return bytes;
}

/// Times the algorithms cuDNN offers for this shape (on a scratch output, so .grad is never touched) and
/// picks the fastest deterministic one that succeeded (the fastest of any if none is deterministic).
template <class Dir>
void choose_algorithm(Plan<Dir>& plan, const Tensor& a, const Tensor& b, const Shape& out_shape) {
  Tensor scratch_out = empty(out_shape, TensorOptions{DType::f32, a.device()});
  const size_t offered = workspace_to_offer(plan);
  DeviceScratch ws(current_device(), offered);
  std::vector<typename Dir::Perf> perf(16);
  int got = 0;
  EMBER_CUDNN_CHECK(Dir::find(handle(), plan.desc, a.data_ptr(), b.data_ptr(), scratch_out.data_ptr(),
                              static_cast<int>(perf.size()), &got, perf.data(), ws.get(), offered));
  const typename Dir::Perf* best = nullptr;
  for (int i = 0; i < got; ++i) {  // sorted by time: the first deterministic success wins
    const auto& p = perf[static_cast<size_t>(i)];
    if (p.status != CUDNN_STATUS_SUCCESS || p.memory > offered) continue;
    if (best == nullptr || (p.determinism == CUDNN_DETERMINISTIC && best->determinism != CUDNN_DETERMINISTIC))
      best = &p;
    if (best->determinism == CUDNN_DETERMINISTIC) break;
  }
  EMBER_CHECK(best != nullptr, "conv2d (cuDNN ", Dir::name, "): no algorithm succeeded for input ", describe(a),
              " within a workspace of ", offered, " bytes");
  plan.algo = best->algo;
  plan.workspace = best->memory;
}

/// The cached plan of this direction and shape, found on first use.
template <class Dir>
const Plan<Dir>& plan_for(const kernels::Conv2dGeometry& g, int64_t cout, const Tensor& a, const Tensor& b,
                          const Shape& out_shape) {
  static std::mutex mu;
  // Never destroyed: descriptors must not be released after the CUDA context during static destruction.
  static auto& plans = *new std::map<PlanKey, std::unique_ptr<Plan<Dir>>>();
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = plans[key_of(current_device(), g, cout)];
  if (!slot) {
    auto plan = std::make_unique<Plan<Dir>>(Plan<Dir>{Descriptors(g, cout)});
    choose_algorithm(*plan, a, b, out_shape);
    slot = std::move(plan);
  }
  return *slot;
}

/// out = beta * out + Dir(a, b) with the cached plan and a workspace from Ember's allocator.
template <class Dir>
void convolve(const kernels::Conv2dGeometry& g, int64_t cout, const Tensor& a, const Tensor& b, Tensor& out,
              double beta) {
  EMBER_CHECK(a.dtype() == DType::f32, "conv2d: the CUDA backend computes in f32 only, got ", describe(a));
  const Plan<Dir>& plan = plan_for<Dir>(g, cout, a, b, out.shape());
  DeviceScratch ws(current_device(), plan.workspace);  // stream-ordered: returned to the cache when the call is queued
  EMBER_CUDNN_CHECK(Dir::run(handle(), plan.desc, plan.algo, a.data_ptr(), b.data_ptr(), out.data_ptr(), ws.get(),
                             plan.workspace, static_cast<float>(beta)));
}

// ---- the ConvKernels entries ----

void forward(const Tensor& x, const Tensor& w, Tensor& y, const kernels::Conv2dGeometry& g) {
  convolve<Forward>(g, w.size(0), x, w, y, 0.0);
}
void backward_data(const Tensor& dy, const Tensor& w, Tensor& dx, const kernels::Conv2dGeometry& g) {
  convolve<BackwardData>(g, w.size(0), dy, w, dx, 0.0);
}
void backward_filter(const Tensor& x, const Tensor& dy, Tensor& dw, const kernels::Conv2dGeometry& g, double beta) {
  convolve<BackwardFilter>(g, dw.size(0), x, dy, dw, beta);
}

/// Per-channel descriptor [1, C, 1, 1] of a bias, and the 4-D descriptor of y.
std::pair<TensorDesc, TensorDesc> bias_and_output(const Tensor& y) {
  return {tensor_desc(1, y.size(1), 1, 1), tensor_desc(y.size(0), y.size(1), y.size(2), y.size(3))};
}

void add_bias(const Tensor& bias, Tensor& y) {
  const auto [b, out] = bias_and_output(y);
  const float one = 1.0f;
  EMBER_CUDNN_CHECK(cudnnAddTensor(handle(), &one, b.get(), bias.data_ptr(), &one, out.get(), y.data_ptr()));
}

void backward_bias(const Tensor& dy, Tensor& db, double beta) {
  const auto [b, grad] = bias_and_output(dy);
  const float one = 1.0f, fbeta = static_cast<float>(beta);
  EMBER_CUDNN_CHECK(cudnnConvolutionBackwardBias(handle(), &one, grad.get(), dy.data_ptr(), &fbeta, b.get(),
                                                 db.data_ptr()));
}

}  // namespace

const kernels::Registrar cudnn_registrar([] {
  auto& t = kernels::table_for<kernels::ConvKernels>(DeviceType::CUDA);
  t.conv2d_forward = forward;
  t.conv2d_add_bias = add_bias;
  t.conv2d_backward_data = backward_data;
  t.conv2d_backward_filter = backward_filter;
  t.conv2d_backward_bias = backward_bias;
});

}  // namespace ember::cuda
