/// @file distributed/window_state.h @brief The state DataParallel synchronizes at a window end besides the gradients: window-merged BatchNorm statistics (merged across ranks), buffers (rebroadcast from rank 0), the pending micro-batch count of flush().
#pragma once
#include <cstdint>
#include <vector>

#include "distributed/process_group.h"
#include "nn/batchnorm.h"

namespace ember::distributed::detail {

/// The BatchNorm layers of `model` (itself included) with BatchNormOptions::window_stats, each once,
/// in registration order.
std::vector<nn::BatchNormBase*> window_merged_layers(nn::Module& model);

/// `buffers` without the running statistics of `layers` (matched by tensor identity).
NamedTensors buffers_outside(const NamedTensors& buffers, const std::vector<nn::BatchNormBase*>& layers);

/// Replaces every layer's window (count, mean, M2 per channel) by its merge over all ranks: one
/// all-reduce (sum) of a [world, sum over layers of (1 + 2C)] f64 table in which each rank fills its own
/// row, then Chan's merge of the rows in rank order, the same arithmetic on every rank (so the result
/// is bitwise identical everywhere). Every rank must call it with the same layers.
void merge_windows_across_ranks(ProcessGroup& group, const std::vector<nn::BatchNormBase*>& layers);

/// Copies rank 0's values of `tensors` into every rank's, packed into one broadcast per dtype and
/// device; returns the number of broadcasts (0 for a world of one).
int64_t broadcast_packed(ProcessGroup& group, const NamedTensors& tensors);

/// The largest `value` over all ranks (one all-reduce of a [world] i64 table).
int64_t max_over_ranks(ProcessGroup& group, int64_t value);

}  // namespace ember::distributed::detail
