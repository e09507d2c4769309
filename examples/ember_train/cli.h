/// @file examples/ember_train/cli.h @brief ember-train options: the struct, command-line parsing (CLI11) and validation.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "optim/grad_accumulator.h"

namespace ember::train {

enum class ModelKind { MLP, CNN };
enum class NormKind { Batch, None, Sync };
enum class BnStats { Micro, Window };
enum class OptimizerKind { SGD, AdamW };
enum class ScheduleKind { Constant, Cosine };
enum class DeviceChoice { Auto, CPU, CUDA };

/// Everything one ember-train run is configured by. Defaults are the `make train` configuration.
struct TrainOptions {
  ModelKind model = ModelKind::CNN;
  NormKind norm = NormKind::Batch;
  BnStats bn_stats = BnStats::Micro;
  int64_t micro_batch = 32;
  int64_t accum = 4;
  int64_t epochs = 5;
  int64_t steps = 0;  ///< stop after this many optimizer steps (0 = no limit)
  double dropout = 0.0;    ///< dropout probability after each hidden layer (0 = no dropout layers)
  bool drop_last = false;  ///< drop each epoch's incomplete last global micro-step (DataLoaderOptions::drop_last)
  OptimizerKind optimizer = OptimizerKind::AdamW;
  std::optional<double> lr;            ///< default: 3e-3 (adamw), 0.05 (sgd)
  std::optional<double> momentum;      ///< sgd only; default 0.9
  std::optional<double> weight_decay;  ///< default: 1e-2 (adamw), 0 (sgd)
  ScheduleKind schedule = ScheduleKind::Cosine;
  int64_t warmup = 0;                  ///< linear warm-up optimizer steps
  double clip_norm = 0.0;              ///< 0 = no clipping
  double bucket_mb = 25.0;             ///< data parallel: gradient bucket capacity in MiB (first bucket: min(1, this))
  uint64_t seed = 0;
  bool shuffle = true;
  DeviceChoice device = DeviceChoice::Auto;
  int threads = 0;  ///< 0 = the OpenMP/OpenBLAS default
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string init, save, resume;
  int64_t checkpoint_every = 0;  ///< optimizer steps between checkpoints to --save (0 = only at the end)
  std::string metrics, plot, summary;
  int64_t log_every = 100;  ///< optimizer steps between plain log lines (no terminal)
  bool progress = true;     ///< live progress bar when stdout is a terminal
  // Internal (hidden from --help, documented in docs/training.md): smaller runs for tests.
  int64_t limit_train = 0;  ///< use only the first N training samples (0 = all)
  int64_t limit_test = 0;   ///< evaluate on the first N test samples (0 = all)
  /// Not a flag: fault injection for programs that embed the loop (the reliability tests), passed to
  /// GradAccumulatorOptions::inject_non_finite.
  std::vector<optim::NonFiniteInjection> inject_non_finite;

  double resolved_lr() const { return lr.value_or(optimizer == OptimizerKind::SGD ? 0.05 : 3e-3); }
  double resolved_momentum() const { return momentum.value_or(optimizer == OptimizerKind::SGD ? 0.9 : 0.0); }
  double resolved_weight_decay() const { return weight_decay.value_or(optimizer == OptimizerKind::SGD ? 0.0 : 1e-2); }
};

/// Result of parsing: either options to run with, or text to print and an exit code (--help).
struct CliResult {
  TrainOptions options;
  bool exit_now = false;
  int exit_code = 0;
  std::string text;
};

/// Parses argv (argv[0] is the program name). Throws ember::Error whose message names the offending
/// flag for an unknown flag, a malformed or out-of-range value, or an inconsistent combination.
CliResult parse_cli(int argc, const char* const* argv);
/// Same, from the arguments after the program name.
CliResult parse_cli(const std::vector<std::string>& args);

/// Cross-flag and range validation (called by parse_cli; callers building options in code may call it).
void validate(const TrainOptions& o);

const char* name(ModelKind m);
const char* name(NormKind n);
const char* name(BnStats b);
const char* name(OptimizerKind o);
const char* name(ScheduleKind s);

}  // namespace ember::train
