/// @file examples/ember_train/cli.h @brief ember-train options: the struct, command-line parsing (CLI11) and validation.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "optim/grad_accumulator.h"

namespace ember::train {

enum class ModelKind { MLP, CNN, GPT };  ///< GPT: ember-train-lm's byte-level language model
enum class NormKind { Batch, None, Sync };
enum class BnStats { Micro, Window };
enum class OptimizerKind { SGD, AdamW };
enum class ScheduleKind { Constant, Cosine };
enum class DeviceChoice { Auto, CPU, CUDA };

/// ember-train-lm's settings (model GPT): the model's shape, the text's cutting, the sample printed at the end.
struct LmOptions {
  int64_t block_size = 64;   ///< T: tokens (bytes) per sequence, the model's context
  int64_t layers = 4;        ///< transformer blocks
  int64_t heads = 4;         ///< attention heads (dim % heads == 0)
  int64_t dim = 128;         ///< embedding width C
  bool pad = false;          ///< one document per sequence, padded with ignore_index (default: packed)
  int64_t sample = 0;        ///< bytes to generate after training (0 = none)
  std::string prompt = "\n";  ///< what the sample continues
  double temperature = 0.8;  ///< sampling temperature (0 = greedy)
};

/// Everything one ember-train (or ember-train-lm) run is configured by. Defaults are the `make train`
/// configuration; lm_defaults() gives `make train-lm`'s.
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
  std::optional<double> lr;            ///< default: 3e-3 (adamw; 1e-3 for the GPT), 0.05 (sgd)
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
  LmOptions lm;             ///< model GPT only
  /// Not a flag: fault injection for programs that embed the loop (the reliability tests), passed to
  /// GradAccumulatorOptions::inject_non_finite.
  std::vector<optim::NonFiniteInjection> inject_non_finite;

  double resolved_lr() const {
    return lr.value_or(optimizer == OptimizerKind::SGD ? 0.05 : model == ModelKind::GPT ? 1e-3 : 3e-3);
  }
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

/// The program a run belongs to: "ember-train-lm" for the GPT, else "ember-train" (log and error prefix).
const char* program_name(const TrainOptions& o);
/// ember-train-lm's defaults: model GPT on Debian's fortunes, AdamW with warm-up and cosine decay, clipping.
TrainOptions lm_defaults();

/// Parses argv (argv[0] is the program name). Throws ember::Error whose message names the offending
/// flag for an unknown flag, a malformed or out-of-range value, or an inconsistent combination.
CliResult parse_cli(int argc, const char* const* argv);
/// Same, from the arguments after the program name.
CliResult parse_cli(const std::vector<std::string>& args);
/// ember-train-lm's command line: the flags of ember-train that apply to a language model (no --model,
/// --norm, --bn-stats) plus the model's shape, the text's cutting and the sample; starts from lm_defaults().
CliResult parse_lm_cli(int argc, const char* const* argv);
CliResult parse_lm_cli(const std::vector<std::string>& args);

/// Cross-flag and range validation (called by parse_cli; callers building options in code may call it).
void validate(const TrainOptions& o);

const char* name(ModelKind m);
const char* name(NormKind n);
const char* name(BnStats b);
const char* name(OptimizerKind o);
const char* name(ScheduleKind s);

}  // namespace ember::train
