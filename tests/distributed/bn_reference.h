/// @file tests/distributed/bn_reference.h @brief Batch norm over one whole batch from differentiable core ops: the reference SyncBatchNorm is checked against.
#pragma once
#include <vector>

#include "ops/ops.h"

namespace ember::test::dist {

/// The training-mode batch norm of x [N, C, *] with biased variance; `mean_out`/`var_out` receive the
/// batch statistics ([C], var unbiased) for checking running statistics.
inline Tensor reference_batch_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps,
                                   Tensor* mean_out = nullptr, Tensor* unbiased_var_out = nullptr) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  Shape ss(static_cast<size_t>(x.dim()), 1);
  ss[1] = x.size(1);
  Tensor mu = mean(x, dims, true);
  Tensor d = x - mu;
  Tensor var = mean(d * d, dims, true);
  const double n = static_cast<double>(x.numel() / x.size(1));
  if (mean_out) *mean_out = mu.detach().reshape(Shape{x.size(1)});
  if (unbiased_var_out) *unbiased_var_out = (var.detach() * (n / (n - 1))).reshape(Shape{x.size(1)});
  return d * pow(var + eps, -0.5) * w.reshape(ss) + b.reshape(ss);
}

}  // namespace ember::test::dist
