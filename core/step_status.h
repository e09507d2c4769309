/// @file core/step_status.h @brief The step status of a gradient-accumulation window: what the device records (slots of a small f64 tensor), how an optimizer update meets it (StepGate), and what the host reads back (ScaleResult).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ember {

/// The step status: a small f64 tensor on the gradients' device that the window-end kernels write and
/// read, so that scaling, clipping, the non-finite check and the optimizer update are decided on the
/// device and the host learns the outcome with one copy, when it wants it (docs/accumulation.md).
/// Slots:
inline constexpr int64_t kStatusLossSum = 0;     ///< sum over the window's micro-batches of loss * count
inline constexpr int64_t kStatusSumSquares = 1;  ///< sum of squares of the scaled gradients
inline constexpr int64_t kStatusNonFinite = 2;   ///< 1 when any gradient value was NaN/Inf, else 0
inline constexpr int64_t kStatusSize = 4;        ///< (slot 3 is spare)

/// A window end's outcome as the host reads it.
struct ScaleResult {
  double sum_squares = 0.0;  ///< sum of squares of the scaled values (for the global norm)
  bool non_finite = false;   ///< any NaN/Inf among the values
};

/// Connects a fused optimizer update (Optimizer::step_gated) to the step status, so that the window end
/// needs no host synchronization.
struct StepGate {
  /// f64 [kStatusSize] on the parameters' device (kernels::make_step_status), or undefined: no gate,
  /// nothing reported.
  Tensor status;
  /// false: the update adds the scaled gradients' sum of squares to status[kStatusSumSquares] and sets
  /// status[kStatusNonFinite] when a gradient value is NaN/Inf (several calls of one step accumulate).
  /// true: the update reads them (as scale_many wrote them) and decides on the device: nothing is
  /// written when non_finite and skip_non_finite; with clip_norm > 0 and norm = sqrt(sum of squares) >
  /// clip_norm each scaled gradient is multiplied by clip_norm / (norm + 1e-6) (step_gate_decision).
  bool read = false;
  double clip_norm = 0.0;
  bool skip_non_finite = false;
};

}  // namespace ember
