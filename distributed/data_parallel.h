/// @file distributed/data_parallel.h @brief DataParallel: rank-0 parameter broadcast, flat gradient buckets (grads are views), bucket all-reduce overlapped with the window's last backward; effective-batch validation.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "distributed/process_group.h"
#include "nn/module.h"
#include "optim/grad_accumulator.h"

namespace ember::nn {
class BatchNormBase;
}

namespace ember::distributed {

struct DataParallelOptions {
  /// Capacity of one gradient bucket (PyTorch DDP's bucket_cap_mb, 25 MiB). A parameter larger than
  /// this gets a bucket of its own.
  int64_t bucket_bytes = int64_t{25} << 20;
  /// Capacity of the first bucket (the last layers' gradients, final first in backward), smaller so
  /// that communication starts early (DDP's 1 MiB first bucket); at most bucket_bytes.
  int64_t first_bucket_bytes = int64_t{1} << 20;
  /// Broadcast the buffers (BatchNorm running stats) from rank 0 at construction, with the parameters,
  /// and again at every window end (close_window), so that every rank holds rank 0's buffers after each
  /// optimizer step (PyTorch DDP's broadcast_buffers does it before every forward). Buffers of
  /// window-merged BatchNorm layers are left out at window ends: the cross-rank merge already makes
  /// them identical.
  bool broadcast_buffers = true;
  /// Start each bucket's all-reduce during the window's last backward as soon as its gradients are
  /// final (false: all buckets start in reduce(), after the backward).
  bool overlap = true;
};

struct DataParallelStats {
  int64_t windows = 0;               ///< reduce() calls (optimizer-step boundaries)
  int64_t allreduce_calls = 0;       ///< bucket all-reduces: exactly buckets() per window
  int64_t launched_in_backward = 0;  ///< of those, started from a gradient hook while backward ran
  int64_t bytes = 0;                 ///< payload bytes all-reduced (per rank)
  int64_t window_stat_merges = 0;    ///< all-reduces of window-merged BN statistics (one per applied window)
  int64_t buffer_broadcasts = 0;     ///< buffer broadcasts at window ends (one per buffer dtype and device)
};

/// One bucket as laid out at construction.
struct BucketInfo {
  std::vector<std::string> names;  ///< its parameters, in the order they lie in the flat buffer
  int64_t numel = 0;               ///< gradient elements (the first bucket also carries 1 count slot)
  DType dtype = DType::f32;
  Device device;
};

/// Data parallelism over a ProcessGroup, plugged into optim::GradAccumulator as its CommHook
/// (in the spirit of torch DistributedDataParallel, but for an accumulation window):
///  - construction: checks that every rank has the same parameters and buffers (count, shapes,
///    dtypes; else an ember::Error naming the ranks), broadcasts parameters (and buffers) from rank 0, and replaces
///    each parameter's .grad by a view into a flat bucket (parameters in reverse registration order,
///    so the buckets fill in backward order).
///  - inner micro-batches: no communication at all; gradients accumulate in place in the buckets.
///  - the window's last micro-batch: a bucket's all-reduce (sum) starts as soon as the backward has
///    accumulated all of its gradients; buckets start in index order on every rank. The local sample
///    count (known before that backward) rides in a slot of the first bucket, so every bucket can start
///    during the backward and there is exactly one all-reduce per bucket per step.
///  - reduce(): starts what is left (all of it for a window ended by flush()), orders the device's
///    later work after every bucket (Work::wait_on_device: on NCCL the compute stream waits for the
///    communication stream, no host wait), waits on the host for the last bucket only (its timeout
///    covers all: a backend completes its collectives in order) and returns the global sample count,
///    with every .grad holding the sum over all ranks.
///  - close_window(), after the update: built from an nn::Module, the window statistics of its
///    window-merged BatchNorm layers (BatchNormOptions::window_stats) are merged across ranks (one
///    all-reduce for all of them; not for a skipped window, which is discarded), so their running
///    statistics cover the whole effective batch and are the same on every rank; then the other buffers
///    are rebroadcast from rank 0 (broadcast_buffers).
///  - flush(): agree_pending() takes the largest pending count over the ranks (one all-reduce).
/// Build it after the model is on its device and before the optimizer's first step.
class DataParallel final : public optim::CommHook {
 public:
  /// Without the module no BatchNorm layer is known: window statistics are not merged across ranks
  /// (the buffers are still rebroadcast from rank 0).
  DataParallel(std::shared_ptr<ProcessGroup> group, const NamedTensors& params, const NamedTensors& buffers,
               DataParallelOptions options = {});
  /// Also finds the model's window-merged BatchNorm layers (the model must outlive this object).
  DataParallel(std::shared_ptr<ProcessGroup> group, nn::Module& model, DataParallelOptions options = {});
  ~DataParallel() override;
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  void before_backward(bool last_in_window, int64_t window_count = -1) override;
  int64_t reduce(std::span<Tensor> grads, int64_t local_count) override;
  /// One all-reduce of a flag per parameter (on the buckets' device), read on the host right after the
  /// window's count: a parameter touched on any rank is touched on all.
  void reduce_touched(std::span<uint8_t> touched) override;
  int64_t agree_pending(int64_t window_micro) override;
  void close_window(nn::Module& model, bool applied) override;

