/// @file ops/functional_conv.cpp @brief conv2d / max_pool2d / batch_norm forward on the kernels of kernels/{conv,pool,batchnorm}.h and their autograd nodes.
#include "ops/functional_conv.h"

#include <string>
#include <vector>

#include "ops/autograd/fused_grad.h"
#include "ops/autograd/node.h"
#include "kernels/batchnorm.h"
#include "kernels/conv.h"
#include "kernels/pool.h"

namespace ember {
namespace {

// ------------------------------------------------------------------------------------------ conv2d

/// Backward of conv2d on the device's convolution kernels (kernels/conv.h: cuDNN on CUDA, per-image
/// im2col + GEMM on the CPU). The weight and bias gradients go straight into .grad when the leaf allows
/// it (GradTarget: beta = 1 once it holds values).
class Conv2dBackward final : public Node {
 public:
  Tensor x;  // contiguous, detached; kept only when the weight needs a gradient
  Tensor w;  // [Cout, C, kh, kw] contiguous, detached; kept only when the input needs a gradient
  kernels::Conv2dGeometry geo;
  int64_t out_channels = 0;
  DType dtype = DType::f32;
  Device device;
  bool need_x = false, need_w = false, need_b = false;

  std::string name() const override { return "Conv2dBackward"; }
  void release_saved() override { x = w = Tensor(); }

  std::vector<Tensor> apply(const Tensor& grad_output) override {
    const Tensor gy = grad_output.contiguous();
    Tensor gx, gw, gb;
    if (need_x) {
      gx = empty({geo.batch, geo.channels, geo.height, geo.width}, {dtype, device});
      kernels::conv2d_backward_data(gy, w, gx, geo);
    }
    if (need_w) {
      GradTarget t(next_edges[1], {out_channels, geo.channels, geo.kernel_h, geo.kernel_w}, {dtype, device});
      kernels::conv2d_backward_filter(x, gy, t.buffer, geo, t.next_beta());
      gw = t.finish();
    }
    if (need_b) {
      GradTarget t(next_edges[2], {out_channels}, {dtype, device});
      kernels::conv2d_backward_bias(gy, t.buffer, t.next_beta());
      gb = t.finish();
    }
    return {gx, gw, gb};
  }
};

// -------------------------------------------------------------------------------------- max_pool2d

class MaxPool2dBackward final : public Node {
 public:
  Tensor indices;
  kernels::Pool2dGeometry geo;
  Shape input_shape;
  std::string name() const override { return "MaxPool2dBackward"; }
  void release_saved() override { indices = Tensor(); }
  std::vector<Tensor> apply(const Tensor& grad_output) override {
    Tensor gx = empty(input_shape, TensorOptions{grad_output.dtype(), grad_output.device()});
    kernels::max_pool2d_backward(grad_output.contiguous(), indices, gx, geo);
    return {gx};
  }
};

// -------------------------------------------------------------------------------------- batch_norm

class BatchNormBackward final : public Node {
 public:
  Tensor x, mean, var, weight;  // detached; mean/var are the statistics the forward normalized with
  double eps = 1e-5;
  bool batch_stats = true;  // mean/var computed from x (training) rather than constants
  bool need_x = false, need_w = false, need_b = false;

  std::string name() const override { return "BatchNormBackward"; }
  void release_saved() override { x = mean = var = weight = Tensor(); }

