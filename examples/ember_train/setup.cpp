/// @file examples/ember_train/setup.cpp @brief Setting up an ember-train run: device and process group, data, model, optimizer, accumulator, --init/--resume, data parallelism, the first log lines.
#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "data/fashion_mnist.h"
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
      progress(out, o.progress && ::isatty(STDOUT_FILENO) && &out == &std::cout, o.log_every) {
  if (is_root) make_parent_dirs(o);
  load_data();
  build_training();
  restore();
  start_data_parallel();
}

void TrainingRun::load_data() {
  train_set = data::load_fashion_mnist(o.data_dir, data::Split::Train);
  test_set = data::load_fashion_mnist(o.data_dir, data::Split::Test);
  if (o.limit_train > 0) train_set = train_set->head(o.limit_train);
  if (o.limit_test > 0) test_set = test_set->head(o.limit_test);
  loader = std::make_unique<data::DataLoader>(
      train_set, data::DataLoaderOptions{.micro_batch = o.micro_batch, .shuffle = o.shuffle, .seed = o.seed,
                                         .rank = rank, .world_size = world_size, .pin_memory = dev.is_cuda()});
  micro_per_epoch = loader->steps_per_epoch();
  // SyncBatchNorm needs every rank in every forward; a last global micro-step that leaves a rank
  // without samples is dropped under --norm sync (the other norms let that rank sit it out).
  drop_last = o.norm == NormKind::Sync && world_size > 1 &&
              loader->global_batch(micro_per_epoch - 1) <= (world_size - 1) * o.micro_batch;
  if (drop_last) --micro_per_epoch;
  EMBER_CHECK(micro_per_epoch >= 1, "--micro-batch ", o.micro_batch, " x world size ", world_size, ": the ",
              train_set->size(), " training samples do not give every rank a sample (--norm sync)");
  const int64_t windows_per_epoch = (micro_per_epoch + o.accum - 1) / o.accum;  // the last window may be short
  horizon = o.epochs * windows_per_epoch;
  total_steps = o.steps > 0 ? std::min(o.steps, horizon) : horizon;
}

void TrainingRun::build_training() {
  manual_seed(o.seed);
  model = build_model(o, group);
  model->to(dev);
  optimizer = make_optimizer(o, *model);
  scheduler = make_scheduler(o, *optimizer, horizon);
  acc = std::make_unique<optim::GradAccumulator>(
      *model, *optimizer,
      optim::GradAccumulatorOptions{
          .accum_steps = o.accum, .clip_norm = o.clip_norm, .inject_non_finite = o.inject_non_finite},
      scheduler.get());
  config = config_metadata(o, world_size);
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
  check_same_config(o.resume, ck.config, config);
  model->load_state_dict(ck.model);
  optimizer->load_state_dict(ck.optim, model->named_parameters());
  pos = ck.position;
  acc->restore_counters(pos.micro_steps, pos.optimizer_steps, pos.skipped_steps);
  scheduler->set_step(pos.optimizer_steps);
  default_generator().seed = pos.rng_seed;
  default_generator().offset = pos.rng_offset;
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
  out << "ember-train: " << name(o.model) << " norm=" << name(o.norm) << " optimizer=" << name(o.optimizer)
      << " lr=" << o.resolved_lr() << " on " << dev.str() << "\n"
      << "ember-train: effective batch " << effective.total() << " = micro-batch " << effective.micro << " x accum "
      << effective.accum << " x world size " << effective.world << "; " << train_set->size() << " train / "
      << test_set->size() << " test samples, " << total_steps << " optimizer steps\n";
  if (drop_last)
    out << "ember-train: --norm sync: the last global micro-step of each epoch ("
        << loader->global_batch(micro_per_epoch) << " samples) leaves a rank without samples and is dropped\n";
  if (world_size > 1)
    out << "ember-train: " << world_size << " ranks over " << group->backend() << ", " << dp->buckets().size()
        << " gradient bucket(s) all-reduced once per optimizer step\n";
  if (pos.optimizer_steps > 0)
    out << "ember-train: resumed from " << o.resume << " at epoch " << pos.epoch + 1 << ", step "
        << pos.optimizer_steps << "\n";
}

}  // namespace ember::train
