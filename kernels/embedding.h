/// @file kernels/embedding.h @brief Embedding lookup kernels: a row gather forward and a deterministic per-row sum backward (repeated indices add up in position order).
#pragma once
#include <string>

#include "core/tensor.h"

namespace ember::kernels {

struct EmbeddingKernels {
  /// out [n, dim] = weight[indices[i]] for indices i64 [n] (contiguous), weight [num, dim] (contiguous).
  /// Returns the number of indices outside [0, num) (their rows are NaN), or 0 when the backend checks
  /// them on the device and raises at the next host synchronization (kernels/device_checks.h) with
  /// raise_bad_indices.
  int64_t (*embedding_forward)(const Tensor& indices, const Tensor& weight, Tensor& out) = nullptr;
  /// grad_weight[r] += sum over the positions i with indices[i] == r of grad_out[i], summed in double in
  /// increasing i, then added to grad_weight[r] and rounded once: the same bits on every backend, run
  /// and schedule. Rows no index names are left untouched; out-of-range indices are skipped.
  void (*embedding_backward)(const Tensor& indices, const Tensor& grad_out, Tensor& grad_weight) = nullptr;
};

/// Validates devices, dtypes and shapes; throws an Error naming the first index outside [0, num) (on a
/// GPU: at the next host synchronization).
void embedding_forward(const Tensor& indices, const Tensor& weight, Tensor& out);
/// Validates, then adds the per-row sums of grad_out [n, dim] into grad_weight [num, dim] (see above).
void embedding_backward(const Tensor& indices, const Tensor& grad_out, Tensor& grad_weight);
/// Throws the Error naming the first index outside [0, num) and how many there are, followed by `where`.
[[noreturn]] void raise_bad_indices(const Tensor& indices, int64_t num, const std::string& where);

}  // namespace ember::kernels
