/// @file ops/functional_embedding.h @brief embedding(indices, weight): a differentiable row lookup whose backward adds each index's output-gradient rows into weight's .grad in place.
#pragma once
#include "core/tensor.h"

namespace ember {

/// torch.nn.functional.embedding(input, weight): indices i64 of any shape [...], weight [num, dim] ->
/// [..., dim], row weight[indices[...]]. An index outside [0, num) throws an Error naming it and the
/// range (on a GPU at the next host synchronization). Backward: weight's gradient row r is the sum of
/// the output-gradient rows at the positions holding r (repeated indices add up), in position order, the
/// same bits on every backend and run; when weight is a leaf it is added straight into weight.grad.
Tensor embedding(const Tensor& indices, const Tensor& weight);

}  // namespace ember
