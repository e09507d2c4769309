/// @file data/dataloader.cpp @brief DataLoader sharding arithmetic, the portable epoch permutation, pinned batches.
#include "data/dataloader.h"

#include <algorithm>

#include "core/allocator.h"
#include "core/error.h"
#include "kernels/transfer.h"

namespace ember::data {

namespace {

/// splitmix64 (Steele, Lea, Flood 2014): a tiny, well-mixed, portable 64-bit generator.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, bound) without modulo bias (Lemire's multiply-shift with rejection).
  uint64_t below(uint64_t bound) {
    for (;;) {
      const unsigned __int128 m = static_cast<unsigned __int128>(next()) * bound;
      const auto low = static_cast<uint64_t>(m);
      if (low >= bound || low >= (0 - bound) % bound) return static_cast<uint64_t>(m >> 64);
    }
  }
};

}  // namespace

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  SplitMix64 seeder{seed ^ 0x5EED5EED5EED5EEDull};
  SplitMix64 rng{seeder.next() + static_cast<uint64_t>(epoch) * 0xD1B54A32D192ED03ull};
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)));
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  return p;
}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions opts)
    : dataset_(std::move(dataset)), opts_(opts) {
  EMBER_CHECK(dataset_ != nullptr, "DataLoader: null dataset");
  EMBER_CHECK(opts_.micro_batch >= 1, "DataLoader: micro_batch must be >= 1, got ", opts_.micro_batch);
  EMBER_CHECK(opts_.world_size >= 1, "DataLoader: world_size must be >= 1, got ", opts_.world_size);
  EMBER_CHECK(opts_.rank >= 0 && opts_.rank < opts_.world_size, "DataLoader: rank ", opts_.rank,
              " is outside [0, ", opts_.world_size, ")");
  EMBER_CHECK(dataset_->size() >= 1, "DataLoader: empty dataset");
  EMBER_CHECK(!opts_.drop_last || dataset_->size() >= opts_.micro_batch * opts_.world_size, "DataLoader: drop_last with ",
              dataset_->size(), " samples and micro_batch ", opts_.micro_batch, " x world_size ", opts_.world_size,
              " leaves no complete micro-step (needs at least ", opts_.micro_batch * opts_.world_size, " samples)");
  pin_ = opts_.pin_memory && has_pinned_allocator(DeviceType::CUDA) && kernels::device_count(DeviceType::CUDA) > 0;
  set_epoch(0);
}

void DataLoader::set_epoch(int64_t epoch) {
  EMBER_CHECK(epoch >= 0, "DataLoader::set_epoch: negative epoch ", epoch);
  epoch_ = epoch;
  if (opts_.shuffle) order_ = epoch_permutation(dataset_->size(), opts_.seed, epoch);
}

int64_t DataLoader::steps_per_epoch() const {
  const int64_t global = opts_.micro_batch * opts_.world_size;
  return opts_.drop_last ? dataset_->size() / global : (dataset_->size() + global - 1) / global;
}

int64_t DataLoader::global_index(int64_t step) const {
  EMBER_CHECK(step >= 0 && step < steps_per_epoch(), "DataLoader: micro-step ", step, " is outside [0, ",
              steps_per_epoch(), ")");
  return step * opts_.world_size + opts_.rank;
}

std::vector<int64_t> DataLoader::indices(int64_t step) const {
  EMBER_CHECK(step >= 0 && step < steps_per_epoch(), "DataLoader: micro-step ", step, " is outside [0, ",
              steps_per_epoch(), ") of epoch ", epoch_);
  const int64_t n = dataset_->size();
  const int64_t begin = std::min(n, step * opts_.micro_batch * opts_.world_size + opts_.rank * opts_.micro_batch);
  const int64_t end = std::min(n, begin + opts_.micro_batch);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(end - begin));
  for (int64_t pos = begin; pos < end; ++pos) out.push_back(order_.empty() ? pos : order_[static_cast<size_t>(pos)]);
  return out;
}

int64_t DataLoader::global_batch(int64_t step) const {
  EMBER_CHECK(step >= 0 && step < steps_per_epoch(), "DataLoader: micro-step ", step, " is outside [0, ",
              steps_per_epoch(), ")");
  const int64_t global = opts_.micro_batch * opts_.world_size;
  return std::min(global, dataset_->size() - step * global);
}

Batch DataLoader::batch(int64_t step) const {
  const std::vector<int64_t> idx = indices(step);
  Batch b = dataset_->get_batch(idx);
  if (pin_) {
    if (b.x.defined()) b.x = b.x.pin_memory();
    if (b.y.defined()) b.y = b.y.pin_memory();
  }
  return b;
}

}  // namespace ember::data
