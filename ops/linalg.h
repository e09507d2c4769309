/// @file ops/linalg.h @brief Differentiable matmul (1-D, 2-D and batched 3-D; transposed views go to BLAS without copies).
#pragma once
#include "core/tensor.h"

namespace ember {

/// [m,k]@[k,n] -> [m,n]; [b,m,k]@[b,k,n], [b,m,k]@[k,n] or [m,k]@[b,k,n] -> [b,m,n]; a 1-D operand is a
/// vector as in torch.matmul ([k]@[k,n] -> [n], [m,k]@[k] -> [m], [k]@[k] -> []).
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace ember
