/// @file tests/data/test_dataloader.cpp @brief Dataset conversion and DataLoader order, shuffling and rank sharding.
#include <algorithm>
#include <catch2/catch.hpp>
#include <set>

#include "core/error.h"
#include "data/dataloader.h"

using namespace ember;
using namespace ember::data;
using Catch::Matchers::Contains;

namespace {

/// n samples of shape [1, 1, 2]; sample i holds pixels (i, 255 - i), label i % 3.
std::shared_ptr<ImageDataset> tiny(int64_t n) {
  std::vector<uint8_t> px;
  std::vector<int64_t> y;
  for (int64_t i = 0; i < n; ++i) {
    px.push_back(static_cast<uint8_t>(i));
    px.push_back(static_cast<uint8_t>(255 - i));
    y.push_back(i % 3);
  }
  return std::make_shared<ImageDataset>(px, y, Shape{1, 1, 2}, 3);
}

}  // namespace

TEST_CASE("ImageDataset returns pixel / 255 in float32, NCHW, with labels", "[data]") {
  auto ds = tiny(60);
  const std::vector<int64_t> idx{51, 0};
  Batch b = ds->get_batch(idx);
  CHECK(b.x.shape() == Shape{2, 1, 1, 2});
  CHECK(b.x.dtype() == DType::f32);
  CHECK(b.x.to_vector<float>() == std::vector<float>{51.0f / 255.0f, 204.0f / 255.0f, 0.0f, 1.0f});
  CHECK(b.y.to_vector<int64_t>() == std::vector<int64_t>{0, 0});
  CHECK(b.size() == 2);
  const std::vector<int64_t> bad{60};
  CHECK_THROWS_WITH(ds->get_batch(bad), Contains("index 60 out of range [0, 60)"));
  CHECK(ds->head(5)->size() == 5);
  CHECK(ds->head(500)->size() == 60);
}

TEST_CASE("ImageDataset rejects inconsistent sizes and labels", "[data]") {
  CHECK_THROWS_WITH(ImageDataset({1, 2, 3}, {0, 1}, Shape{2}, 2), Contains("3 pixel bytes do not match 2 labels"));
  CHECK_THROWS_WITH(ImageDataset({1, 2}, {0, 5}, Shape{1}, 2), Contains("label 5 of sample 1"));
}

TEST_CASE("DataLoader without shuffling follows the seed's layout per rank", "[data]") {
  // N = 23, B = 3, R = 2: global step k, rank r takes k*6 + r*3 ... k*6 + r*3 + 2.
  auto ds = tiny(23);
  for (int r = 0; r < 2; ++r) {
    DataLoader dl(ds, {.micro_batch = 3, .shuffle = false, .seed = 0, .rank = r, .world_size = 2});
    REQUIRE(dl.steps_per_epoch() == 4);
    for (int64_t k = 0; k < 3; ++k) {
      std::vector<int64_t> want;
      for (int64_t j = 0; j < 3; ++j) want.push_back(k * 6 + r * 3 + j);
      CHECK(dl.indices(k) == want);
      CHECK(dl.global_batch(k) == 6);
    }
    // Last step: 5 samples left (18..22): rank 0 gets 18,19,20, rank 1 gets 21,22.
    CHECK(dl.indices(3) == (r == 0 ? std::vector<int64_t>{18, 19, 20} : std::vector<int64_t>{21, 22}));
    CHECK(dl.global_batch(3) == 5);
    CHECK(dl.batch(3).size() == (r == 0 ? 3 : 2));
    CHECK_THROWS_WITH(dl.indices(4), Contains("micro-step 4 is outside [0, 4)"));
  }
  // Rank 2 of 3 with N = 7, B = 2: the last step (positions 6..) leaves it nothing.
  DataLoader last(tiny(7), {.micro_batch = 2, .shuffle = false, .seed = 0, .rank = 2, .world_size = 3});
  CHECK(last.indices(1).empty());
  CHECK(last.batch(1).size() == 0);
}

