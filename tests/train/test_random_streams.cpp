/// @file tests/train/test_random_streams.cpp @brief Per-micro-batch random streams: micro_batch_generator's keys and masks, and R simulated ranks x accum A equal to 1 rank x accum R*A with dropout.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "core/error.h"
#include "core/generator.h"
#include "data/dataloader.h"
#include "nn/activation.h"
#include "nn/functional.h"
#include "nn/linear.h"
#include "nn/sequential.h"
#include "optim/grad_accumulator.h"
#include "optim/sgd.h"

using namespace ember;
using Catch::Matchers::Contains;

namespace {

/// The dropout mask (kept = 1) of a [n] tensor drawn from `g`.
std::vector<float> mask(Generator g, int64_t n = 256) {
  return (dropout(ones({n}), 0.5, /*training=*/true, &g) * 0.5).to_vector<float>();
}

}  // namespace

TEST_CASE("micro_batch_generator: one stream per (seed, epoch, micro-batch), the same mask for the same triple",
          "[rng]") {
  const Generator a = micro_batch_generator(7, 2, 5), b = micro_batch_generator(7, 2, 5);
  CHECK(a.seed == b.seed);
  CHECK(a.offset == 0);
  CHECK(mask(a) == mask(b));
  // The three ranks of global micro-step 4 (indices 4*3 + r) draw three different masks; each mask is
  // a fair draw (256 elements at p = 0.5: 128 +- 8 sigma).
  std::vector<std::vector<float>> ranks;
  for (int r = 0; r < 3; ++r) ranks.push_back(mask(micro_batch_generator(7, 2, 4 * 3 + r)));
  CHECK(ranks[0] != ranks[1]);
  CHECK(ranks[0] != ranks[2]);
  CHECK(ranks[1] != ranks[2]);
  for (const auto& m : ranks) {
    const auto kept = std::count(m.begin(), m.end(), 1.0f);
    CHECK(std::abs(static_cast<double>(kept) - 128.0) < 64.0);
  }
  // Epoch and seed select other streams; none is the initialization stream of manual_seed(seed).
  CHECK(mask(micro_batch_generator(7, 3, 5)) != mask(a));
  CHECK(mask(micro_batch_generator(8, 2, 5)) != mask(a));
  CHECK(mask(Generator(7)) != mask(micro_batch_generator(7, 0, 0)));
  // Distinct indices of one (seed, epoch) give distinct keys (the hash is a bijection of the index).
  std::set<uint64_t> keys;
  for (int64_t i = 0; i < 10000; ++i) keys.insert(micro_batch_generator(7, 2, i).seed);
  CHECK(keys.size() == 10000);
  // As the default generator it gives the same draws as passed explicitly.
  default_generator() = micro_batch_generator(7, 2, 5);
  CHECK((dropout(ones({256}), 0.5, true) * 0.5).to_vector<float>() == mask(a));
  CHECK_THROWS_WITH(micro_batch_generator(7, -1, 0), Contains("negative epoch -1"));
  CHECK_THROWS_WITH(micro_batch_generator(7, 0, -2), Contains("negative micro-batch index -2"));
}

