/// @file kernels/accumulate.h @brief The fused kernels Ember is about: grad += alpha * g (single and multi-tensor), multi-tensor scale with norm + non-finite flag, and the device-resident step status they report into.
#pragma once
#include <cstdint>
#include <span>

#include "core/step_status.h"
#include "core/tensor.h"

namespace ember::kernels {

// The step status's slots, ScaleResult and StepGate: core/step_status.h.

struct AccumulateKernels {
  /// dst += alpha * src; both contiguous, same numel, same dtype.
  void (*accumulate)(Tensor& dst, const Tensor& src, double alpha) = nullptr;
  /// dsts[i] += alpha * srcs[i] for all i in one pass/launch.
  void (*accumulate_many)(std::span<Tensor> dsts, std::span<const Tensor> srcs, double alpha) = nullptr;
  /// ts[i] *= s for all i in one pass/launch; writes the sum of squares of the results and whether any
  /// input value was NaN/Inf to status[kStatusSumSquares] and status[kStatusNonFinite] (overwriting them).
  void (*scale_many)(std::span<Tensor> ts, double s, Tensor& status) = nullptr;
  /// status[slot] += double(x) * alpha for a one-element floating x on status's device.
  void (*add_to_status)(Tensor& status, int64_t slot, const Tensor& x, double alpha) = nullptr;
  /// Every slot of the status = 0.
  void (*zero_status)(Tensor& status) = nullptr;
};

void accumulate(Tensor& dst, const Tensor& src, double alpha = 1.0);
void accumulate_many(std::span<Tensor> dsts, std::span<const Tensor> srcs, double alpha = 1.0);

/// A zeroed step status on device `d`.
Tensor make_step_status(Device d);
/// Validates and dispatches AccumulateKernels::scale_many (no host synchronization).
void scale_many(std::span<Tensor> ts, double s, Tensor& status);
void add_to_status(Tensor& status, int64_t slot, const Tensor& x, double alpha);
void zero_status(Tensor& status);
/// Reads a status on the host (one copy: a host synchronization on a GPU).
ScaleResult read_scale_result(const Tensor& status);
/// scale_many into a fresh status, read back: for callers that want the result now (a host sync).
ScaleResult scale_many(std::span<Tensor> ts, double s);

}  // namespace ember::kernels
