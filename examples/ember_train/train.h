/// @file examples/ember_train/train.h @brief The ember-train run: data, model, optimizer, accumulation loop, evaluation, outputs.
#pragma once
#include <memory>
#include <ostream>

#include "distributed/process_group.h"
#include "examples/ember_train/cli.h"
#include "examples/ember_train/report.h"

namespace ember::train {

/// The kind of device `--device` asks for (auto: CUDA when a GPU is present); throws for cuda without one.
DeviceType training_device_type(DeviceChoice choice);
/// The device this rank trains on: distributed::device_for_rank (GPU local rank % GPU count on its
/// node, the local rank from MPI's own shared-memory split).
Device training_device(DeviceChoice choice, const distributed::ProcessGroup& group);

/// The process group of this run, from the launcher's environment: MPI (or NCCL on CUDA) when started
/// by `mpirun -np K` with K > 1 and Ember was built with MPI, else a single process.
std::shared_ptr<distributed::ProcessGroup> make_process_group(const TrainOptions& options);

/// Runs one training job as configured (loads data, builds or restores the model, trains, evaluates,
/// writes the requested files) and returns its summary. Progress and results go to `out` (rank 0
/// only). With a group of several ranks each rank trains on its shard of every global micro-step
/// (data::DataLoader) and DataParallel all-reduces the gradient buckets once per window; rank 0
/// evaluates, writes the files and prints. `group` null: make_process_group(options). Throws
/// ember::Error for bad data, files, devices or configurations. Its steps are TrainingRun's (run.h).
RunSummary run_training(const TrainOptions& options, std::ostream& out,
                        std::shared_ptr<distributed::ProcessGroup> group = nullptr);

}  // namespace ember::train
