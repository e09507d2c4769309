/// @file core/ops/linalg.h @brief Differentiable matmul (2-D and batched 3-D; transposed views go to BLAS without copies).
#pragma once
#include "core/tensor.h"

namespace ember {

/// [m,k]@[k,n] -> [m,n]; [b,m,k]@[b,k,n] or [b,m,k]@[k,n] -> [b,m,n].
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace ember
