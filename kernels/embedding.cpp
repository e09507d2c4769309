/// @file kernels/embedding.cpp @brief Device-generic embedding entry points: shape/dtype/device checks, then a named error for an index outside [0, num).
#include "kernels/embedding.h"

#include <limits>

#include "kernels/dispatch.h"
#include "kernels/transfer.h"

namespace ember::kernels {
namespace {

void check_indices_weight(const char* op, const Tensor& indices, const Tensor& weight) {
  check_same_device(op, indices, weight);
  EMBER_CHECK(indices.dtype() == DType::i64 && indices.dim() == 1 && indices.is_contiguous(), op,
              ": expected contiguous i64 indices [n], got ", describe(indices));
  EMBER_CHECK(is_floating(weight.dtype()) && weight.dim() == 2 && weight.is_contiguous(), op,
              ": expected a contiguous floating weight [num_embeddings, embedding_dim], got ", describe(weight));
  // The CUDA backward sorts (row, position) pairs packed into 64 bits: 32 bits each.
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  EMBER_CHECK(indices.numel() <= kMax && weight.size(0) <= kMax, op, ": at most 2^31 - 1 indices and rows, got ",
              describe(indices), " and ", describe(weight));
}

void check_rows(const char* op, const char* what, const Tensor& indices, const Tensor& weight, const Tensor& t) {
  check_same_device(op, weight, t);
  check_same_dtype(op, weight, t);
  EMBER_CHECK(t.dim() == 2 && t.size(0) == indices.numel() && t.size(1) == weight.size(1) && t.is_contiguous(), op,
              ": expected ", what, " contiguous [", indices.numel(), ", ", weight.size(1), "], got ", describe(t));
}

}  // namespace

void embedding_forward(const Tensor& indices, const Tensor& weight, Tensor& out) {
  check_indices_weight("embedding", indices, weight);
  check_rows("embedding", "out", indices, weight, out);
  if (indices.numel() == 0) return;
  const int64_t bad = require(table_for<EmbeddingKernels>(weight.device().type).embedding_forward, "embedding",
                              weight.device())(indices, weight, out);
  if (bad != 0) raise_bad_indices(indices, weight.size(0), "");
}

void embedding_backward(const Tensor& indices, const Tensor& grad_out, Tensor& grad_weight) {
  check_indices_weight("embedding_backward", indices, grad_weight);
  check_rows("embedding_backward", "grad_out", indices, grad_weight, grad_out);
  if (grad_out.numel() == 0) return;
  require(table_for<EmbeddingKernels>(grad_weight.device().type).embedding_backward, "embedding_backward",
          grad_weight.device())(indices, grad_out, grad_weight);
}

void raise_bad_indices(const Tensor& indices, int64_t num, const std::string& where) {
  // Cold path: name the first offending index and count them all (on the host).
  const Tensor t = indices.device().is_cpu() ? indices : transfer(indices, Device::cpu());
  const int64_t* ip = static_cast<const int64_t*>(t.data_ptr());
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < t.numel(); ++i)
    if (ip[i] < 0 || ip[i] >= num) {
      if (bad++ == 0) first = i;
    }
  EMBER_CHECK(bad > 0, "embedding: a device check reported invalid indices but none is out of [0, ", num, ")",
              where);
  EMBER_FAIL("embedding: index ", ip[first], " at position ", first, " is out of range [0, ", num,
             ") of num_embeddings = ", num, " (", bad, " invalid indices in all)", where);
}

}  // namespace ember::kernels
