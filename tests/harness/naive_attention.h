/// @file tests/harness/naive_attention.h @brief Naive references of the attention ops (index loops in double, no Ember kernels).
#pragma once
#include "tests/harness/naive_ops.h"

namespace ember::test {

/// softmax over the last dim of scale * x with keys j > i of each [T, T] matrix removed from the
/// row (their output is 0): x [..., T, T].
NdArray naive_causal_softmax(const NdArray& x, double scale);

/// softmax(q k^T / sqrt(hd) [causal: keys j <= i only]) v for q [..., T, hd], k [..., S, hd],
/// v [..., S, hv] with equal leading dims; returns [..., T, hv].
NdArray naive_attention(const NdArray& q, const NdArray& k, const NdArray& v, bool causal);

}  // namespace ember::test
