/// @file ops/softmax.h @brief Differentiable softmax and log_softmax over any dim.
#pragma once
#include "core/tensor.h"

namespace ember {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace ember
