/// @file examples/ember_train/train.h @brief The ember-train run: data, model, optimizer, accumulation loop, evaluation, outputs.
#pragma once
#include <ostream>

#include "examples/ember_train/cli.h"
#include "examples/ember_train/report.h"

namespace ember::train {

/// Runs one training job as configured (loads data, builds or restores the model, trains, evaluates,
/// writes the requested files) and returns its summary. Progress and results go to `out`. Throws
/// ember::Error for bad data, files, devices or configurations.
RunSummary run_training(const TrainOptions& options, std::ostream& out);

}  // namespace ember::train
