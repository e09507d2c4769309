/// @file tests/kernels/test_cuda_accumulate.cpp @brief The fused CUDA kernels: accumulate (float4 + tail, misaligned), accumulate_many (chunked multi-tensor launches), scale_many (sum of squares, non-finite flag, determinism).
//
// Tolerances: accumulate computes dst + (alpha * src) with the product rounded separately on every
// backend, so results equal the CPU's bitwise. scale_many's values are single f32 products (bitwise);
// its sum of squares is accumulated in double on both backends in different orders: relative 1e-9.
#include <catch2/catch.hpp>

#include <limits>

#include "kernels/accumulate.h"
#include "kernels/cuda/multi_tensor.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;

namespace {

std::vector<Tensor> to_cuda(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(t.to(test::kCuda));
  return out;
}

/// A parameter-like list: sizes around the 65536-element chunk and the float4 width, plus tiny ones.
std::vector<Tensor> param_list(uint64_t seed) {
  std::vector<Tensor> ts;
  const std::vector<int64_t> sizes{1, 31, 33, 65536, 65537, 3, 131075, 1000, 7};
  for (size_t i = 0; i < sizes.size(); ++i) ts.push_back(test::random_input({sizes[i]}, seed + i));
  return ts;
}

/// Plans `numels` with at most `max_blocks` blocks per launch, checks every launch against the limits
/// and that each chunk of each tensor is planned exactly once, in order; returns the number of launches.
int check_plan(const std::vector<int64_t>& numels, int max_blocks) {
  std::vector<std::vector<int>> seen(numels.size());
  int launches = 0;
  cuda::plan_chunks(numels, max_blocks, [&](const cuda::ChunkLaunch& l) {
    ++launches;
    REQUIRE(l.num_tensors >= 1);
    REQUIRE(l.num_tensors <= cuda::kMaxTensors);
    REQUIRE(l.num_blocks >= 1);
    REQUIRE(l.num_blocks <= max_blocks);
    for (int b = 0; b < l.num_blocks; ++b) {
      REQUIRE(l.slot_of_block[b] < l.num_tensors);
      seen[static_cast<size_t>(l.tensor_of_slot[l.slot_of_block[b]])].push_back(l.chunk_of_block[b]);
    }
  });
  for (size_t t = 0; t < numels.size(); ++t) {
    const int64_t chunks = (numels[t] + cuda::kChunkElems - 1) / cuda::kChunkElems;
    REQUIRE(static_cast<int64_t>(seen[t].size()) == chunks);
    for (int64_t c = 0; c < chunks; ++c) CHECK(seen[t][static_cast<size_t>(c)] == c);
  }
  return launches;
}

}  // namespace

TEST_CASE("multi-tensor chunk planning covers every chunk once, within the per-launch limits", "[cuda][accumulate]") {
  // Host-only: many small tensors (the 48-tensor limit) and huge ones (the 320-block limit, a tensor
  // continued into the next launch).
  std::vector<int64_t> numels;
  for (int i = 0; i < 100; ++i) numels.push_back(1 + i * 1000);
  numels.push_back(0);  // empty: skipped
  numels.push_back(500 * cuda::kChunkElems + 5);
  numels.push_back(3);
  // 48 + 48 small tensors fill two launches; the last 4 (8 chunks) + 312 chunks of the big one fill the
  // third (320 blocks); its other 189 chunks continue as slot 0 of the fourth, with the 3-element tensor.
  CHECK(check_plan(numels, cuda::kMaxBlocks) == 4);
  // A lowered block limit (what a test's grid cap does): 1 + 4 + 1 + 2 chunks in launches of 2 blocks,
  // the 4-chunk tensor continuing as slot 0 of the next launch.
  CHECK(check_plan({1, 3 * cuda::kChunkElems + 1, 5, 0, cuda::kChunkElems + 9}, 2) == 4);
  CHECK(check_plan({1, 3 * cuda::kChunkElems + 1, 5}, 1) == 6);
}

TEST_CASE("cuda accumulate: dst += alpha * src equals the CPU bitwise (float4, tail, misaligned)", "[cuda][accumulate]") {
  if (!test::cuda_or_warn()) return;
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    INFO(grid.str());
    for (int64_t n : test::kElementwiseSizes) {
      INFO("n = " << n);
      Tensor dst = test::random_input({n}, 70);
      const Tensor src = test::random_input({n}, 71);
      Tensor dd = dst.to(test::kCuda);
      kernels::accumulate(dd, src.to(test::kCuda), 0.37);
      kernels::accumulate(dst, src, 0.37);
      CHECK(test::max_ulp(dd, dst) == 0);
    }
    // Offset by one element (pointers 4 mod 16): the scalar path.
    Tensor base = test::random_input({1035}, 72);
    const Tensor src = test::random_input({1035}, 73);
    Tensor dd = base.to(test::kCuda);
    Tensor dview = dd.slice(0, 1, 1035), hview = base.slice(0, 1, 1035);
    kernels::accumulate(dview, src.to(test::kCuda).slice(0, 0, 1034), -1.5);
    kernels::accumulate(hview, src.slice(0, 0, 1034), -1.5);
    CHECK(test::max_ulp(dd, base) == 0);  // element 0 untouched on both
  }
}

