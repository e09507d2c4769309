/// @file examples/ember_train/setup.cpp @brief Setting up an ember-train run: device and process group, data, model, optimizer, accumulator, --init/--resume, data parallelism, the first log lines.
#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "data/fashion_mnist.h"
#include "examples/ember_train/lm_data.h"
#include "examples/ember_train/models.h"
#include "examples/ember_train/run.h"
#include "examples/ember_train/train.h"
#include "ops/runtime.h"
#include "ops/ops.h"
#include "optim/adamw.h"
#include "optim/sgd.h"

namespace ember::train {

namespace {

/// The settings a resumed run must share with the saved one (they determine every update).
SafetensorsMetadata config_metadata(const TrainOptions& o, int world_size) {
  auto num = [](double v) {
    std::ostringstream s;
    s << std::setprecision(17) << v;
    return s.str();
  };
  return {{"config.model", name(o.model)},
          {"config.norm", name(o.norm)},
          {"config.bn_stats", name(o.bn_stats)},
          {"config.micro_batch", std::to_string(o.micro_batch)},
          {"config.accum", std::to_string(o.accum)},
          {"config.world_size", std::to_string(world_size)},
          {"config.epochs", std::to_string(o.epochs)},
          {"config.optimizer", name(o.optimizer)},
          {"config.lr", num(o.resolved_lr())},
          {"config.momentum", num(o.resolved_momentum())},
          {"config.weight_decay", num(o.resolved_weight_decay())},
          {"config.schedule", name(o.schedule)},
          {"config.warmup", std::to_string(o.warmup)},
          {"config.clip_norm", num(o.clip_norm)},
          {"config.seed", std::to_string(o.seed)},
          {"config.shuffle", o.shuffle ? "true" : "false"},
          {"config.train_samples", std::to_string(o.limit_train)}};
}

/// The settings added after the first checkpoints were written, recorded only when not at their default,
/// so those checkpoints still resume (they were written with the defaults).
void add_optional_config(SafetensorsMetadata& config, const TrainOptions& o) {
  if (o.dropout > 0) {
    std::ostringstream s;
    s << std::setprecision(17) << o.dropout;
    config["config.dropout"] = s.str();
  }
  if (o.drop_last) config["config.drop_last"] = "true";
  if (o.model == ModelKind::GPT) {
    config["config.block_size"] = std::to_string(o.lm.block_size);
    config["config.layers"] = std::to_string(o.lm.layers);
    config["config.heads"] = std::to_string(o.lm.heads);
    config["config.dim"] = std::to_string(o.lm.dim);
    config["config.packing"] = o.lm.pad ? "pad" : "pack";
  }
}

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainOptions& o, nn::Module& model) {
  if (o.optimizer == OptimizerKind::SGD) {
    optim::SGDOptions so;
    so.lr = o.resolved_lr();
    so.momentum = o.resolved_momentum();
    so.weight_decay = o.resolved_weight_decay();
    return std::make_unique<optim::SGD>(model.parameters(), so);
  }
  optim::AdamWOptions ao;
  ao.lr = o.resolved_lr();
  ao.weight_decay = o.resolved_weight_decay();
  return std::make_unique<optim::AdamW>(model.parameters(), ao);
}

std::unique_ptr<optim::LRScheduler> make_scheduler(const TrainOptions& o, optim::Optimizer& opt, int64_t total_steps) {
  if (o.schedule == ScheduleKind::Cosine)
    return std::make_unique<optim::CosineWithWarmup>(opt, o.warmup, total_steps);
  return std::make_unique<optim::ConstantWithWarmup>(opt, o.warmup);
}

/// Creates the parent directories of each output file the run will write, so `--summary out/x.json` works.
void make_parent_dirs(const TrainOptions& o) {
  for (const std::string* p : {&o.save, &o.metrics, &o.plot, &o.summary}) {
    if (p->empty()) continue;
    const std::filesystem::path parent = std::filesystem::path(*p).parent_path();
    if (parent.empty()) continue;
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    EMBER_CHECK(!ec, "cannot create the directory ", parent.string(), " for ", *p, ": ", ec.message());
  }
}

}  // namespace

