/// @file ops/reduce.h @brief Differentiable reductions: sum, mean (over dims, keepdim), max (values + argmax), sum_to (broadcast backward).
#pragma once
#include <vector>

#include "core/tensor.h"

namespace ember {

/// Sum of all elements (0-dim result).
Tensor sum(const Tensor& x);
/// Sum over `dims` (negative allowed, no duplicates); keepdim keeps them as size 1.
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
/// Max over one dim; gradient flows to the (first) argmax.
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);
/// Index (i64) of the max over `dim`; not differentiable.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
/// Sums x down to `shape` (the inverse of broadcasting `shape` up to x's shape). Differentiable.
Tensor sum_to(const Tensor& x, const Shape& shape);

}  // namespace ember
