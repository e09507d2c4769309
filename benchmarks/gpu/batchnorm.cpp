/// @file benchmarks/gpu/batchnorm.cpp @brief GPU batch-norm training forward and backward: Ember's kernels against cuDNN's spatial batch norm on the same shapes.
#include "benchmarks/bench_util.h"
#include "benchmarks/gpu/baselines.h"
#include "benchmarks/gpu/gpu_bench.h"
#include "benchmarks/table_reporter.h"
#include "kernels/batchnorm.h"

namespace ember::bench::gpu {
namespace {

constexpr double kEps = 1e-5, kMomentum = 0.1;

/// The cuDNN view of x: NCHW f32 ([N, C] as [N, C, 1, 1]) and the derived 1 x C x 1 x 1 parameter descriptor.
struct CudnnBn {
  cudnnTensorDescriptor_t x = nullptr, param = nullptr;
  explicit CudnnBn(const Shape& s) {
    const int n = int(s[0]), c = int(s[1]), h = s.size() > 2 ? int(s[2]) : 1, w = s.size() > 3 ? int(s[3]) : 1;
    EMBER_BENCH_CUDNN(cudnnCreateTensorDescriptor(&x));
    EMBER_BENCH_CUDNN(cudnnCreateTensorDescriptor(&param));
    EMBER_BENCH_CUDNN(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
    EMBER_BENCH_CUDNN(cudnnDeriveBNTensorDescriptor(param, x, CUDNN_BATCHNORM_SPATIAL));
  }
  ~CudnnBn() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(param);
  }
  CudnnBn(const CudnnBn&) = delete;
  CudnnBn& operator=(const CudnnBn&) = delete;
};

/// Operands of one layer: `count` rotating copies of x, y (= dy in backward) and dx, plus per-channel state.
struct BnData {
  std::vector<Tensor> x, y, dx;
  Tensor weight, bias, mean, var, running_mean, running_var, tracked, sum_dy, sum_dy_xhat, dweight, dbias;
  BnData(const Shape& shape, int count, bool backward) {
    const int64_t c = shape[1];
    for (int i = 0; i < count; ++i) {
      x.push_back(randn(shape, on_gpu()));
      y.push_back(backward ? randn(shape, on_gpu()) : empty(shape, on_gpu()));
      if (backward) dx.push_back(empty(shape, on_gpu()));
    }
    weight = ones({c}, on_gpu());
    bias = zeros({c}, on_gpu());
    mean = empty({c}, on_gpu());
    var = empty({c}, on_gpu());
    running_mean = zeros({c}, on_gpu());
    running_var = ones({c}, on_gpu());
    tracked = zeros(Shape{}, TensorOptions{}.set_dtype(DType::i64).set_device(kGpu));
    sum_dy = empty({c}, on_gpu());
    sum_dy_xhat = empty({c}, on_gpu());
    dweight = empty({c}, on_gpu());
    dbias = empty({c}, on_gpu());
  }
};

void* ptr(Tensor& t) { return t.data_ptr(); }

/// Training forward, all of it: statistics, normalize, running-statistics update. Must move 12 bytes per
/// element (x read twice, y written), as docs/kernels.md counts bn_stats_kernel + bn_normalize_kernel.
void forward(benchmark::State& s, Shape shape, bool use_cudnn) {
  const double n = double(shape_numel(shape));
  const int r = rotations(8.0 * n);
  BnData d(shape, r, false);
  const double unbias = double(shape_numel(shape) / shape[1]) / double(shape_numel(shape) / shape[1] - 1);
  CudnnBn desc(shape);
  const float one = 1.0f, zero = 0.0f;
  time_calls(s, [&](int64_t k) {
    Tensor& x = d.x[size_t(k % r)];
    Tensor& y = d.y[size_t(k % r)];
    if (use_cudnn) {
      EMBER_BENCH_CUDNN(cudnnBatchNormalizationForwardTraining(
          cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, desc.x, x.data_ptr(), desc.x, y.data_ptr(), desc.param,
          ptr(d.weight), ptr(d.bias), kMomentum, ptr(d.running_mean), ptr(d.running_var), kEps, ptr(d.mean),
          ptr(d.var)));
      return;
    }
    kernels::batch_norm_stats(x, d.mean, d.var);
    kernels::batch_norm_normalize(x, d.mean, d.var, d.weight, d.bias, kEps, y);
    kernels::batch_norm_update_running(d.running_mean, d.running_var, d.tracked, d.mean, d.var, kMomentum, unbias);
  });
  set_bandwidth(s, 12.0 * n, kPeakCopy);
}

/// Training backward: dgamma / dbeta reduction and dx. Must move 20 bytes per element (dy and x read
/// by the reduction, dy and x read again and dx written by the elementwise pass).
void backward(benchmark::State& s, Shape shape, bool use_cudnn) {
  const double n = double(shape_numel(shape));
  const int r = rotations(12.0 * n);
  BnData d(shape, r, true);
  CudnnBn desc(shape);
  const float one = 1.0f, zero = 0.0f;
  // Statistics of the first x, for both: Ember's backward reads mean / var, cuDNN's the saved mean and
  // inverse standard deviation its forward wrote.
  kernels::batch_norm_stats(d.x[0], d.mean, d.var);
  Tensor saved_mean = empty({shape[1]}, on_gpu()), saved_inv_std = empty({shape[1]}, on_gpu());
  EMBER_BENCH_CUDNN(cudnnBatchNormalizationForwardTraining(
      cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, desc.x, d.x[0].data_ptr(), desc.x, d.dx[0].data_ptr(),
      desc.param, ptr(d.weight), ptr(d.bias), kMomentum, ptr(d.running_mean), ptr(d.running_var), kEps,
      ptr(saved_mean), ptr(saved_inv_std)));
  time_calls(s, [&](int64_t k) {
    Tensor& x = d.x[size_t(k % r)];
    Tensor& dy = d.y[size_t(k % r)];
    Tensor& dx = d.dx[size_t(k % r)];
    if (use_cudnn) {
      EMBER_BENCH_CUDNN(cudnnBatchNormalizationBackward(
          cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, desc.x, x.data_ptr(), desc.x, dy.data_ptr(),
          desc.x, dx.data_ptr(), desc.param, ptr(d.weight), ptr(d.dweight), ptr(d.dbias), kEps, ptr(saved_mean),
          ptr(saved_inv_std)));
      return;
    }
    // sum_dy is dbeta and sum_dy_xhat dgamma, as BatchNormBackward returns them.
    kernels::batch_norm_backward_reduce(dy, x, d.mean, d.var, kEps, d.sum_dy, d.sum_dy_xhat);
    kernels::batch_norm_backward_input(dy, x, d.mean, d.var, d.weight, d.sum_dy, d.sum_dy_xhat, kEps, true, dx);
  });
  set_bandwidth(s, 20.0 * n, kPeakCopy);
}

}  // namespace

void register_batchnorm() {
  for (const BnCase& c : bn_cases(256)) {
    add_gpu(bench_name("batchnorm_forward/", c.name, "/cudnn"), forward, c.shape, true);
    add_gpu(bench_name("batchnorm_forward/", c.name, "/ember"), forward, c.shape, false);
    add_gpu(bench_name("batchnorm_backward/", c.name, "/cudnn"), backward, c.shape, true);
    add_gpu(bench_name("batchnorm_backward/", c.name, "/ember"), backward, c.shape, false);
  }
}

}  // namespace ember::bench::gpu
