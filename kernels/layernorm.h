/// @file kernels/layernorm.h @brief Layer normalization kernels over the last dim of x viewed as [rows, n]: fused forward (one-pass Welford statistics, saves mean and rstd per row) and fused backward (dx, and dweight/dbias reduced over rows deterministically).
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/tensor.h"

namespace ember::kernels {

/// x [*, n] as the kernels see it: `rows` rows (the product of the leading dims; 1 for a 1-D x) of `n`
/// normalized values.
struct LayerNormShape {
  int64_t rows = 0, n = 0;
};

/// The shape of x [*, n]; throws naming x when it has no dims or its last dim is 0.
LayerNormShape layer_norm_shape(const Tensor& x);

/// Contract of every function: x-shaped tensors are contiguous, weight/bias (optional: undefined means
/// 1 / 0) and dweight/dbias contiguous [n], mean/rstd contiguous [rows], one device and dtype (validated
/// by the entry points below).
struct LayerNormKernels {
  /// Per row r: mean[r] and the biased variance var = M2 / n by Welford's one-pass update (merged with
  /// Chan's formula across lanes / threads, never the sum-of-squares formula, so inputs with a large
  /// mean keep their precision); rstd[r] = 1 / sqrt(var + eps); y = fma((x - mean) * rstd, w, b).
  void (*forward)(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, const LayerNormShape& sh,
                  Tensor& y, Tensor& mean, Tensor& rstd) = nullptr;
  /// With xhat = (x - mean[r]) * rstd[r] and g = dy * w: dx = (g - mean(g) - xhat * mean(g * xhat)) * rstd
  /// per row (row means in double); dweight = sum over rows of dy * xhat, dbias = sum over rows of dy, in
  /// double and in an order that depends only on the shape (no atomics). A null output is not computed.
  void (*backward)(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                   const LayerNormShape& sh, Tensor* dx, Tensor* dweight, Tensor* dbias) = nullptr;
};

// ---- device-generic entry points: validate, then dispatch on x's device ----
/// weight and bias may be undefined (1 and 0); eps > 0.
void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, Tensor& y,
                        Tensor& mean, Tensor& rstd);
/// dx, dweight and dbias may each be undefined (not computed); weight may be undefined (1). With no rows,
/// dweight and dbias are zeros.
void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                         const Tensor& weight, Tensor& dx, Tensor& dweight, Tensor& dbias);

/// How a backward cuts `rows` into `chunks` chunks of `len` consecutive rows (the last may be shorter) for
/// its dweight/dbias partials: at least `min_rows` rows per chunk and at most `max_chunks` chunks. A
/// function of the shape only, so the partial sums are the same bits for any thread count or grid.
struct RowChunks {
  int64_t chunks = 1, len = 1;
};
inline RowChunks plan_row_chunks(int64_t rows, int64_t min_rows, int64_t max_chunks) {
  const int64_t wanted = std::clamp<int64_t>(rows / min_rows, 1, max_chunks);
  RowChunks p;
  p.len = (rows + wanted - 1) / wanted;
  p.chunks = (rows + p.len - 1) / p.len;
  return p;
}

}  // namespace ember::kernels