TEST_CASE("DataLoader shuffles per epoch from the seed, identically on every rank", "[data]") {
  const int64_t n = 50;
  auto ds = tiny(n);
  auto epoch_indices = [&](uint64_t seed, int64_t epoch, int rank, int world) {
    DataLoader dl(ds, {.micro_batch = 4, .shuffle = true, .seed = seed, .rank = rank, .world_size = world});
    dl.set_epoch(epoch);
    std::vector<int64_t> all;
    for (int64_t k = 0; k < dl.steps_per_epoch(); ++k) {
      auto i = dl.indices(k);
      all.insert(all.end(), i.begin(), i.end());
    }
    return all;
  };
  const auto e0 = epoch_indices(7, 0, 0, 1);
  std::vector<int64_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> identity(n);
  for (int64_t i = 0; i < n; ++i) identity[static_cast<size_t>(i)] = i;
  CHECK(sorted == identity);                       // a permutation
  CHECK(e0 != identity);                           // actually shuffled
  CHECK(e0 == epoch_indices(7, 0, 0, 1));          // deterministic
  CHECK(e0 != epoch_indices(7, 1, 0, 1));          // new order each epoch
  CHECK(e0 != epoch_indices(8, 0, 0, 1));          // seed matters
  // Ranks partition the epoch: disjoint, and together every sample once.
  std::set<int64_t> seen;
  size_t total = 0;
  for (int r = 0; r < 3; ++r) {
    auto part = epoch_indices(7, 2, r, 3);
    total += part.size();
    seen.insert(part.begin(), part.end());
  }
  CHECK(total == static_cast<size_t>(n));
  CHECK(seen.size() == static_cast<size_t>(n));
  // Rank r of R sees positions k*B*R + r*B.. of the same permutation as world size 1.
  DataLoader r1(ds, {.micro_batch = 4, .shuffle = true, .seed = 7, .rank = 1, .world_size = 3});
  const auto perm = epoch_permutation(n, 7, 0);
  CHECK(r1.indices(2) == std::vector<int64_t>(perm.begin() + 28, perm.begin() + 32));
}

TEST_CASE("DataLoader rejects bad options", "[data]") {
  auto ds = tiny(5);
  CHECK_THROWS_WITH(DataLoader(ds, {.micro_batch = 0}), Contains("micro_batch must be >= 1, got 0"));
  CHECK_THROWS_WITH(DataLoader(ds, {.micro_batch = 2, .rank = 2, .world_size = 2}), Contains("rank 2 is outside [0, 2)"));
  CHECK_THROWS_WITH(DataLoader(ds, {.micro_batch = 2, .world_size = 0}), Contains("world_size must be >= 1"));
  CHECK_THROWS_WITH(DataLoader(nullptr, {}), Contains("null dataset"));
}

TEST_CASE("DataLoader works in a range-for: every sample of the epoch once, in the loader's order", "[data]") {
  auto ds = tiny(23);
  DataLoader dl(ds, DataLoaderOptions{.micro_batch = 5, .shuffle = true, .seed = 7});
  dl.set_epoch(2);
  std::vector<int64_t> seen;  // labels identify nothing; the first pixel is the sample index
  int64_t steps = 0;
  for (const Batch& b : dl) {
    const std::vector<float> px = b.x.to_vector<float>();
    for (int64_t i = 0; i < b.size(); ++i) seen.push_back(std::lround(px[static_cast<size_t>(2 * i)] * 255.0f));
    ++steps;
  }
  CHECK(steps == 5);  // ceil(23 / 5)
  // The order is the epoch's permutation (independent reference: epoch_permutation), all 23 samples.
  CHECK(seen == epoch_permutation(23, 7, 2));
}

