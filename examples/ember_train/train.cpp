/// @file examples/ember_train/train.cpp @brief The ember-train run: its outline, the micro-batch accumulation loop, a window's end, evaluation, checkpoints, outputs (setup.cpp sets it up).
#include "examples/ember_train/train.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "core/allocator.h"
#include "core/generator.h"
#include "core/safetensors.h"
#include "examples/ember_train/lm_data.h"
#include "examples/ember_train/models.h"
#include "examples/ember_train/run.h"
#include "examples/gpt/gpt.h"
#include "ops/runtime.h"
#include "nn/functional.h"
#include "ops/ops.h"

namespace ember::train {

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string fmt_acc(double a) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(4) << a;
  return s.str();
}

struct TestMetrics {
  double accuracy = 0, loss = 0;
};

/// Test-set (GPT: validation-set) accuracy and mean loss per loss term (sample or real token) in evaluation
/// mode (running BN statistics, no dropout), without autograd.
TestMetrics test_metrics(const TrainOptions& o, nn::Module& model, const data::Dataset& test, Device dev) {
  model.eval();
  const int64_t batch = o.model == ModelKind::GPT ? 16 : 500;  // a GPT batch holds 16 x T x 256 logits
  EvalTotals totals;
  std::vector<int64_t> idx;
  for (int64_t begin = 0; begin < test.size(); begin += batch) {
    idx.clear();
    for (int64_t i = begin; i < std::min(test.size(), begin + batch); ++i) idx.push_back(i);
    data::Batch b = test.get_batch(idx);
    add_eval_batch(model, b.x.to(dev), b.y.to(dev), totals);
  }
  model.train();
  const auto n = static_cast<double>(std::max<int64_t>(totals.count, 1));
  return {static_cast<double>(totals.correct) / n, totals.loss_sum / n};
}

}  // namespace

RunSummary run_training(const TrainOptions& o, std::ostream& out, std::shared_ptr<distributed::ProcessGroup> group) {
  validate(o);
  const auto t0 = Clock::now();
  configure_threads(o.threads);
  if (!group) group = make_process_group(o);
  TrainingRun run(o, out, std::move(group), t0);  // data, model, optimizer, accumulator, --init/--resume, DP
  run.report_setup();
  run.train();
  return run.finish();
}

// ---- the loop -----------------------------------------------------------------------------------------
// README.md's accumulation loop, plus: the loader's shard of each global micro-step, an empty share of the
// short last one (several ranks), a random stream per micro-batch, a resumed run starting mid-epoch,
// --steps, and per-window records.
void TrainingRun::train() {
  start_counters();
  for (int64_t epoch = pos.epoch; epoch < o.epochs && !done(); ++epoch) {
    loader->set_epoch(epoch);
    if (epoch != pos.epoch) {  // a resumed run continues its saved epoch at its saved micro-step
      pos.epoch = epoch;
      pos.micro_step = 0;
    }
    for (int64_t k = pos.micro_step; k < micro_per_epoch && !done(); ++k) {
      pos.micro_step = k + 1;
      if (train_micro_step(epoch, k)) finish_window(epoch);
    }
    if (acc->flush()) finish_window(epoch);  // the epoch's short last window
    if (pos.micro_step == micro_per_epoch) evaluate_epoch(epoch);
  }
  progress.finish();
}

bool TrainingRun::train_micro_step(int64_t epoch, int64_t k) {
  // This rank's share of the epoch's short last global micro-step is empty, or the 1 sample that batch
  // norm cannot normalize (plan_last_step): the rank still joins the window's all-reduce.
  if (k == micro_per_epoch - 1 && rank == single_sample_rank) return acc->empty_micro_batch();
  data::Batch b = loader->batch(k);
  if (b.size() == 0) return acc->empty_micro_batch();
  // Dropout's masks come from this micro-batch's own stream: a function of which micro-batch of the epoch
  // it is (the same samples whatever the world size), not of the rank or of where a resumed run started.
  default_generator() = micro_batch_generator(o.seed, epoch, loader->global_index(k));
  // Pinned batches (CUDA): queued without waiting; the loader never writes into a batch it handed out.
  Tensor x = b.x.to(dev, /*non_blocking=*/true), y = b.y.to(dev, /*non_blocking=*/true);
  // The image models' mean over the samples, or the GPT's sum over the real tokens; either way the grads
  // accumulate the SUM over the loss terms, and the window's end divides by their global count.
  const LossTerms l = micro_batch_loss(o, *model, x, y, b.y);
  window_samples += l.count;
  trained_samples += l.count;
  return l.is_sum ? acc->backward_sum(l.loss, l.count) : acc->backward(l.loss, l.count);  // one step per --accum
}