TEST_CASE("cuda accumulate_many equals per-tensor CPU accumulation", "[cuda][accumulate]") {
  if (!test::cuda_or_warn()) return;
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);  // cap 2: the list's 12 chunks take 6 launches, tensors continuing
    INFO(grid.str());
    std::vector<Tensor> dst = param_list(80), src = param_list(90);
    dst.push_back(test::random_input({1000003}, 99));
    src.push_back(test::random_input({1000003}, 100));
    std::vector<Tensor> dd = to_cuda(dst);
    const std::vector<Tensor> sd = to_cuda(src);
    kernels::accumulate_many(dd, sd, 0.5);
    kernels::accumulate_many(dst, src, 0.5);
    for (size_t i = 0; i < dst.size(); ++i) CHECK(test::max_ulp(dd[i], dst[i]) == 0);

    // More tensors than fit in one launch (48), with misaligned views among them.
    std::vector<Tensor> many_d, many_s;
    for (int i = 0; i < 60; ++i) {
      many_d.push_back(test::random_input({33}, 200 + static_cast<uint64_t>(i)));
      many_s.push_back(test::random_input({34}, 300 + static_cast<uint64_t>(i)).slice(0, 1, 34));
    }
    std::vector<Tensor> many_dd = to_cuda(many_d), many_sd;
    for (const Tensor& s : many_s) many_sd.push_back(s.contiguous().to(test::kCuda).clone());
    many_sd[5] = test::random_input({34}, 305).to(test::kCuda).slice(0, 1, 34);  // misaligned source
    kernels::accumulate_many(many_dd, many_sd, -2.0);
    kernels::accumulate_many(many_d, many_s, -2.0);
    for (size_t i = 0; i < many_d.size(); ++i) CHECK(test::max_ulp(many_dd[i], many_d[i]) == 0);
  }
}

TEST_CASE("cuda scale_many scales every tensor and returns the CPU's sum of squares", "[cuda][accumulate]") {
  if (!test::cuda_or_warn()) return;
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);  // cap 2: partials come from several launches
    INFO(grid.str());
    std::vector<Tensor> host = param_list(110);
    host.push_back(test::random_input({1000003}, 120));
    std::vector<Tensor> dev = to_cuda(host);
    const ember::ScaleResult rd = kernels::scale_many(dev, 0.125);
    const ember::ScaleResult rh = kernels::scale_many(host, 0.125);
    CHECK_FALSE(rd.non_finite);
    CHECK(rd.sum_squares == Approx(rh.sum_squares).epsilon(1e-9));
    for (size_t i = 0; i < host.size(); ++i) CHECK(test::max_ulp(dev[i], host[i]) == 0);
  }
}

TEST_CASE("cuda scale_many is deterministic and flags NaN and Inf", "[cuda][accumulate]") {
  if (!test::cuda_or_warn()) return;
  const std::vector<Tensor> host = param_list(130);
  std::vector<Tensor> a = to_cuda(host), b = to_cuda(host);
  const double sa = kernels::scale_many(a, 3.0).sum_squares, sb = kernels::scale_many(b, 3.0).sum_squares;
  CHECK(sa == sb);  // bitwise: fixed reduction order, no floating-point atomics

  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    INFO("injected " << bad);
    std::vector<Tensor> ts = to_cuda(host);
    std::vector<float> v = host[4].to_vector<float>();  // 65537 elements: put it in the second chunk
    v[65536] = bad;
    ts[4] = from_vector(v, {65537}, test::kOnCuda);
    CHECK(kernels::scale_many(ts, 0.5).non_finite);
  }
}

TEST_CASE("cuda scale_many flags NaN/Inf met by threads other than the one that clears the flag",
          "[cuda][accumulate]") {
  if (!test::cuda_or_warn()) return;
  // Thread 0 of each block clears the block's shared flag; the value sits where threads 5, 300 and 511
  // of a 512-thread block meet it (511 runs first under EMBER_EMU_SCHEDULE=reverse, before the clear
  // unless a barrier orders them), in the first and in later chunks of the tensor (131075 elements, the
  // 7th of the list: under a grid cap of 2 its chunks are in the list's 3rd and 4th launches).
  const std::vector<Tensor> host = param_list(140);
  const std::vector<float> clean = host[6].to_vector<float>();
  for (unsigned cap : test::kGridCaps) {
    const test::GridCap grid(cap);
    INFO(grid.str());
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    const std::vector<std::pair<int64_t, float>> injected{
        {5, nan}, {300, -inf}, {511, nan}, {65536 + 40, inf}, {2 * 65536 + 2, nan}};
    for (const auto& [at, bad] : injected) {
      INFO("element " << at << " = " << bad);
      std::vector<Tensor> ts = to_cuda(host);
      std::vector<float> v = clean;
      v[static_cast<size_t>(at)] = bad;
      ts[6] = from_vector(v, {static_cast<int64_t>(v.size())}, test::kOnCuda);
      CHECK(kernels::scale_many(ts, 0.5).non_finite);
    }
    std::vector<Tensor> ts = to_cuda(host);
    CHECK_FALSE(kernels::scale_many(ts, 0.5).non_finite);
  }
}
