/// @file examples/ember_train/report.h @brief Run records and their outputs: summary JSON, per-step metrics CSV, loss-curve PNG via gnuplot.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ember::train {

/// One optimizer step (one row of --metrics).
struct StepRecord {
  int64_t step = 0;        ///< optimizer step, 1-based, counted over the whole run (resumes continue it)
  int64_t epoch = 0;       ///< 1-based
  int64_t samples = 0;     ///< samples (GPT: real tokens) in this step's window (all ranks)
  double loss = 0;         ///< mean training loss over the window's samples
  double lr = 0;           ///< learning rate used by this step
  double grad_norm = 0;    ///< global gradient L2 norm before clipping (NaN when not computed)
  bool skipped = false;    ///< non-finite gradients: the update was skipped
  double elapsed_s = 0;    ///< wall time since the start of this process's run
};

/// Test-set evaluation after an epoch (or at the end of a run stopped by --steps).
struct EvalRecord {
  int64_t step = 0;
  int64_t epoch = 0;
  double accuracy = 0;
  double loss = 0;
};

/// What ember-train-lm's --summary adds (docs/transformer.md).
struct LmSummary {
  int64_t tokens = 0;          ///< real (non-ignored) target tokens trained on, all ranks
  double tokens_per_s = 0;     ///< over the training loop
  double val_loss = 0;         ///< mean cross-entropy per real validation token, nats per byte
  double unigram_loss = 0;     ///< the same for the training set's byte frequencies (the baseline to beat)
  int64_t layers = 0, heads = 0, dim = 0, block_size = 0, parameters = 0;
  std::string sample;          ///< --sample's generated text ("" when none)
};

/// What --summary writes.
struct RunSummary {
  std::string device;
  std::string model, norm, bn_stats, optimizer;
  int world_size = 1;
  int64_t micro_batch = 0, accum = 0, effective_batch = 0;
  int64_t micro_steps = 0, optimizer_steps = 0, skipped_steps = 0, allreduce_calls = 0;
  int64_t epochs_completed = 0, train_samples = 0, test_samples = 0;
  double final_loss = 0, test_accuracy = 0, test_loss = 0, samples_per_s = 0, wall_s = 0;
  int64_t peak_bytes = 0;
  int64_t peak_reserved_bytes = 0;  ///< peak bytes the caching allocator took from the device (CPU: from the C library)
  /// CUDA, counted by Ember's runtime over the training loop (evaluation excluded; 0 on the CPU): host
  /// synchronizations and Ember's kernel launches, to check e.g. host_syncs <= optimizer_steps + logging.
  int64_t host_syncs = 0, kernel_launches = 0;
  std::string checkpoint, metrics, plot;  ///< paths written ("" when none)
  std::optional<LmSummary> lm;            ///< ember-train-lm only
};

/// JSON text of the summary (keys as in docs/training.md).
std::string summary_json(const RunSummary& s);
/// CSV text: header + one row per step. `earlier` (a resumed run: EarlierMetrics::text, header included)
/// replaces the header: the rows of `steps` continue it.
/// `unit` names the third column: what StepRecord::samples counts ("samples", or "tokens" for a language model).
std::string metrics_csv(const std::vector<StepRecord>& steps, const std::string& earlier = "",
                        const std::string& unit = "samples");

/// The --metrics file of the run a resume continues, cut at the checkpoint.
struct EarlierMetrics {
  std::string text;     ///< header and the rows of the windows before the checkpoint ("" when no file)
  int64_t kept = 0;     ///< rows kept
  int64_t dropped = 0;  ///< rows after the checkpoint (the resumed run computes those windows again)
};

/// Reads `path` (an ember-train --metrics CSV) for a run resumed after `windows` windows (the checkpoint's
/// optimizer steps + skipped steps: one row each, in order): keeps its header and its first `windows`
/// rows. A missing file gives empty text (the resumed run writes a new one). Throws ember::Error naming
/// the file when it exists but is not an ember-train metrics CSV (another header, a row without a step
/// number), rather than overwrite it.
EarlierMetrics read_earlier_metrics(const std::string& path, int64_t windows, const std::string& unit = "samples");

/// Draws the loss curve (and the test accuracy on a second axis; `eval_loss`: the validation loss on the
/// loss's axis instead) to `png` with gnuplot; `program` titles it. Returns "" on
/// success, else a message saying why no plot was drawn (gnuplot missing or failing). Never throws for a
/// missing gnuplot: the plot is optional.
std::string plot_png(const std::string& png, const std::vector<StepRecord>& steps, const std::vector<EvalRecord>& evals,
                     const std::string& program = "ember-train", bool eval_loss = false);

}  // namespace ember::train