void TrainingRun::start_counters() {
  reset_peak_stats(dev);
  // The loop's own synchronizations and launches (evaluation's are subtracted, see evaluate).
  loop_start = runtime_stats(dev.type);
  train_t0 = Clock::now();
  progress.start(total_steps, pos.optimizer_steps);
}

// ---- one window's end ---------------------------------------------------------------------------------
void TrainingRun::finish_window(int64_t epoch) {
  double loss_sum = acc->last_loss_sum();  // read with the window's outcome: no host sync per micro-batch
  if (world_size > 1) loss_sum = sum_window_over_ranks(loss_sum);
  StepRecord r;
  r.step = acc->optimizer_steps();
  r.epoch = epoch + 1;
  r.samples = window_samples;
  r.loss = loss_sum / static_cast<double>(std::max<int64_t>(window_samples, 1));
  r.lr = acc->last_lr();
  r.grad_norm = acc->last_grad_norm();
  r.skipped = acc->last_step_skipped();
  r.elapsed_s = seconds_since(t0);
  steps.push_back(r);
  final_loss = r.loss;
  window_samples = 0;
  const double sps = static_cast<double>(trained_samples) / std::max(seconds_since(train_t0), 1e-9);
  if (is_root) progress.step(r.epoch, o.epochs, r.step, r.loss, sps);
  if (o.checkpoint_every > 0 && r.step % o.checkpoint_every == 0 && is_root) {
    // The metrics first: a run killed after this step resumes from a checkpoint its rows reach.
    if (!o.metrics.empty())
      write_file_atomically(o.metrics, metrics_csv(steps, earlier_metrics.text, loss_term_unit()));
    save(o.save);
  }
}

// The window's loss and samples over all ranks (16 bytes, once per step); makes window_samples and
// trained_samples global.
double TrainingRun::sum_window_over_ranks(double loss_sum) {
  const bool on_cpu = group->supports(DeviceType::CPU);
  Tensor t = from_vector(std::vector<double>{loss_sum, static_cast<double>(window_samples)}, {2},
                         TensorOptions{}.set_dtype(on_cpu ? DType::f64 : DType::f32)
                             .set_device(on_cpu ? Device::cpu() : dev));
  group->all_reduce(t);
  const auto v = t.to(Device::cpu()).to_vector<double>();
  trained_samples += static_cast<int64_t>(v[1]) - window_samples;
  window_samples = static_cast<int64_t>(v[1]);
  return v[0];
}

// ---- evaluation ---------------------------------------------------------------------------------------
void TrainingRun::evaluate_epoch(int64_t epoch) {
  if (!is_root) return;  // rank 0 evaluates; the others go on
  const EvalRecord& ev = evaluate(epoch + 1);
  const std::string head = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs) + ": ";
  if (o.model == ModelKind::GPT)
    progress.message(head + "validation loss " + fmt_acc(ev.loss) + " nats/byte (unigram " + fmt_acc(unigram_loss) +
                     "), next-byte accuracy " + fmt_acc(ev.accuracy));
  else
    progress.message(head + "test accuracy " + fmt_acc(ev.accuracy) + ", test loss " + fmt_acc(ev.loss));
}

const EvalRecord& TrainingRun::evaluate(int64_t epoch) {
  const RuntimeStats before = runtime_stats(dev.type);
  const TestMetrics m = test_metrics(o, *model, *test_set, dev);
  const RuntimeStats after = runtime_stats(dev.type);
  in_eval.host_syncs += after.host_syncs - before.host_syncs;
  in_eval.kernel_launches += after.kernel_launches - before.kernel_launches;
  evals.push_back({acc->optimizer_steps(), epoch, m.accuracy, m.loss});
  return evals.back();
}

// ---- checkpoints --------------------------------------------------------------------------------------
void TrainingRun::save(const std::string& path) {
  pos.micro_steps = acc->micro_steps();
  pos.optimizer_steps = acc->optimizer_steps();
  pos.skipped_steps = acc->skipped_steps();
  pos.rng_seed = default_generator().seed;
  pos.rng_offset = default_generator().offset;
  // Optimizer state tensors named by parameter ("fc1.weight.exp_avg").
  save_checkpoint(path, model->state_dict(), optimizer->state_dict(model->named_parameters()), pos, config);
}

// ---- outputs ------------------------------------------------------------------------------------------
RunSummary TrainingRun::finish() {
  const bool evaluated = !evals.empty() && evals.back().step == acc->optimizer_steps();
  if (is_root && !evaluated) evaluate(pos.epoch + 1);  // stopped by --steps (or resumed with no step left)
  synchronize(dev);
  RunSummary s = summary();
  if (!is_root) return s;
  write_outputs(s);
  report_done(s);
  return s;
}