  std::vector<BucketInfo> buckets() const;
  const DataParallelStats& stats() const { return stats_; }
  ProcessGroup& group() const { return *group_; }

 private:
  struct Param {
    std::string name;
    Tensor tensor;
    Tensor view;  ///< its gradient: a view into its bucket's flat buffer
    size_t bucket = 0;
    bool ready = false;
    uint64_t hook = 0;
  };
  struct Bucket {
    Tensor flat;
    std::vector<size_t> params;
    int64_t numel = 0;
    size_t pending = 0;  ///< parameters not yet final in the armed backward
    std::unique_ptr<Work> work;
    bool launched = false;
  };

  DataParallel(std::shared_ptr<ProcessGroup> group, const NamedTensors& params, const NamedTensors& buffers,
               std::vector<nn::BatchNormBase*> window_layers, DataParallelOptions options);
  void check_layout_across_ranks(const NamedTensors& buffers) const;
  void broadcast_from_root(const NamedTensors& tensors);
  void build_buckets();
  void set_count(int64_t count);
  void attach_grad_views();
  void on_grad_ready(size_t param_index);
  void launch_ready_in_order();
  void launch(size_t bucket_index, bool in_backward);
  void progress();

  std::shared_ptr<ProcessGroup> group_;
  DataParallelOptions options_;
  std::vector<Param> params_;
  std::vector<Bucket> buckets_;
  std::vector<nn::BatchNormBase*> window_layers_;  ///< the model's BN layers with window_stats
  NamedTensors window_end_buffers_;                ///< rebroadcast at window ends (not the window layers')
  size_t next_launch_ = 0;  ///< buckets start strictly in index order (the same on every rank)
  bool armed_ = false;      ///< inside the window's last backward
  bool count_set_ = false;  ///< the first bucket's count slot holds this window's local count
  DataParallelStats stats_;
};

/// The effective batch of a data-parallel run: micro x accum x world samples per optimizer step.
struct EffectiveBatch {
  int64_t micro = 0, accum = 0, world = 0;
  int64_t total() const { return micro * accum * world; }
  /// "effective batch 18 = micro-batch 3 x accumulation 2 x world 3"
  std::string str() const;
};

/// Validates micro-batch and accumulation (>= 1, no overflow) and checks with one all-reduce that
/// every rank uses the same values (else an ember::Error naming the ranks); call it on all ranks.
EffectiveBatch validate_effective_batch(int64_t micro_batch, int64_t accum_steps, ProcessGroup& group);

}  // namespace ember::distributed
