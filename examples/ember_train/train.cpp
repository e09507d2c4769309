/// @file examples/ember_train/train.cpp @brief The ember-train run: setup, the micro-batch accumulation loop, evaluation, checkpoints, outputs.
#include "examples/ember_train/train.h"

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "core/allocator.h"
#include "ops/ops.h"
#include "core/safetensors.h"
#include "data/dataloader.h"
#include "data/fashion_mnist.h"
#include "distributed/data_parallel.h"
#include "examples/ember_train/checkpoint.h"
#include "examples/ember_train/models.h"
#include "examples/ember_train/progress.h"
#include "kernels/runtime_stats.h"
#include "kernels/transfer.h"
#include "nn/functional.h"
#include "optim/adamw.h"
#include "optim/grad_accumulator.h"
#include "optim/lr_scheduler.h"
#include "optim/sgd.h"

namespace ember::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void configure_threads(int threads) {
  if (threads <= 0) return;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

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

struct EvalResult {
  double accuracy = 0, loss = 0;
};

/// Test-set accuracy and mean loss in evaluation mode (running BN statistics), without autograd.
EvalResult evaluate(nn::Module& model, const data::Dataset& test, Device dev) {
  NoGradGuard no_grad;
  model.eval();
  constexpr int64_t kBatch = 500;
  int64_t correct = 0;
  double loss_sum = 0;
  std::vector<int64_t> idx;
  for (int64_t begin = 0; begin < test.size(); begin += kBatch) {
    idx.clear();
    for (int64_t i = begin; i < std::min(test.size(), begin + kBatch); ++i) idx.push_back(i);
    data::Batch b = test.get_batch(idx);
    Tensor x = b.x.to(dev), y = b.y.to(dev);
    Tensor logits = model.forward(x);
    loss_sum += nn::functional::cross_entropy(logits, y).item() * static_cast<double>(b.size());
    const auto pred = argmax(logits, 1).to_vector<int64_t>();
    const auto truth = b.y.to_vector<int64_t>();
    for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == truth[i];
  }
  model.train();
  const auto n = static_cast<double>(test.size());
  return {static_cast<double>(correct) / n, loss_sum / n};
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

/// Optimizer state tensors named by parameter ("fc1.weight.exp_avg"), for the checkpoint.
NamedTensors optimizer_state(const optim::Optimizer& opt, const nn::Module& model) {
  return opt.state_dict(model.named_parameters());
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

std::string fmt_acc(double a) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(4) << a;
  return s.str();
}

}  // namespace

DeviceType training_device_type(DeviceChoice c) {
  const int cuda = kernels::device_count(DeviceType::CUDA);
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

RunSummary run_training(const TrainOptions& o, std::ostream& out, std::shared_ptr<distributed::ProcessGroup> group) {
  validate(o);
  const auto t0 = Clock::now();
  configure_threads(o.threads);
  if (!group) group = make_process_group(o);
  const int rank = group->rank(), world_size = group->size();
  const Device dev = training_device(o.device, *group);
  const bool is_root = rank == 0;
  if (is_root) make_parent_dirs(o);

  // ---- data
  auto train_set = data::load_fashion_mnist(o.data_dir, data::Split::Train);
  auto test_set = data::load_fashion_mnist(o.data_dir, data::Split::Test);
  if (o.limit_train > 0) train_set = train_set->head(o.limit_train);
  if (o.limit_test > 0) test_set = test_set->head(o.limit_test);
  data::DataLoader loader(train_set, {.micro_batch = o.micro_batch, .shuffle = o.shuffle, .seed = o.seed,
                                      .rank = rank, .world_size = world_size, .pin_memory = dev.is_cuda()});
  int64_t micro_per_epoch = loader.steps_per_epoch();
  // SyncBatchNorm needs every rank in every forward; a last global micro-step that leaves a rank
  // without samples is dropped under --norm sync (the other norms let that rank sit it out).
  const bool drop_last = o.norm == NormKind::Sync && world_size > 1 &&
                         loader.global_batch(micro_per_epoch - 1) <= (world_size - 1) * o.micro_batch;
  if (drop_last) --micro_per_epoch;
  EMBER_CHECK(micro_per_epoch >= 1, "--micro-batch ", o.micro_batch, " x world size ", world_size, ": the ",
              train_set->size(), " training samples do not give every rank a sample (--norm sync)");
  const int64_t windows_per_epoch = (micro_per_epoch + o.accum - 1) / o.accum;  // the last window may be short
  const int64_t horizon = o.epochs * windows_per_epoch;
  const int64_t total_steps = o.steps > 0 ? std::min(o.steps, horizon) : horizon;

  // ---- model, optimizer, accumulator
  manual_seed(o.seed);
  std::shared_ptr<nn::Module> model = build_model(o, group);
  model->to(dev);
  auto optimizer = make_optimizer(o, *model);
  auto scheduler = make_scheduler(o, *optimizer, horizon);
  optim::GradAccumulator acc(*model, *optimizer, {.accum_steps = o.accum, .clip_norm = o.clip_norm}, scheduler.get());
  const SafetensorsMetadata config = config_metadata(o, world_size);
  distributed::validate_effective_batch(o.micro_batch, o.accum, *group);  // the same on every rank

  RunPosition pos;
  if (!o.init.empty()) {
    Checkpoint ck = load_checkpoint(o.init);
    model->load_state_dict(ck.model);
  }
  if (!o.resume.empty()) {
    Checkpoint ck = load_checkpoint(o.resume);
    EMBER_CHECK(ck.has_position, "--resume ", o.resume, ": not an ember-train checkpoint (no run position in "
                                 "__metadata__); use --init to start from plain weights");
    check_same_config(o.resume, ck.config, config);
    model->load_state_dict(ck.model);
    optimizer->load_state_dict(ck.optim, model->named_parameters());
    pos = ck.position;
    acc.restore_counters(pos.micro_steps, pos.optimizer_steps, pos.skipped_steps);
    scheduler->set_step(pos.optimizer_steps);
    default_generator().seed = pos.rng_seed;
    default_generator().offset = pos.rng_offset;
  }
  // Several ranks: rank 0's weights (and BN buffers) everywhere, gradients in flat buckets reduced
  // once per window. Built after the weights are final and before the first step.
  std::unique_ptr<distributed::DataParallel> dp;
  if (world_size > 1) {
    const auto bucket_bytes = static_cast<int64_t>(o.bucket_mb * (1 << 20));
    dp = std::make_unique<distributed::DataParallel>(group, *model,
                                                     distributed::DataParallelOptions{.bucket_bytes = bucket_bytes});
    acc.set_comm_hook(dp.get());
  }

  auto save = [&](const std::string& path) {
    pos.micro_steps = acc.micro_steps();
    pos.optimizer_steps = acc.optimizer_steps();
    pos.skipped_steps = acc.skipped_steps();
    pos.rng_seed = default_generator().seed;
    pos.rng_offset = default_generator().offset;
    save_checkpoint(path, model->state_dict(), optimizer_state(*optimizer, *model), pos, config);
  };

  // ---- report the setup
  const int64_t effective = o.micro_batch * o.accum * world_size;
  const bool live = o.progress && ::isatty(STDOUT_FILENO) && &out == &std::cout;
  Progress progress(out, live, o.log_every);
  if (is_root) {
    out << "ember-train: " << name(o.model) << " norm=" << name(o.norm) << " optimizer=" << name(o.optimizer)
        << " lr=" << o.resolved_lr() << " on " << dev.str() << "\n"
        << "ember-train: effective batch " << effective << " = micro-batch " << o.micro_batch << " x accum " << o.accum
        << " x world size " << world_size << "; " << train_set->size() << " train / " << test_set->size()
        << " test samples, " << total_steps << " optimizer steps\n";
    if (drop_last)
      out << "ember-train: --norm sync: the last global micro-step of each epoch (" << loader.global_batch(micro_per_epoch)
          << " samples) leaves a rank without samples and is dropped\n";
    if (world_size > 1)
      out << "ember-train: " << world_size << " ranks over " << group->backend() << ", "
          << dp->buckets().size() << " gradient bucket(s) all-reduced once per optimizer step\n";
    if (pos.optimizer_steps > 0)
      out << "ember-train: resumed from " << o.resume << " at epoch " << pos.epoch + 1 << ", step "
          << pos.optimizer_steps << "\n";
  }
  reset_peak_stats(dev);
  // The loop's own synchronizations and launches (evaluation's are subtracted below).
  const RuntimeStats loop_start = kernels::runtime_stats(dev.type);
  RuntimeStats in_eval;
  auto evaluate_counted = [&](nn::Module& m, const data::Dataset& test) {
    const RuntimeStats before = kernels::runtime_stats(dev.type);
    const EvalResult ev = evaluate(m, test, dev);
    const RuntimeStats after = kernels::runtime_stats(dev.type);
    in_eval.host_syncs += after.host_syncs - before.host_syncs;
    in_eval.kernel_launches += after.kernel_launches - before.kernel_launches;
    return ev;
  };

  // ---- the loop
  std::vector<StepRecord> steps;
  std::vector<EvalRecord> evals;
  double window_loss = 0;
  int64_t window_samples = 0, trained_samples = 0, last_eval_step = -1;
  double final_loss = NAN;
  const auto train_t0 = Clock::now();
  progress.start(total_steps, pos.optimizer_steps);
  bool stop = acc.optimizer_steps() >= total_steps;

  auto finish_window = [&](int64_t epoch) {
    window_loss = acc.last_loss_sum();  // read with the window's outcome: no host sync per micro-batch
    if (world_size > 1) {  // the window's loss and samples over all ranks (16 bytes, once per step)
      Tensor t = from_vector(std::vector<double>{window_loss, static_cast<double>(window_samples)}, {2},
                             TensorOptions{}.set_dtype(group->supports(DeviceType::CPU) ? DType::f64 : DType::f32)
                                 .set_device(group->supports(DeviceType::CPU) ? Device::cpu() : dev));
      group->all_reduce(t);
      const auto v = t.to(Device::cpu()).to_vector<double>();
      trained_samples += static_cast<int64_t>(v[1]) - window_samples;
      window_loss = v[0];
      window_samples = static_cast<int64_t>(v[1]);
    }
    StepRecord r;
    r.step = acc.optimizer_steps();
    r.epoch = epoch + 1;
    r.samples = window_samples;
    r.loss = window_loss / static_cast<double>(std::max<int64_t>(window_samples, 1));
    r.lr = acc.last_lr();
    r.grad_norm = acc.last_grad_norm();
    r.skipped = acc.last_step_skipped();
    r.elapsed_s = seconds_since(t0);
    steps.push_back(r);
    final_loss = r.loss;
    window_loss = 0;
    window_samples = 0;
    const double sps = static_cast<double>(trained_samples) / std::max(seconds_since(train_t0), 1e-9);
    if (is_root) progress.step(r.epoch, o.epochs, r.step, r.loss, sps);
    if (o.checkpoint_every > 0 && r.step % o.checkpoint_every == 0 && is_root) save(o.save);
    stop = r.step >= total_steps;
  };

  for (int64_t epoch = pos.epoch; epoch < o.epochs && !stop; ++epoch) {
    loader.set_epoch(epoch);
    if (epoch != pos.epoch) {
      pos.epoch = epoch;
      pos.micro_step = 0;
    }
    for (int64_t k = pos.micro_step; k < micro_per_epoch && !stop; ++k) {
      data::Batch b = loader.batch(k);
      const int64_t n = b.size();
      bool stepped = false;
      if (n == 0) {  // this rank's share of the epoch's short last global micro-step is empty
        stepped = acc.empty_micro_batch();
      } else {
        // Pinned batches (CUDA): queued without waiting; the loader never writes into a batch it handed out.
        Tensor x = b.x.to(dev, /*non_blocking=*/true), y = b.y.to(dev, /*non_blocking=*/true);
        Tensor loss = nn::functional::cross_entropy(model->forward(x), y);
        window_samples += n;
        trained_samples += n;
        stepped = acc.backward(loss, n);
      }
      pos.micro_step = k + 1;
      if (!stepped && k + 1 == micro_per_epoch) acc.flush();  // the epoch's short last window
      if (stepped || k + 1 == micro_per_epoch) finish_window(epoch);
    }
    if (pos.micro_step == micro_per_epoch && is_root) {  // rank 0 evaluates; the others go on
      const EvalResult ev = evaluate_counted(*model, *test_set);
      evals.push_back({acc.optimizer_steps(), epoch + 1, ev.accuracy, ev.loss});
      last_eval_step = acc.optimizer_steps();
      progress.message("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs) + ": test accuracy " +
                         fmt_acc(ev.accuracy) + ", test loss " + fmt_acc(ev.loss));
    }
  }
  progress.finish();
  if (is_root && (last_eval_step != acc.optimizer_steps() || evals.empty())) {
    const EvalResult ev = evaluate_counted(*model, *test_set);
    evals.push_back({acc.optimizer_steps(), pos.epoch + 1, ev.accuracy, ev.loss});
  }
  kernels::synchronize(dev);
  const double train_s = seconds_since(train_t0);
  const RuntimeStats loop_end = kernels::runtime_stats(dev.type);

  // ---- outputs
  RunSummary s;
  s.device = dev.str();
  s.model = name(o.model);
  s.norm = name(o.norm);
  s.bn_stats = name(o.bn_stats);
  s.optimizer = name(o.optimizer);
  s.world_size = world_size;
  s.micro_batch = o.micro_batch;
  s.accum = o.accum;
  s.effective_batch = effective;
  s.micro_steps = acc.micro_steps();
  s.optimizer_steps = acc.optimizer_steps();
  s.skipped_steps = acc.skipped_steps();
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
  s.peak_bytes = allocator_stats(dev).peak_bytes;
  s.peak_reserved_bytes = allocator_stats(dev).peak_reserved_bytes;
  s.host_syncs = loop_end.host_syncs - loop_start.host_syncs - in_eval.host_syncs;
  s.kernel_launches = loop_end.kernel_launches - loop_start.kernel_launches - in_eval.kernel_launches;
  if (!is_root) return s;

  if (!o.save.empty()) {
    save(o.save);
    s.checkpoint = o.save;
  }
  if (!o.metrics.empty()) {
    write_file_atomically(o.metrics, metrics_csv(steps));
    s.metrics = o.metrics;
  }
  if (!o.plot.empty()) {
    const std::string why = plot_png(o.plot, steps, evals);
    if (why.empty())
      s.plot = o.plot;
    else
      out << "ember-train: plot: " << why << "\n";
  }
  s.wall_s = seconds_since(t0);
  if (!o.summary.empty()) write_file_atomically(o.summary, summary_json(s));

  out << "ember-train: done: test accuracy " << fmt_acc(s.test_accuracy) << " after " << s.optimizer_steps
      << " optimizer steps (" << s.micro_steps << " micro-batches), final loss " << fmt_acc(s.final_loss) << ", "
      << std::fixed << std::setprecision(0) << s.samples_per_s << " samples/s, wall " << std::setprecision(1)
      << s.wall_s << " s\n";
  if (!o.summary.empty()) out << "ember-train: summary: " << o.summary << "\n";
  if (!s.metrics.empty()) out << "ember-train: metrics: " << s.metrics << "\n";
  if (!s.plot.empty()) out << "ember-train: plot: " << s.plot << "\n";
  if (!s.checkpoint.empty()) out << "ember-train: checkpoint: " << s.checkpoint << "\n";
  return s;
}

}  // namespace ember::train
