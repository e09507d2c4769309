/// @file distributed/data_parallel.cpp @brief DataParallel: layout check, rank-0 broadcast, bucket construction, readiness hooks and the window-boundary reduction.
#include "distributed/data_parallel.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "core/grad_mode.h"
#include "distributed/window_state.h"
#include "ops/autograd/node.h"

namespace ember::distributed {

namespace {

// Largest integer sample count an f32 slot holds exactly (2^24).
constexpr int64_t kMaxExactF32Count = int64_t{1} << 24;

// FNV-1a over the parameter shapes and dtypes, folded to 62 bits (a positive i64 that sums exactly).
int64_t layout_hash(const NamedTensors& params) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xFF;
      h *= 1099511628211ull;
    }
  };
  for (const auto& [name, t] : params) {
    mix(static_cast<uint64_t>(t.dim()));
    for (int64_t d : t.shape()) mix(static_cast<uint64_t>(d));
    mix(static_cast<uint64_t>(t.dtype()));
  }
  return static_cast<int64_t>(h >> 2);
}

int64_t total_numel(const NamedTensors& ts) {
  int64_t n = 0;
  for (const auto& [name, t] : ts) n += t.numel();
  return n;
}

}  // namespace

DataParallel::DataParallel(std::shared_ptr<ProcessGroup> group, const NamedTensors& params,
                           const NamedTensors& buffers, DataParallelOptions options)
    : DataParallel(std::move(group), params, buffers, {}, options) {}

DataParallel::DataParallel(std::shared_ptr<ProcessGroup> group, nn::Module& model, DataParallelOptions options)
    : DataParallel(std::move(group), model.named_parameters(), model.named_buffers(), detail::window_merged_layers(model),
                   options) {}

DataParallel::DataParallel(std::shared_ptr<ProcessGroup> group, const NamedTensors& params,
                           const NamedTensors& buffers, std::vector<nn::BatchNormBase*> window_layers,
                           DataParallelOptions options)
    : group_(std::move(group)), options_(options), window_layers_(std::move(window_layers)) {
  EMBER_CHECK(group_ != nullptr, "DataParallel: the process group is null");
  EMBER_CHECK(options_.bucket_bytes >= 1, "DataParallel: bucket_bytes must be >= 1, got ", options_.bucket_bytes);
  EMBER_CHECK(options_.first_bucket_bytes >= 1, "DataParallel: first_bucket_bytes must be >= 1, got ",
              options_.first_bucket_bytes);
  for (const auto& [name, t] : params) {
    EMBER_CHECK(t.defined(), "DataParallel: parameter ", name, " is undefined");
    EMBER_CHECK(t.is_leaf(), "DataParallel: parameter ", name, " (", describe(t), ") is not a leaf tensor");
    EMBER_CHECK(is_floating(t.dtype()), "DataParallel: parameter ", name, " must be floating, got ", describe(t));
    EMBER_CHECK(group_->supports(t.device().type), "DataParallel: the ", group_->backend(),
                " process group cannot reduce parameter ", name, " on ", t.device(), " (", describe(t), ")");
    const bool seen = std::any_of(params_.begin(), params_.end(), [&](const Param& p) { return p.tensor.is_same(t); });
    if (t.requires_grad() && !seen) params_.push_back(Param{name, t, Tensor(), 0, false, 0});  // tied weights once
  }
  EMBER_CHECK(!params_.empty(), "DataParallel: the model has no parameters that require grad");
  for (const auto& [name, t] : buffers)
    EMBER_CHECK(!options_.broadcast_buffers || group_->supports(t.device().type), "DataParallel: the ",
                group_->backend(), " process group cannot broadcast buffer ", name, " (", describe(t), ")");

  check_layout_across_ranks(buffers);
  broadcast_from_root(params);
  if (options_.broadcast_buffers) {
    broadcast_from_root(buffers);
    window_end_buffers_ = detail::buffers_outside(buffers, window_layers_);
  }
  build_buckets();
  attach_grad_views();
  for (size_t i = 0; i < params_.size(); ++i)
    params_[i].hook = add_post_accumulate_grad_hook(params_[i].tensor, [this, i](const Tensor&) { on_grad_ready(i); });
}

DataParallel::~DataParallel() {
  for (auto& p : params_) remove_post_accumulate_grad_hook(p.tensor, p.hook);
}

