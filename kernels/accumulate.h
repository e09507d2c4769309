/// @file kernels/accumulate.h @brief The fused kernels Ember is about: grad += alpha * g (single and multi-tensor), multi-tensor scale with norm + non-finite flag, and the device-resident step status they report into.
#pragma once
#include <cstdint>
#include <span>

#include "core/tensor.h"

namespace ember::kernels {

/// A window end's outcome as the host reads it.
struct ScaleResult {
  double sum_squares = 0.0;  ///< sum of squares of the scaled values (for the global norm)
  bool non_finite = false;   ///< any NaN/Inf among the values
};

/// The step status: a small f64 tensor on the gradients' device that the window-end kernels write and
/// read, so that scaling, clipping, the non-finite check and the optimizer update are decided on the
/// device and the host learns the outcome with one copy, when it wants it (docs/accumulation.md).
/// Slots:
inline constexpr int64_t kStatusLossSum = 0;     ///< sum over the window's micro-batches of loss * count
inline constexpr int64_t kStatusSumSquares = 1;  ///< sum of squares of the scaled gradients
inline constexpr int64_t kStatusNonFinite = 2;   ///< 1 when any gradient value was NaN/Inf, else 0
inline constexpr int64_t kStatusSize = 4;        ///< (slot 3 is spare)

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