void configure_threads(int threads) {
  if (threads <= 0) return;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

DeviceType training_device_type(DeviceChoice c) {
  const int cuda = device_count(DeviceType::CUDA);
  switch (c) {
    case DeviceChoice::CPU: return DeviceType::CPU;
    case DeviceChoice::CUDA:
      EMBER_CHECK(cuda > 0, "--device cuda: no CUDA device available (ember-train was built without CUDA or no "
                            "GPU is present); use --device cpu or auto");
      return DeviceType::CUDA;
    case DeviceChoice::Auto: break;
  }
  return cuda > 0 ? DeviceType::CUDA : DeviceType::CPU;
}

Device training_device(DeviceChoice c, const distributed::ProcessGroup& group) {
  return distributed::device_for_rank(group, training_device_type(c));
}

std::shared_ptr<distributed::ProcessGroup> make_process_group(const TrainOptions& o) {
  return distributed::init_process_group("auto", Device(training_device_type(o.device), 0));
}

TrainingRun::TrainingRun(const TrainOptions& options, std::ostream& out_, std::shared_ptr<distributed::ProcessGroup> g,
                         Clock::time_point start)
    : o(options),
      out(out_),
      group(std::move(g)),
      t0(start),
      rank(group->rank()),
      world_size(group->size()),
      is_root(rank == 0),
      dev(training_device(o.device, *group)),
      progress(out, o.progress && ::isatty(STDOUT_FILENO) && &out == &std::cout, o.log_every,
               loss_term_unit()) {
  if (is_root) make_parent_dirs(o);
  load_data();
  build_training();
  restore();
  start_data_parallel();
}

void TrainingRun::load_data() {
  if (o.model == ModelKind::GPT) {
    LmData text = load_lm_data(o);  // the validation split plays the test set's part
    train_set = std::move(text.train);
    test_set = std::move(text.val);
    unigram_loss = text.unigram_loss;
    data_description = std::move(text.description);
  } else {
    auto train_images = data::load_fashion_mnist(o.data_dir, data::Split::Train);
    auto test_images = data::load_fashion_mnist(o.data_dir, data::Split::Test);
    train_set = o.limit_train > 0 ? train_images->head(o.limit_train) : train_images;
    test_set = o.limit_test > 0 ? test_images->head(o.limit_test) : test_images;
  }
  loader = std::make_unique<data::DataLoader>(
      train_set, data::DataLoaderOptions{.micro_batch = o.micro_batch, .shuffle = o.shuffle, .seed = o.seed,
                                         .rank = rank, .world_size = world_size, .pin_memory = dev.is_cuda(),
                                         .drop_last = o.drop_last});
  micro_per_epoch = loader->steps_per_epoch();
  plan_last_step();
  const int64_t windows_per_epoch = (micro_per_epoch + o.accum - 1) / o.accum;  // the last window may be short
  horizon = o.epochs * windows_per_epoch;
  total_steps = o.steps > 0 ? std::min(o.steps, horizon) : horizon;
}

// BatchNorm in training mode needs more than one value per channel: the MLP's bn layers (BatchNorm1d on
// [N, C]) more than one sample per micro-batch (--norm batch) or per global micro-step (--norm sync); the
// CNN's BatchNorm2d always has H x W > 1 values. SyncBatchNorm also needs every rank in every forward.
// Only the epoch's last global micro-step can be short; what of it is dropped follows from its size, which
// every rank knows, so all ranks agree on the micro-steps and windows.
void TrainingRun::plan_last_step() {
  const bool bn1d = o.model == ModelKind::MLP && o.norm != NormKind::None;
  const int64_t b = o.micro_batch;
  EMBER_CHECK(!bn1d || (o.norm == NormKind::Batch ? b : b * world_size) > 1, "--micro-batch ", b, " x world size ",
              world_size, ": batch norm in training mode needs more than 1 sample per ",
              o.norm == NormKind::Batch ? "micro-batch" : "global micro-step",
              " (--model mlp); use a larger --micro-batch or --norm none");
  const int64_t last = loader->global_batch(micro_per_epoch - 1);
  if (o.norm == NormKind::Sync && world_size > 1 && last <= (world_size - 1) * b)
    dropped_step = "leaves a rank without samples, which --norm sync cannot run";
  else if (bn1d && last == 1)
    dropped_step = "is too small for batch norm in training mode (1 value per channel)";
  else if (bn1d && o.norm == NormKind::Batch && last % b == 1)
    single_sample_rank = static_cast<int>(last / b);
  if (!dropped_step.empty()) {
    dropped_step_samples = last;
    --micro_per_epoch;
  }
  EMBER_CHECK(micro_per_epoch >= 1, "--micro-batch ", b, " x world size ", world_size, ": the ", train_set->size(),
              " training samples leave no micro-step to train on (the last one ", dropped_step, ")");
}

void TrainingRun::build_training() {
  manual_seed(o.seed);
  model = build_model(o, group);
  model->to(dev);
  optimizer = make_optimizer(o, *model);
  EMBER_CHECK(o.warmup <= horizon, "--warmup ", o.warmup, ": more warm-up steps than the ", horizon,
              " optimizer steps of the run's ", o.epochs, " epoch(s)", o.model == ModelKind::GPT ? " (default 20)" : "",
              "; pass a smaller --warmup or more --epochs");
  scheduler = make_scheduler(o, *optimizer, horizon);
  acc = std::make_unique<optim::GradAccumulator>(
      *model, *optimizer,
      optim::GradAccumulatorOptions{
          .accum_steps = o.accum, .clip_norm = o.clip_norm, .inject_non_finite = o.inject_non_finite},
      scheduler.get());
  config = config_metadata(o, world_size);
  add_optional_config(config, o);
  config.merge(environment_config(dev.is_cuda() ? "cuda" : "cpu", omp_get_max_threads()));  // warned about on resume
  effective = distributed::validate_effective_batch(o.micro_batch, o.accum, *group);  // the same on every rank
}

void TrainingRun::restore() {
  if (!o.init.empty()) {
    Checkpoint ck = load_checkpoint(o.init);
    model->load_state_dict(ck.model);
  }
  if (o.resume.empty()) return;
  Checkpoint ck = load_checkpoint(o.resume);
  EMBER_CHECK(ck.has_position, "--resume ", o.resume, ": not an ember-train checkpoint (no run position in "
                               "__metadata__); use --init to start from plain weights");
  for (const std::string& warning : check_same_config(o.resume, ck.config, config))
    if (is_root) out << program_name(o) << ": warning: " << warning << "\n";
  model->load_state_dict(ck.model);
  optimizer->load_state_dict(ck.optim, model->named_parameters());
  pos = ck.position;
  acc->restore_counters(pos.micro_steps, pos.optimizer_steps, pos.skipped_steps);
  scheduler->set_step(pos.optimizer_steps);
  // Dropout draws from each micro-batch's own stream (train_micro_step), so the resumed run needs no
  // generator position; the checkpoint's rng fields are restored only for compatibility.
  default_generator().seed = pos.rng_seed;
  default_generator().offset = pos.rng_offset;
  if (is_root && !o.metrics.empty()) continue_metrics();
}

// A resumed run's --metrics file continues the earlier run's: its rows up to the checkpoint are kept.
void TrainingRun::continue_metrics() {
  const int64_t windows = pos.optimizer_steps + pos.skipped_steps;  // one row each
  earlier_metrics = read_earlier_metrics(o.metrics, windows, loss_term_unit());
  if (earlier_metrics.text.empty()) return;
  out << program_name(o) << ": --metrics " << o.metrics << ": continuing its " << earlier_metrics.kept << " row(s) of the "
      << windows << " window(s) before the checkpoint";
  if (earlier_metrics.dropped > 0) out << "; " << earlier_metrics.dropped << " later row(s) dropped (redone now)";
  out << "\n";
}

// Several ranks: rank 0's weights (and BN buffers) everywhere, gradients in flat buckets reduced once per
// window. Built after the weights are final and before the first step.
void TrainingRun::start_data_parallel() {
  if (world_size == 1) return;
  const auto bucket_bytes = static_cast<int64_t>(o.bucket_mb * (1 << 20));
  dp = std::make_unique<distributed::DataParallel>(group, *model,
                                                   distributed::DataParallelOptions{.bucket_bytes = bucket_bytes});
  acc->set_comm_hook(dp.get());
}

void TrainingRun::report_setup() {
  if (!is_root) return;
  const std::string p = program_name(o);
  if (o.model == ModelKind::GPT)
    out << p << ": gpt layers=" << o.lm.layers << " heads=" << o.lm.heads << " dim=" << o.lm.dim
        << " block_size=" << o.lm.block_size << " optimizer=" << name(o.optimizer) << " lr=" << o.resolved_lr()
        << " on " << dev.str() << "\n"
        << p << ": " << data_description << "\n"
        << p << ": effective batch " << effective.total() << " sequences = micro-batch " << effective.micro
        << " x accum " << effective.accum << " x world size " << effective.world << "; " << train_set->size()
        << " train / " << test_set->size() << " validation sequences, " << total_steps << " optimizer steps\n";
  else
    out << p << ": " << name(o.model) << " norm=" << name(o.norm) << " optimizer=" << name(o.optimizer)
        << " lr=" << o.resolved_lr() << " on " << dev.str() << "\n"
        << p << ": effective batch " << effective.total() << " = micro-batch " << effective.micro << " x accum "
        << effective.accum << " x world size " << effective.world << "; " << train_set->size() << " train / "
        << test_set->size() << " test samples, " << total_steps << " optimizer steps\n";
  if (!dev.is_cuda() && !cpu_blas_core().empty()) out << p << ": CPU GEMMs: " << cpu_blas_core() << "\n";
  if (!dropped_step.empty())
    out << p << ": the last global micro-step of each epoch (" << dropped_step_samples
        << (dropped_step_samples == 1 ? " sample) " : " samples) ") << dropped_step << ": it is dropped\n";
  if (single_sample_rank >= 0)
    out << p << ": the last global micro-step of each epoch gives rank " << single_sample_rank
        << " a 1-sample micro-batch, which batch norm cannot normalize in training mode: that sample is dropped "
           "(--drop-last drops the whole short step)\n";
  if (o.drop_last && train_set->size() % (o.micro_batch * world_size) != 0)
    out << p << ": --drop-last: the last " << train_set->size() % (o.micro_batch * world_size)
        << " samples of each epoch's order are not trained on\n";
  if (world_size > 1)
    out << p << ": " << world_size << " ranks over " << group->backend() << ", " << dp->buckets().size()
        << " gradient bucket(s) all-reduced once per optimizer step\n";
  if (pos.optimizer_steps > 0)
    out << p << ": resumed from " << o.resume << " at epoch " << pos.epoch + 1 << ", step "
        << pos.optimizer_steps << "\n";
  out << std::flush;  // training starts: a pipe (tee, scripts/bench_time_to_accuracy.py) sees the set-up now
}

}  // namespace ember::train
