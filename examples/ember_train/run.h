/// @file examples/ember_train/run.h @brief TrainingRun: the state of one ember-train run and its named steps (setup, the accumulation loop, a window's end, evaluation, checkpoints, outputs).
#pragma once
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/safetensors.h"
#include "data/dataloader.h"
#include "data/dataset.h"
#include "distributed/data_parallel.h"
#include "examples/ember_train/checkpoint.h"
#include "examples/ember_train/cli.h"
#include "examples/ember_train/progress.h"
#include "examples/ember_train/report.h"
#include "nn/module.h"
#include "optim/grad_accumulator.h"
#include "optim/lr_scheduler.h"
#include "optim/optimizer.h"

namespace ember::train {

using Clock = std::chrono::steady_clock;

/// OpenMP and OpenBLAS thread counts (--threads; 0 keeps their defaults).
void configure_threads(int threads);

/// One ember-train (or ember-train-lm) run. run_training (train.cpp) is its outline:
///
///   TrainingRun run(o, out, group, t0);  // setup.cpp: data, model, optimizer, accumulator, --init/--resume, DP
///   run.report_setup();                  // the first lines of the log
///   run.train();                         // the accumulation loop (README.md's loop plus logging and checkpoints)
///   return run.finish();                 // last evaluation, summary, files
///
/// The members are public and plain: the pieces share them the way one long function shares its locals.
struct TrainingRun {
  TrainingRun(const TrainOptions& options, std::ostream& out, std::shared_ptr<distributed::ProcessGroup> group,
              Clock::time_point t0);

  // ---- setup (setup.cpp); the constructor runs the first four in this order
  void load_data();       ///< datasets, this rank's loader, micro-steps per epoch, optimizer steps in all
  void build_training();  ///< model, optimizer, schedule, accumulator; checks the effective batch on every rank
  void restore();         ///< --init weights, or --resume weights, optimizer state, counters and RNG
  void continue_metrics();  ///< --resume with --metrics: keep the earlier file's rows up to the checkpoint
  void start_data_parallel();  ///< several ranks: rank 0's weights everywhere, bucketed gradient all-reduce
  void report_setup();    ///< rank 0 prints the configuration (the first lines of the log)
  /// What of the epoch's short last global micro-step is dropped (load_data), from the global step
  /// structure, so every rank decides the same.
  void plan_last_step();

  // ---- training (train.cpp)
  void train();                        ///< the epochs of micro-batches
  /// Global micro-step k of `epoch`: this rank's micro-batch (from its own random stream) into the window.
  bool train_micro_step(int64_t epoch, int64_t k);
  void start_counters();               ///< peak memory, runtime counters, clock and progress at the loop's start
  /// What the accumulator counts: "samples" (images) or "tokens" (the GPT's real tokens).
  const char* loss_term_unit() const { return o.model == ModelKind::GPT ? "tokens" : "samples"; }
  bool done() const { return acc->optimizer_steps() >= total_steps; }  ///< the run's last optimizer step is done
  void finish_window(int64_t epoch);   ///< after each optimizer step: record it, show progress, maybe checkpoint
  double sum_window_over_ranks(double loss_sum);  ///< the window's loss sum and samples over all ranks
  void evaluate_epoch(int64_t epoch);  ///< rank 0 at the end of an epoch: test accuracy and loss, logged
  /// Evaluates on the test set and appends the record (1-based `epoch`); its host syncs and kernel launches are
  /// kept out of the loop's counts.
  const EvalRecord& evaluate(int64_t epoch);
  void save(const std::string& path);  ///< a checkpoint of the model, optimizer state and run position

  // ---- outputs (train.cpp)
  RunSummary finish();          ///< last evaluation if needed, the summary; rank 0 writes the files and prints
  RunSummary summary() const;   ///< the counters and results of the loop
  LmSummary lm_summary(double train_s) const;  ///< the GPT's additions (tokens, losses, its shape)
  void write_outputs(RunSummary& s);  ///< rank 0: --save, --metrics, --plot, --summary; records the paths
  void report_done(const RunSummary& s) const;

  // ---- given
  const TrainOptions& o;
  std::ostream& out;
  std::shared_ptr<distributed::ProcessGroup> group;
  const Clock::time_point t0;  ///< start of the run (StepRecord::elapsed_s, wall_s)
  const int rank, world_size;
  const bool is_root;  ///< rank 0 evaluates, prints and writes the files
  const Device dev;

  // ---- data (load_data): Fashion-MNIST images, or the GPT's byte sequences (test_set: the validation split)
  std::shared_ptr<data::Dataset> train_set, test_set;
  double unigram_loss = NAN;    ///< GPT: the validation loss of the training set's byte frequencies (nats/byte)
  std::string data_description; ///< GPT: the corpus and its split, for the log
  std::unique_ptr<data::DataLoader> loader;
  int64_t micro_per_epoch = 0;  ///< global micro-steps per epoch this run trains on
  /// Why the epoch's short last global micro-step is dropped (plan_last_step), empty when it trains.
  std::string dropped_step;
  int64_t dropped_step_samples = 0;  ///< its samples (all ranks)
  /// The rank whose 1-sample share of the last global micro-step is dropped (BatchNorm1d in training cannot
  /// normalize it; the rank joins that step's window with an empty micro-batch), or -1.
  int single_sample_rank = -1;
  int64_t horizon = 0;          ///< optimizer steps of all epochs (the cosine schedule's length)
  int64_t total_steps = 0;      ///< optimizer steps this run ends at (--steps or horizon)

  // ---- model and its training (build_training, restore, start_data_parallel)
  std::shared_ptr<nn::Module> model;
  std::unique_ptr<optim::Optimizer> optimizer;
  std::unique_ptr<optim::LRScheduler> scheduler;
  std::unique_ptr<optim::GradAccumulator> acc;
  distributed::EffectiveBatch effective;  ///< micro x accum x world, the same on every rank
  SafetensorsMetadata config;         ///< the settings a resume must match, and device and threads (warned about)
  std::unique_ptr<distributed::DataParallel> dp;  ///< several ranks only
  RunPosition pos;                    ///< epoch and micro-step in progress (restored by --resume)

  // ---- the loop's records
  Progress progress;
  Clock::time_point train_t0;            ///< start of the loop (samples per second)
  RuntimeStats loop_start, in_eval;  ///< runtime counters at the loop's start, and spent evaluating
  // Samples for the image models, real (non-ignored) tokens for the GPT: the loss terms the accumulator counts.
  int64_t window_samples = 0;            ///< loss terms of the window in progress (this rank; all ranks once ended)
  int64_t trained_samples = 0;           ///< loss terms trained on so far (all ranks at window ends)
  double final_loss = NAN;               ///< mean loss of the last window
  std::vector<StepRecord> steps;
  EarlierMetrics earlier_metrics;        ///< --resume: the --metrics file's rows up to the checkpoint (rank 0)
  std::vector<EvalRecord> evals;
};

}  // namespace ember::train
