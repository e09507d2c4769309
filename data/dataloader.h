/// @file data/dataloader.h @brief DataLoader: seeded per-epoch shuffling, micro-batching and rank sharding with random access by step; batches in pinned host memory on request.
#pragma once
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <vector>

#include "data/dataset.h"

namespace ember::data {

struct DataLoaderOptions {
  int64_t micro_batch = 32;  ///< samples per rank per micro-step (B)
  bool shuffle = true;       ///< reshuffle every epoch from (seed, epoch)
  uint64_t seed = 0;
  int rank = 0;              ///< this process's rank r in [0, world_size)
  int world_size = 1;        ///< number of ranks R
  /// Return batches in pinned (page-locked) host memory (Tensor::pin_memory), so that their copies to a
  /// CUDA device are queued without blocking the host. Takes effect only when the CUDA backend is linked
  /// and has a device; otherwise batches stay in ordinary memory (as PyTorch's DataLoader, which warns):
  /// pins_memory() tells which.
  bool pin_memory = false;
  /// Drop the epoch's final global micro-step when it is incomplete (fewer than B*R samples), as PyTorch's
  /// drop_last: every rank then gets exactly B samples at every step, and the last N mod (B*R) samples of
  /// each epoch's order are not served (with shuffling, different ones each epoch). The dataset must
  /// then hold at least B*R samples.
  bool drop_last = false;
};

/// Serves the micro-batches of one rank. One global micro-step covers B*R consecutive positions of the
/// epoch's order (the identity without shuffling, else a permutation that is a pure function of
/// (seed, epoch), identical on every rank); rank r takes positions k*B*R + r*B ... k*B*R + r*B + B-1 of
/// global micro-step k. The last step of an epoch may be short: ranks take what is left in rank order,
/// so a late rank's micro-batch can be smaller or empty (unless drop_last drops that step). Access is by step index, so a resumed run can
/// start in the middle of an epoch.
class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions opts);

  /// Selects the epoch (recomputes the order when shuffling).
  void set_epoch(int64_t epoch);
  int64_t epoch() const { return epoch_; }
  /// Global micro-steps per epoch: ceil(N / (B*R)), or floor(N / (B*R)) with drop_last.
  int64_t steps_per_epoch() const;
  /// The global index of this rank's micro-batch at micro-step `step` within the epoch: step * R + r. The
  /// micro-batches of an epoch, numbered in the order of their positions, are the same samples whatever R
  /// is: this index is the micro-step at which a one-rank loader with the same micro_batch serves the same
  /// samples. Pass it to micro_batch_generator (core/generator.h) for per-micro-batch random streams.
  int64_t global_index(int64_t step) const;
  /// This rank's dataset indices at micro-step `step` of the current epoch (may be empty on the last step).
  std::vector<int64_t> indices(int64_t step) const;
  /// Samples at micro-step `step` summed over all ranks (B*R except on a short last step).
  int64_t global_batch(int64_t step) const;
  /// This rank's batch at micro-step `step` (in pinned host memory when pins_memory()).
  Batch batch(int64_t step) const;
  /// True when batches come in pinned memory: the option pin_memory and a CUDA device present.
  bool pins_memory() const { return pin_; }

  /// Range-for over the current epoch, as with a PyTorch DataLoader: `for (const Batch& b : loader)`
  /// yields batch(step) for step = 0 .. steps_per_epoch() - 1 (on a late rank the last may be empty).
  /// Call set_epoch(e) before each epoch's loop to reshuffle.
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    Iterator(const DataLoader* loader, int64_t step) : loader_(loader), step_(step) {}
    Batch operator*() const { return loader_->batch(step_); }
    Iterator& operator++() {
      ++step_;
      return *this;
    }
    bool operator==(const Iterator& o) const { return loader_ == o.loader_ && step_ == o.step_; }

   private:
    const DataLoader* loader_;
    int64_t step_;
  };
  Iterator begin() const { return Iterator(this, 0); }
  Iterator end() const { return Iterator(this, steps_per_epoch()); }

  const DataLoaderOptions& options() const { return opts_; }
  const Dataset& dataset() const { return *dataset_; }

 private:
  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions opts_;
  bool pin_ = false;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;  ///< empty = identity
};

/// The shuffled order of an epoch: a Fisher-Yates permutation of [0, n) driven by a splitmix64 stream
/// seeded from (seed, epoch), so it is the same on every platform and rank.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace ember::data