TEST_CASE("DataLoader drop_last serves only complete global micro-steps, as a naive chunking of the order", "[data]") {
  // Naive reference: cut the epoch's order into chunks of B; chunk c is rank c % R's micro-batch at
  // global step c / R; drop_last keeps the steps whose R chunks are all full (B samples each).
  auto reference = [](const std::vector<int64_t>& order, int64_t b, int world, int rank, bool drop_last) {
    std::vector<std::vector<std::vector<int64_t>>> steps;  // steps[k][r]
    for (size_t c = 0; c * static_cast<size_t>(b) < order.size(); ++c) {
      if (c % static_cast<size_t>(world) == 0) steps.emplace_back(static_cast<size_t>(world));
      const size_t begin = c * static_cast<size_t>(b), end = std::min(order.size(), begin + static_cast<size_t>(b));
      steps.back()[c % static_cast<size_t>(world)].assign(order.begin() + static_cast<long>(begin),
                                                           order.begin() + static_cast<long>(end));
    }
    std::vector<std::vector<int64_t>> mine;
    for (const auto& s : steps) {
      const bool full = std::all_of(s.begin(), s.end(), [&](const auto& m) { return static_cast<int64_t>(m.size()) == b; });
      if (!drop_last || full) mine.push_back(s[static_cast<size_t>(rank)]);
    }
    return mine;
  };
  for (const int64_t n : {23, 24, 25, 30}) {
    for (const bool shuffle : {false, true}) {
      for (const bool drop_last : {false, true}) {
        for (int r = 0; r < 3; ++r) {
          auto ds = tiny(n);
          DataLoader dl(ds, {.micro_batch = 4, .shuffle = shuffle, .seed = 3, .rank = r, .world_size = 3,
                             .drop_last = drop_last});
          dl.set_epoch(1);
          std::vector<int64_t> order(static_cast<size_t>(n));
          for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
          if (shuffle) order = epoch_permutation(n, 3, 1);
          const auto want = reference(order, 4, 3, r, drop_last);
          INFO("n " << n << " shuffle " << shuffle << " drop_last " << drop_last << " rank " << r);
          REQUIRE(dl.steps_per_epoch() == static_cast<int64_t>(want.size()));
          for (int64_t k = 0; k < dl.steps_per_epoch(); ++k) CHECK(dl.indices(k) == want[static_cast<size_t>(k)]);
          if (drop_last) CHECK(dl.global_batch(dl.steps_per_epoch() - 1) == 12);
        }
      }
    }
  }
  // B 4 x R 3 = 12 samples per step: 23 samples hold 1 complete step, 25 hold 2 (plus a short one without drop_last).
  CHECK(DataLoader(tiny(23), {.micro_batch = 4, .world_size = 3, .drop_last = true}).steps_per_epoch() == 1);
  CHECK(DataLoader(tiny(25), {.micro_batch = 4, .world_size = 3, .drop_last = true}).steps_per_epoch() == 2);
  CHECK(DataLoader(tiny(25), {.micro_batch = 4, .world_size = 3}).steps_per_epoch() == 3);
  CHECK_THROWS_WITH(DataLoader(tiny(11), {.micro_batch = 4, .world_size = 3, .drop_last = true}),
                    Contains("drop_last") && Contains("11 samples") && Contains("at least 12"));
}

TEST_CASE("DataLoader::global_index numbers micro-batches the same whatever the world size", "[data]") {
  // Rank r of R at step k serves the samples that one rank (same B) serves at step global_index(k).
  auto ds = tiny(50);
  DataLoader one(ds, {.micro_batch = 4, .shuffle = true, .seed = 5});
  one.set_epoch(3);
  std::set<int64_t> indices;
  for (int r = 0; r < 3; ++r) {
    DataLoader dl(ds, {.micro_batch = 4, .shuffle = true, .seed = 5, .rank = r, .world_size = 3});
    dl.set_epoch(3);
    for (int64_t k = 0; k < dl.steps_per_epoch(); ++k) {
      if (dl.indices(k).empty()) continue;  // rank 2's share of the short last step (positions 48, 49 are rank 0's)
      const int64_t g = dl.global_index(k);
      CHECK(g == k * 3 + r);
      CHECK(dl.indices(k) == one.indices(g));
      indices.insert(g);
    }
  }
  CHECK(indices.size() == static_cast<size_t>(one.steps_per_epoch()));  // each of the 13 micro-batches once
  CHECK_THROWS_WITH(one.global_index(13), Contains("micro-step 13 is outside [0, 13)"));
}