RunSummary TrainingRun::summary() const {
  const double train_s = seconds_since(train_t0);
  const RuntimeStats loop_end = runtime_stats(dev.type);
  RunSummary s;
  s.device = dev.str();
  s.model = name(o.model);
  s.norm = name(o.norm);
  s.bn_stats = name(o.bn_stats);
  s.optimizer = name(o.optimizer);
  s.world_size = world_size;
  s.micro_batch = effective.micro;
  s.accum = effective.accum;
  s.effective_batch = effective.total();
  s.micro_steps = acc->micro_steps();
  s.optimizer_steps = acc->optimizer_steps();
  s.skipped_steps = acc->skipped_steps();
  s.allreduce_calls = dp ? dp->stats().allreduce_calls : 0;
  s.epochs_completed = pos.epoch + (pos.micro_step == micro_per_epoch ? 1 : 0);
  s.train_samples = train_set->size();
  s.test_samples = test_set->size();
  s.final_loss = final_loss;
  if (!evals.empty()) {  // rank 0 only
    s.test_accuracy = evals.back().accuracy;
    s.test_loss = evals.back().loss;
  }
  s.samples_per_s = static_cast<double>(trained_samples) / std::max(train_s, 1e-9);
  if (o.model == ModelKind::GPT) s.lm = lm_summary(train_s);
  s.peak_bytes = allocator_stats(dev).peak_bytes;
  s.peak_reserved_bytes = allocator_stats(dev).peak_reserved_bytes;
  s.host_syncs = loop_end.host_syncs - loop_start.host_syncs - in_eval.host_syncs;
  s.kernel_launches = loop_end.kernel_launches - loop_start.kernel_launches - in_eval.kernel_launches;
  return s;
}

LmSummary TrainingRun::lm_summary(double train_s) const {
  LmSummary lm;
  lm.tokens = trained_samples;  // the GPT's loss terms are its real tokens
  lm.tokens_per_s = static_cast<double>(trained_samples) / std::max(train_s, 1e-9);
  lm.val_loss = evals.empty() ? NAN : evals.back().loss;
  lm.unigram_loss = unigram_loss;
  lm.layers = o.lm.layers;
  lm.heads = o.lm.heads;
  lm.dim = o.lm.dim;
  lm.block_size = o.lm.block_size;
  lm.parameters = dynamic_cast<const gpt::GPT&>(*model).num_parameters();
  return lm;
}

void TrainingRun::write_outputs(RunSummary& s) {
  if (s.lm && o.lm.sample > 0) s.lm->sample = generate_sample(*model, o);
  if (!o.save.empty()) {
    save(o.save);
    s.checkpoint = o.save;
  }
  if (!o.metrics.empty()) {
    // A resume continues the file.
    write_file_atomically(o.metrics, metrics_csv(steps, earlier_metrics.text, loss_term_unit()));
    s.metrics = o.metrics;
  }
  if (!o.plot.empty()) {
    const std::string why = plot_png(o.plot, steps, evals, program_name(o), o.model == ModelKind::GPT);
    if (why.empty())
      s.plot = o.plot;
    else
      out << program_name(o) << ": plot: " << why << "\n";
  }
  s.wall_s = seconds_since(t0);
  if (!o.summary.empty()) write_file_atomically(o.summary, summary_json(s));
}

void TrainingRun::report_done(const RunSummary& s) const {
  const std::string p = program_name(o);
  if (s.lm) {
    out << p << ": done: validation loss " << fmt_acc(s.lm->val_loss) << " nats/byte (unigram baseline "
        << fmt_acc(s.lm->unigram_loss) << ") after " << s.optimizer_steps << " optimizer steps (" << s.micro_steps
        << " micro-batches, " << s.lm->tokens << " tokens), final loss " << fmt_acc(s.final_loss) << ", " << std::fixed
        << std::setprecision(0) << s.lm->tokens_per_s << " tokens/s, wall " << std::setprecision(1) << s.wall_s
        << " s\n";
    if (!s.lm->sample.empty()) out << p << ": sample:\n" << s.lm->sample << "\n";
  } else {
    out << p << ": done: test accuracy " << fmt_acc(s.test_accuracy) << " after " << s.optimizer_steps
        << " optimizer steps (" << s.micro_steps << " micro-batches), final loss " << fmt_acc(s.final_loss) << ", "
        << std::fixed << std::setprecision(0) << s.samples_per_s << " samples/s, wall " << std::setprecision(1)
        << s.wall_s << " s\n";
  }
  if (!o.summary.empty()) out << p << ": summary: " << o.summary << "\n";
  if (!s.metrics.empty()) out << p << ": metrics: " << s.metrics << "\n";
  if (!s.plot.empty()) out << p << ": plot: " << s.plot << "\n";
  if (!s.checkpoint.empty()) out << p << ": checkpoint: " << s.checkpoint << "\n";
}

}  // namespace ember::train
