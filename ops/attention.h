/// @file ops/attention.h @brief Differentiable attention ops: the fused causal softmax and scaled dot-product attention.
#pragma once
#include "core/tensor.h"

namespace ember {

/// softmax over the last dim of (scale * scores) with the causal mask: scores [..., T, T] (at least
/// 2-D, square in the last two dims; any layout, copied when not contiguous), row i keeps keys j <= i.
/// Masked probabilities are exactly 0, and so are their gradients. One fused kernel forward (scale,
/// mask, softmax) and one backward: dscores = scale * p * (dp - sum_{j <= i} p dp). Saves p only.
Tensor causal_softmax(const Tensor& scores, double scale);

/// softmax(q k^T / sqrt(hd) [+ causal mask]) v for q [..., T, hd], k [..., S, hd], v [..., S, hv]
/// (3-D or 4-D, e.g. [B, H, T, hd]; the leading dims of the three must be equal; causal needs S == T).
/// As torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal) without dropout or
/// an attention mask. The leading dims are folded into one batch and the two products run as batched
/// GEMMs (cuBLAS strided batched on CUDA, k^T passed as a transpose flag, not copied); the causal case
/// uses causal_softmax, the other the plain softmax of the scaled scores. Backward frees q, k, v and
/// the probabilities as it passes them, like every op. Returns [..., T, hv].
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal = true);

}  // namespace ember