void DataParallel::check_layout_across_ranks(const NamedTensors& buffers) const {
  // Every rank fills its own row; a sum all-reduce then gives every rank the whole table (an
  // all-gather), so all ranks see the same mismatch and throw together instead of hanging later in
  // a broadcast or bucket all-reduce of different sizes.
  // Parameters: count, elements, shape hash; the same for buffers; channels of window-merged BN layers.
  constexpr size_t kCols = 7;
  const int world = group_->size(), rank = group_->rank();
  NamedTensors mine;
  for (const auto& p : params_) mine.emplace_back(p.name, p.tensor);
  const NamedTensors bufs = options_.broadcast_buffers ? buffers : NamedTensors{};
  std::vector<int64_t> rows(static_cast<size_t>(world) * kCols, 0);
  int64_t window_channels = 0;
  for (const nn::BatchNormBase* bn : window_layers_) window_channels += bn->options().num_features;
  const int64_t row[kCols] = {static_cast<int64_t>(mine.size()), total_numel(mine), layout_hash(mine),
                              static_cast<int64_t>(bufs.size()), total_numel(bufs), layout_hash(bufs),
                              window_channels};
  std::copy(row, row + kCols, rows.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(rank) * kCols));
  Tensor table = from_vector(rows, Shape{world, static_cast<int64_t>(kCols)}, TensorOptions{}.set_dtype(DType::i64));
  group_->all_reduce(table);
  const std::vector<int64_t> all = table.to_vector<int64_t>();
  bool same = true;
  for (size_t r = 1; r < static_cast<size_t>(world); ++r)
    for (size_t c = 0; c < kCols; ++c) same = same && all[r * kCols + c] == all[c];
  if (same) return;
  std::ostringstream os;
  os << "DataParallel: the parameters or buffers differ across ranks (each rank must build the same model):";
  for (size_t r = 0; r < static_cast<size_t>(world); ++r) {
    const size_t o = r * kCols;
    os << " rank " << r << " has " << all[o] << " parameters with " << all[o + 1] << " elements and " << all[o + 3]
       << " buffers with " << all[o + 4] << " elements and " << all[o + 6] << " window-merged BN channels";
    if (r > 0 && (all[o + 2] != all[2] || all[o + 5] != all[5])) os << " (shapes or dtypes differ from rank 0)";
    os << ";";
  }
  os << " this rank (" << rank << "):";
  for (size_t i = 0; i < mine.size() && i < 16; ++i) os << " " << mine[i].first << " " << describe(mine[i].second);
  if (mine.size() > 16) os << " ...";
  EMBER_FAIL(os.str());
}

void DataParallel::broadcast_from_root(const NamedTensors& tensors) {
  NoGradGuard no_grad;
  for (const auto& [name, t] : tensors) {
    if (group_->size() == 1) break;
    if (t.is_contiguous()) {
      Tensor data = t.detach();
      group_->broadcast(data, 0);
    } else {
      Tensor tmp = t.detach().contiguous().clone();
      group_->broadcast(tmp, 0);
      Tensor dst = t.detach();
      dst.copy_(tmp);
    }
  }
}

void DataParallel::build_buckets() {
  // Reverse registration order: the last layers' gradients are final first in backward. The first
  // bucket is small (it starts the communication early), the others fill up to bucket_bytes.
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& t = params_[k].tensor;
    const int64_t bytes = static_cast<int64_t>(t.nbytes());
    bool open_new = buckets_.empty();
    if (!open_new) {
      const Bucket& b = buckets_.back();
      const Tensor& first = params_[b.params.front()].tensor;
      const int64_t used = b.numel * static_cast<int64_t>(dtype_size(first.dtype()));
      const int64_t cap =
          buckets_.size() == 1 ? std::min(options_.first_bucket_bytes, options_.bucket_bytes) : options_.bucket_bytes;
      open_new = first.dtype() != t.dtype() || first.device() != t.device() || used + bytes > cap;
    }
    if (open_new) buckets_.emplace_back();
    Bucket& b = buckets_.back();
    params_[k].bucket = buckets_.size() - 1;
    b.params.push_back(k);
    b.numel += t.numel();
  }
  for (size_t i = 0; i < buckets_.size(); ++i) {
    Bucket& b = buckets_[i];
    const Tensor& first = params_[b.params.front()].tensor;
    const bool head = i == 0;  // carries the sample count
    b.flat = zeros(Shape{b.numel + (head ? 1 : 0)}, TensorOptions{first.dtype(), first.device()});
    int64_t off = 0;
    for (size_t k : b.params) {
      Param& p = params_[k];
      const int64_t n = p.tensor.numel();
      p.view = b.flat.slice(0, off, off + n).view(p.tensor.shape());
      off += n;
    }
  }
}