namespace {

/// 40 samples of 6 features (fixed pseudo-random bytes), 3 classes.
std::shared_ptr<data::ImageDataset> features() {
  std::vector<uint8_t> px;
  std::vector<int64_t> y;
  uint32_t s = 12345;
  for (int64_t i = 0; i < 40; ++i) {
    for (int j = 0; j < 6; ++j) px.push_back(static_cast<uint8_t>((s = s * 1103515245u + 12345u) >> 24));
    y.push_back(i % 3);
  }
  return std::make_shared<data::ImageDataset>(px, y, Shape{6}, 3);
}

/// Where each simulated rank's dropout draws come from.
enum class Streams { PerMicroBatch, SharedSeed };

/// Trains Linear(6,16) - ReLU - Dropout(0.5) - Linear(16,3) for one epoch with SGD (momentum 0.9): `world`
/// simulated ranks, each with its own loader shard, x accum `accum`. The ranks' micro-batches of a window
/// feed one GradAccumulator (accum_steps = world x accum) rank by rank, which sums exactly what
/// DataParallel's all-reduce sums. Streams::SharedSeed is the old scheme: every rank seeds its own
/// default generator with the run's seed and draws on from there. Returns the final weights.
std::vector<std::vector<float>> train(int world, int64_t accum, Streams streams) {
  constexpr uint64_t kSeed = 11;
  manual_seed(kSeed);
  auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(6, 16), std::make_shared<nn::ReLU>(), std::make_shared<nn::Dropout>(0.5),
      std::make_shared<nn::Linear>(16, 3)});
  optim::SGD opt(model->parameters(), {.lr = 0.1, .momentum = 0.9});
  optim::GradAccumulator acc(*model, opt, {.accum_steps = world * accum});
  std::vector<data::DataLoader> loaders;
  std::vector<Generator> rank_gen(static_cast<size_t>(world), Generator(kSeed));
  for (int r = 0; r < world; ++r)
    loaders.emplace_back(features(), data::DataLoaderOptions{.micro_batch = 2, .seed = 3, .rank = r, .world_size = world});
  const int64_t steps = loaders[0].steps_per_epoch();
  for (int64_t w = 0; w * accum < steps; ++w) {
    for (int r = 0; r < world; ++r) {
      for (int64_t k = w * accum; k < std::min(steps, (w + 1) * accum); ++k) {
        const data::Batch b = loaders[static_cast<size_t>(r)].batch(k);
        if (b.size() == 0) continue;  // a late rank's empty share of the short last step
        Generator& g = rank_gen[static_cast<size_t>(r)];
        default_generator() = streams == Streams::PerMicroBatch
                                  ? micro_batch_generator(kSeed, 0, loaders[static_cast<size_t>(r)].global_index(k))
                                  : g;
        acc.backward(nn::functional::cross_entropy(model->forward(b.x), b.y), b.size());
        g = default_generator();  // the old scheme: this rank's generator draws on
      }
    }
    acc.flush();  // a full window has ended already (no-op); the short last one ends here
  }
  REQUIRE(acc.optimizer_steps() == 4);  // 20 micro-batches of 2: windows of 6, 6, 6, 2
  std::vector<std::vector<float>> out;
  for (const Tensor& p : model->parameters()) out.push_back(p.to_vector<float>());
  return out;
}

/// max over tensors of max|a - b| / max|a| (each tensor against its own scale).
double max_rel_diff(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  double worst = 0;
  for (size_t t = 0; t < a.size(); ++t) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < a[t].size(); ++i) {
      diff = std::max(diff, static_cast<double>(std::abs(a[t][i] - b[t][i])));
      scale = std::max(scale, static_cast<double>(std::abs(a[t][i])));
    }
    worst = std::max(worst, diff / scale);
  }
  return worst;
}

}  // namespace

TEST_CASE("with per-micro-batch streams, 3 ranks x accum 2 with dropout equal 1 rank x accum 6", "[rng][accumulation]") {
  // 40 samples, micro-batch 2: the 3-rank run's global step k holds the single run's micro-batches 3k,
  // 3k+1, 3k+2, and a window of accum 2 the single run's window of accum 6 (the last: 4 samples).
  const auto single = train(1, 6, Streams::PerMicroBatch);
  const auto ranks = train(3, 2, Streams::PerMicroBatch);
  // The same samples and masks per window, summed in another order (rank-major instead of by index):
  // float32 regrouping of 6 terms, a few ulps; 4 SGD steps with momentum keep it well under 1e-5.
  const double same = max_rel_diff(single, ranks);
  CAPTURE(same);
  CHECK(same < 1e-5);
  // The old scheme (every rank seeded alike and drawing on) changes the masks, and the weights differ
  // by far more than rounding: what the check above would catch.
  const double old = max_rel_diff(single, train(3, 2, Streams::SharedSeed));
  CAPTURE(old);
  CHECK(old > 1e-3);
  // Dropout matters at all here: the single run with the old scheme (one stream drawn on) differs too.
  CHECK(max_rel_diff(single, train(1, 6, Streams::SharedSeed)) > 1e-3);
}