  std::vector<Tensor> apply(const Tensor& grad_output) override {
    const Tensor dy = grad_output.contiguous();
    const TensorOptions opts{x.dtype(), x.device()};
    const int64_t c = x.size(1);
    Tensor sum_dy, sum_dy_xhat, dx;
    if (need_w || need_b || (need_x && batch_stats)) {
      sum_dy = empty({c}, opts);
      sum_dy_xhat = empty({c}, opts);
      kernels::batch_norm_backward_reduce(dy, x, mean, var, eps, sum_dy, sum_dy_xhat);
    }
    if (need_x) {
      dx = empty(x.shape(), opts);
      kernels::batch_norm_backward_input(dy, x, mean, var, weight, sum_dy, sum_dy_xhat, eps, batch_stats, dx);
    }
    return {dx, need_w ? sum_dy_xhat : Tensor(), need_b ? sum_dy : Tensor()};
  }
};

void check_same_place(const char* op, const Tensor& x, const Tensor& t, const char* name) {
  EMBER_CHECK(t.device() == x.device() && t.dtype() == x.dtype(), op, ": ", name, " ", describe(t),
              " must have the input's dtype and device (input ", describe(x), ")");
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding) {
  EMBER_CHECK(x.defined() && weight.defined(), "conv2d: undefined input or weight");
  EMBER_CHECK(x.dim() == 4, "conv2d: expected an input [N, C, H, W], got ", describe(x));
  EMBER_CHECK(weight.dim() == 4, "conv2d: expected a weight [Cout, Cin, kh, kw], got ", describe(weight));
  EMBER_CHECK(is_floating(x.dtype()), "conv2d: expected a floating input, got ", describe(x));
  check_same_place("conv2d", x, weight, "weight");
  EMBER_CHECK(x.size(1) == weight.size(1), "conv2d: input ", describe(x), " has ", x.size(1),
              " channels but the weight ", describe(weight), " expects ", weight.size(1));
  const int64_t cout = weight.size(0);
  if (bias.defined()) {
    check_same_place("conv2d", x, bias, "bias");
    EMBER_CHECK(bias.shape() == Shape{cout}, "conv2d: bias must be [", cout, "] for weight ", describe(weight),
                ", got ", describe(bias));
  }
  const kernels::Conv2dGeometry geo =
      kernels::conv2d_geometry(x.shape(), weight.size(2), weight.size(3), stride, stride, padding, padding);
  const Tensor xc = x.detach().contiguous();
  const Tensor w4 = weight.detach().contiguous();
  const Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor out = empty({geo.batch, cout, geo.out_h, geo.out_w}, {x.dtype(), x.device()});
  kernels::conv2d_forward(xc, w4, out, geo);
  if (b.defined()) kernels::conv2d_add_bias(b, out);

  if (any_requires_grad({&x, &weight, &bias})) {
    auto node = std::make_shared<Conv2dBackward>();
    node->geo = geo;
    node->out_channels = cout;
    node->dtype = x.dtype();
    node->device = x.device();
    node->need_x = x.requires_grad();
    node->need_w = weight.requires_grad();
    node->need_b = bias.defined() && bias.requires_grad();
    if (node->need_w) node->x = xc;
    if (node->need_x) node->w = w4;
    record(node, {&x, &weight, &bias}, out);
  }
  return out;
}

Tensor max_pool2d(const Tensor& x, int64_t kernel_size, int64_t stride, int64_t padding) {
  EMBER_CHECK(x.defined(), "max_pool2d: undefined input");
  EMBER_CHECK(is_floating(x.dtype()), "max_pool2d: expected a floating input, got ", describe(x));
  EMBER_CHECK(stride >= 0, "max_pool2d: stride must be >= 1 (or 0 for the kernel size), got ", stride);
  const int64_t s = stride == 0 ? kernel_size : stride;
  const kernels::Pool2dGeometry geo =
      kernels::max_pool2d_geometry(x.shape(), kernel_size, kernel_size, s, s, padding, padding);
  Shape out_shape = x.shape();
  out_shape[out_shape.size() - 2] = geo.out_h;
  out_shape[out_shape.size() - 1] = geo.out_w;
  Tensor y = empty(out_shape, TensorOptions{x.dtype(), x.device()});
  Tensor idx = empty(out_shape, TensorOptions{DType::i64, x.device()});
  kernels::max_pool2d_forward(x.detach().contiguous(), y, idx, geo);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<MaxPool2dBackward>();
    node->indices = idx;
    node->geo = geo;
    node->input_shape = x.shape();
    record(node, {&x}, y);
  }
  return y;
}

Tensor batch_norm(const Tensor& x, Tensor running_mean, Tensor running_var, const BatchNormFuncOptions& o) {
  EMBER_CHECK(x.defined() && x.dim() >= 2, "batch_norm: expected an input [N, C] or [N, C, *], got ",
              x.defined() ? describe(x) : std::string("an undefined tensor"));
  EMBER_CHECK(is_floating(x.dtype()), "batch_norm: expected a floating input, got ", describe(x));
  EMBER_CHECK(o.eps > 0.0, "batch_norm: eps must be positive, got ", o.eps);
  EMBER_CHECK(running_mean.defined() == running_var.defined(),
              "batch_norm: running_mean and running_var must both be given or both be undefined");
  const int64_t c = x.size(1);
  for (const auto& [t, name] : {std::pair<const Tensor*, const char*>{&o.weight, "weight"}, {&o.bias, "bias"},
                                {&running_mean, "running_mean"}, {&running_var, "running_var"}}) {
    if (!t->defined()) continue;
    check_same_place("batch_norm", x, *t, name);
    EMBER_CHECK(t->shape() == Shape{c}, "batch_norm: ", name, " must be [", c, "] for input ", describe(x), " (", c,
                " channels), got ", describe(*t));
  }
  const TensorOptions opts{x.dtype(), x.device()};
  const kernels::BatchNormShape sh = kernels::batch_norm_shape(x);
  const Tensor xc = x.detach().contiguous();
  const Tensor weight = o.weight.defined() ? o.weight.detach().contiguous() : Tensor();
  const Tensor bias = o.bias.defined() ? o.bias.detach().contiguous() : Tensor();
  const bool batch_stats = o.training || !running_mean.defined();

  Tensor mean, var;
  if (batch_stats) {
    EMBER_CHECK(sh.per_channel() > 1, "batch_norm: expected more than 1 value per channel when training, got input ",
                describe(x), ": a micro-batch of 1 sample has no batch variance. Use a larger micro-batch, drop "
                "the short last micro-batch (data::DataLoaderOptions::drop_last, ember-train --drop-last), or "
                "evaluation mode (model.eval()) for a single sample");
    mean = empty({c}, opts);
    var = empty({c}, opts);
    kernels::batch_norm_stats(xc, mean, var);
    if (o.training && running_mean.defined()) {
      const double count = static_cast<double>(sh.per_channel());
      Tensor nbt = o.num_batches_tracked;
      kernels::batch_norm_update_running(running_mean, running_var, nbt, mean, var, o.momentum, count / (count - 1.0));
    }
    if (o.batch_stats_out) *o.batch_stats_out = BatchNormBatchStats{mean, var, sh.per_channel()};
  } else {
    mean = running_mean.detach().contiguous();
    var = running_var.detach().contiguous();
  }
  Tensor y = empty(x.shape(), opts);
  kernels::batch_norm_normalize(xc, mean, var, weight, bias, o.eps, y);

  if (any_requires_grad({&x, &o.weight, &o.bias})) {
    auto node = std::make_shared<BatchNormBackward>();
    node->x = xc;
    // The running statistics may move (a later training forward) before this backward runs: keep copies.
    node->mean = batch_stats ? mean : mean.clone();
    node->var = batch_stats ? var : var.clone();
    node->weight = weight;
    node->eps = o.eps;
    node->batch_stats = batch_stats;
    node->need_x = x.requires_grad();
    node->need_w = o.weight.defined() && o.weight.requires_grad();
    node->need_b = o.bias.defined() && o.bias.requires_grad();
    record(node, {&x, &o.weight, &o.bias}, y);
  }
  return y;
}

}  // namespace ember