void DataParallel::attach_grad_views() {
  // Keeps every .grad a view into its bucket. A grad replaced by someone else (set to a new tensor)
  // is copied in; one set to undefined restarts from zero.
  NoGradGuard no_grad;
  for (Param& p : params_) {
    Tensor g = p.tensor.grad();
    if (g.defined() && g.is_same(p.view)) continue;
    if (g.defined()) {
      p.view.copy_(g);
    } else {
      p.view.zero_();
    }
    p.tensor.set_grad(p.view);
  }
}

void DataParallel::set_count(int64_t count) {
  EMBER_CHECK(count >= 0 && count <= kMaxExactF32Count, "DataParallel: the local sample count ", count,
              " must be in [0, ", kMaxExactF32Count, "]");
  Bucket& head = buckets_.front();
  head.flat.slice(0, head.numel, head.numel + 1).fill_(static_cast<double>(count));
  count_set_ = true;
}

void DataParallel::before_backward(bool last_in_window, int64_t window_count) {
  attach_grad_views();
  armed_ = last_in_window && options_.overlap;
  if (!armed_) return;
  count_set_ = false;
  if (window_count >= 0) set_count(window_count);  // else the first bucket waits for reduce()
  for (Param& p : params_) p.ready = false;
  for (Bucket& b : buckets_) b.pending = b.params.size();
}

void DataParallel::on_grad_ready(size_t i) {
  if (!armed_) return;  // inner micro-batch: no communication
  Param& p = params_[i];
  if (p.ready) {
    EMBER_CHECK(!buckets_[p.bucket].launched, "DataParallel: parameter ", p.name,
                " received a second gradient in the same backward after its bucket's all-reduce had started "
                "(a parameter used twice whose gradient is written outside AccumulateGrad)");
    return;
  }
  p.ready = true;
  --buckets_[p.bucket].pending;
  launch_ready_in_order();
  progress();
}

void DataParallel::launch_ready_in_order() {
  // Index order, the same on every rank. The first bucket carries the sample count: when
  // before_backward did not get it, that bucket waits for reduce() and the others go on without it.
  for (;;) {
    if (next_launch_ == 0 && !count_set_) {
      if (buckets_.size() == 1) return;
      next_launch_ = 1;
    }
    if (next_launch_ >= buckets_.size() || buckets_[next_launch_].pending != 0) return;
    launch(next_launch_++, true);
  }
}

void DataParallel::launch(size_t bi, bool in_backward) {
  Bucket& b = buckets_[bi];
  b.work = group_->all_reduce_async(b.flat, ReduceOp::Sum);
  b.launched = true;
  ++stats_.allreduce_calls;
  stats_.bytes += static_cast<int64_t>(b.flat.nbytes());
  if (in_backward) ++stats_.launched_in_backward;
}

void DataParallel::progress() {
  for (Bucket& b : buckets_)
    if (b.work) (void)b.work->test();  // drives progress (MPI) and reports failures early; reduce() waits
}

int64_t DataParallel::reduce(std::span<Tensor> grads, int64_t local_count) {
  (void)grads;  // the same tensors as the parameters' .grad views, reduced in place through the buckets
  armed_ = false;
  attach_grad_views();
  if (!buckets_.front().launched) {  // it waited for the count
    set_count(local_count);
    launch(0, false);
    next_launch_ = std::max<size_t>(next_launch_, 1);
  }
  while (next_launch_ < buckets_.size()) launch(next_launch_++, false);
  for (Bucket& b : buckets_) b.work->wait_on_device();
  buckets_.back().work->wait();  // on the host, with the timeout: collectives complete in order
  for (Bucket& b : buckets_) {
    b.work.reset();
    b.launched = false;
  }
  next_launch_ = 0;
  count_set_ = false;
  ++stats_.windows;
  const Bucket& head = buckets_.front();
  const double total = head.flat.slice(0, head.numel, head.numel + 1).item();
  EMBER_CHECK(total >= 0 && total <= static_cast<double>(kMaxExactF32Count) && total == std::floor(total),
              "DataParallel::reduce: the window's global sample count ", total, " is not an exact count in [0, ",
              kMaxExactF32Count, "] (it is summed in the first gradient bucket)");
  EMBER_CHECK(total >= static_cast<double>(local_count), "DataParallel::reduce: the global sample count ", total,
              " is below this rank's ", local_count, " (the count sent with the first bucket was not this window's)");
  return static_cast<int64_t>(total);
}

void DataParallel::reduce_touched(std::span<uint8_t> touched) {
  if (group_->size() == 1 || touched.empty()) return;
  const Tensor& head = buckets_.front().flat;
  const std::vector<double> mine(touched.begin(), touched.end());
  Tensor flags = from_vector(mine, Shape{static_cast<int64_t>(mine.size())}, TensorOptions{head.dtype(), head.device()});
  group_->all_reduce(flags);  // sums of 0/1 flags over ranks: only "> 0" is read
  const std::vector<double> any = flags.to(Device::cpu()).to_vector<double>();
  for (size_t i = 0; i < touched.size(); ++i) touched[i] = any[i] > 0.5 ? 1 : 0;
}

int64_t DataParallel::agree_pending(int64_t window_micro) { return detail::max_over_ranks(*group_, window_micro); }

void DataParallel::close_window(nn::Module& model, bool applied) {
  // A skipped window is discarded on every rank (the skip follows from the all-reduced gradients, so
  // the ranks agree): nothing to merge.
  if (applied && !window_layers_.empty()) {
    detail::merge_windows_across_ranks(*group_, window_layers_);
    ++stats_.window_stat_merges;
  }
  optim::CommHook::close_window(model, applied);
  if (options_.broadcast_buffers) stats_.buffer_broadcasts += detail::broadcast_packed(*group_, window_end_buffers_);
}

std::vector<BucketInfo> DataParallel::buckets() const {
  std::vector<BucketInfo> out;
  for (const Bucket& b : buckets_) {
    BucketInfo info;
    for (size_t k : b.params) info.names.push_back(params_[k].name);
    info.numel = b.numel;
    info.dtype = b.flat.dtype();
    info.device = b.flat.device();
    out.push_back(std::move(info));
  }
  return out;
}

// ---- effective batch ------------------------------------------------------------------------------
std::string EffectiveBatch::str() const {
  std::ostringstream os;
  os << "effective batch " << total() << " = micro-batch " << micro << " x accumulation " << accum << " x world "
     << world;
  return os.str();
}

EffectiveBatch validate_effective_batch(int64_t micro_batch, int64_t accum_steps, ProcessGroup& group) {
  EMBER_CHECK(micro_batch >= 1, "effective batch: the micro-batch size must be >= 1, got ", micro_batch);
  EMBER_CHECK(accum_steps >= 1, "effective batch: the accumulation steps must be >= 1, got ", accum_steps);
  const int64_t world = group.size();
  const int64_t limit = std::numeric_limits<int64_t>::max() / world;
  EMBER_CHECK(micro_batch <= limit / accum_steps, "effective batch: micro-batch ", micro_batch, " x accumulation ",
              accum_steps, " x world ", world, " overflows");
  EffectiveBatch eb{micro_batch, accum_steps, world};
  if (world == 1) return eb;
  std::vector<int64_t> rows(static_cast<size_t>(world) * 2, 0);
  rows[static_cast<size_t>(group.rank()) * 2] = micro_batch;
  rows[static_cast<size_t>(group.rank()) * 2 + 1] = accum_steps;
  Tensor table = from_vector(rows, Shape{world, 2}, TensorOptions{}.set_dtype(DType::i64));
  group.all_reduce(table);
  const std::vector<int64_t> all = table.to_vector<int64_t>();
  std::ostringstream diff;
  for (int64_t r = 0; r < world; ++r)
    if (all[static_cast<size_t>(r) * 2] != micro_batch || all[static_cast<size_t>(r) * 2 + 1] != accum_steps)
      diff << " rank " << r << " has micro-batch " << all[static_cast<size_t>(r) * 2] << " x accumulation "
           << all[static_cast<size_t>(r) * 2 + 1] << ";";
  EMBER_CHECK(diff.str().empty(), "effective batch: the ranks disagree: rank ", group.rank(), " has micro-batch ",
              micro_batch, " x accumulation ", accum_steps, " but", diff.str());
  return eb;
}

}  // namespace ember::distributed
