/// @file tests/emulator/test_emulator.cpp @brief Catch2 tests of the kernel emulator: results, PTX shuffle rules, misuse diagnostics, schedules, atomics, runtime API.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "tests/emulator/emu_kernels.h"

using ember::emu::Schedule;

namespace {

/// Device memory (host memory in the emulator, so the tests read and write it directly).
template <class T>
struct DeviceArray {
  T* p = nullptr;
  std::size_t n;
  explicit DeviceArray(std::size_t count) : n(count) { REQUIRE(cudaMalloc(&p, n * sizeof(T)) == cudaSuccess); }
  ~DeviceArray() { cudaFree(p); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T& operator[](std::size_t i) { return p[i]; }
  void fill(T v) { std::fill(p, p + n, v); }
};

struct ScheduleGuard {
  Schedule saved = ember::emu::schedule();
  explicit ScheduleGuard(Schedule s) { ember::emu::set_schedule(s); }
  ~ScheduleGuard() { ember::emu::set_schedule(saved); }
};

/// "emu_kernels.cu:LINE" of the line of emu_kernels.cu marked "// @marker".
std::string where(const std::string& marker) {
  std::ifstream in(EMU_KERNELS_FILE);
  REQUIRE(in.good());
  std::string line;
  for (int n = 1; std::getline(in, line); ++n)
    if (line.find("// " + marker) != std::string::npos && line.find("__") != std::string::npos)
      return "emu_kernels.cu:" + std::to_string(n);
  FAIL("marker " << marker << " not found in " << EMU_KERNELS_FILE);
  return {};
}

/// The launch failed: cudaGetLastError reports it and resets, but the error is sticky (the next call
/// that touches the device reports it again) until cudaDeviceReset. Returns the emulator's explanation.
std::string launch_failure() {
  REQUIRE(cudaPeekAtLastError() == cudaErrorLaunchFailure);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  CHECK(cudaGetLastError() == cudaSuccess);
  const std::string message = ember::emu::last_error_message();
  CHECK(cudaDeviceSynchronize() == cudaErrorLaunchFailure);  // sticky, as on a GPU
  CHECK(cudaDeviceReset() == cudaSuccess);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  CHECK(cudaDeviceSynchronize() == cudaSuccess);
  CHECK(ember::emu::leaked_stacks() == 0);  // every fiber of the abandoned block was finished
  return message;
}

/// A normal launch still works.
void check_launches_still_work() {
  DeviceArray<float> a(1000), b(1000), c(1000);
  for (int i = 0; i < 1000; ++i) a[i] = static_cast<float>(i), b[i] = 1.0f;
  emu_test::vector_add(a.p, b.p, c.p, 1000, 3, 128);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  for (int i = 0; i < 1000; ++i) REQUIRE(c[i] == static_cast<float>(i + 1));
}

const Schedule kSchedules[] = {Schedule::forward(), Schedule::reverse(), Schedule::random(1), Schedule::random(99)};

}  // namespace

TEST_CASE("grid-stride vector add is exact over 1000003 elements", "[emulator]") {
  const int n = 1000003;
  DeviceArray<float> a(n), b(n), c(n);
  for (int i = 0; i < n; ++i) a[i] = static_cast<float>(i) * 0.5f, b[i] = 1.0f / static_cast<float>(i + 1);
  emu_test::vector_add(a.p, b.p, c.p, n, 1024, 256);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  int wrong = 0;
  for (int i = 0; i < n; ++i) wrong += std::bit_cast<unsigned>(c[i]) != std::bit_cast<unsigned>(a[i] + b[i]);
  CHECK(wrong == 0);
}

TEST_CASE("block reductions by shared memory and by warp shuffles give the exact sum under every schedule",
          "[emulator]") {
  const int n = 100000;
  DeviceArray<float> x(n);
  double expected = 0;
  for (int i = 0; i < n; ++i) expected += (x[i] = static_cast<float>(i % 100));  // integers: every partial sum exact
  for (const Schedule& s : kSchedules) {
    ScheduleGuard guard(s);
    for (unsigned threads : {32u, 256u, 1024u}) {
      const unsigned blocks = 13;
      DeviceArray<float> shared_partial(blocks), shuffle_partial(blocks);
      emu_test::block_sum_shared(x.p, n, shared_partial.p, blocks, threads);
      REQUIRE(cudaGetLastError() == cudaSuccess);
      emu_test::block_sum_shuffle(x.p, n, shuffle_partial.p, blocks, threads);
      REQUIRE(cudaGetLastError() == cudaSuccess);
      double by_shared = 0, by_shuffle = 0;
      for (unsigned b = 0; b < blocks; ++b) by_shared += shared_partial[b], by_shuffle += shuffle_partial[b];
      CHECK(by_shared == expected);
      CHECK(by_shuffle == expected);
    }
  }
}

TEST_CASE("cudaMalloc, dynamic and static shared memory are 0xFF-poisoned", "[emulator]") {
  DeviceArray<float> f(1000);
  for (int i = 0; i < 1000; ++i) REQUIRE(std::bit_cast<unsigned>(f[i]) == 0xFFFFFFFFu);
  CHECK(f[0] != f[0]);  // NaN
  // Every block scribbles over its dynamic shared memory after checking it: the next block on the
  // same worker must see it poisoned again.
  DeviceArray<unsigned> not_poisoned(1);
  not_poisoned.fill(0);
  emu_test::dynamic_shared_poison(not_poisoned.p, 16, 64, 1000);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  CHECK(not_poisoned[0] == 0);
  // Static shared memory (EMBER_SHARED) too, although it lives in per-OS-thread variables.
  for (const Schedule& sched : kSchedules) {
    ScheduleGuard guard(sched);
    emu_test::static_shared_poison(not_poisoned.p, 16, 64);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    CHECK(not_poisoned[0] == 0);
  }

  const unsigned threads = 128, blocks = 5;
  DeviceArray<float> in(threads * blocks), out(threads * blocks);
  for (unsigned i = 0; i < threads * blocks; ++i) in[i] = static_cast<float>(i);
  emu_test::dynamic_shared_reverse(in.p, out.p, blocks, threads);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  for (unsigned b = 0; b < blocks; ++b)
    for (unsigned t = 0; t < threads; ++t) REQUIRE(out[b * threads + t] == in[b * threads + threads - 1 - t]);
}

TEST_CASE("threadIdx, blockIdx cover 3-D grids and blocks", "[emulator]") {
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  const unsigned total = 3 * 2 * 2 * 4 * 3 * 2;
  DeviceArray<int> out(6 * total);
  emu_test::indices(out.p, grid, block);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  unsigned k = 0;
  for (int bz = 0; bz < 2; ++bz)
    for (int by = 0; by < 2; ++by)
      for (int bx = 0; bx < 3; ++bx)
        for (int tz = 0; tz < 2; ++tz)
          for (int ty = 0; ty < 3; ++ty)
            for (int tx = 0; tx < 4; ++tx, ++k) {
              const int* o = &out[6 * k];
              REQUIRE((o[0] == tx && o[1] == ty && o[2] == tz && o[3] == bx && o[4] == by && o[5] == bz));
            }
}

namespace {
/// Source lane of each shuffle, from the CUDA Programming Guide's description of width-lane
/// segments; PTX takes the low 5 bits of the lane/delta/mask operand.
unsigned reference_source(emu_test::ShflOp op, unsigned lane, int arg, unsigned width) {
  const unsigned start = lane / width * width;
  const unsigned b = static_cast<unsigned>(arg) & 31u;
  switch (op) {
    case emu_test::kShflIdx:
      return start + static_cast<unsigned>(((arg % static_cast<int>(width)) + static_cast<int>(width)) %
                                           static_cast<int>(width));
    case emu_test::kShflUp:
      return lane >= start + b ? lane - b : lane;
    case emu_test::kShflDown:
      return lane + b < start + width ? lane + b : lane;
    case emu_test::kShflXor:
      return (lane ^ b) < start + width ? lane ^ b : lane;  // earlier segments are readable
  }
  return lane;
}
}  // namespace

TEST_CASE("shuffles follow the PTX rules at widths 32, 16, 8, 4 and move values bitwise", "[emulator]") {
  using emu_test::ShflOp;
  const unsigned threads = 64;  // two warps: values differ between them, so a cross-warp read shows
  DeviceArray<int> oi(threads);
  DeviceArray<float> of(threads);
  DeviceArray<double> od(threads);
  DeviceArray<long long> oll(threads);
  const std::vector<int> args[] = {
      {0, 3, 5, 31, 37, -1}, {0, 1, 2, 5, 8, 16, 31, 33}, {0, 1, 2, 5, 8, 16, 31, 33}, {0, 1, 2, 4, 8, 16, 31, 32}};
  int checked = 0;
  for (int op = 0; op < 4; ++op)
    for (unsigned width : {32u, 16u, 8u, 4u})
      for (int arg : args[op]) {
        emu_test::shuffle(static_cast<ShflOp>(op), arg, static_cast<int>(width), oi.p, of.p, od.p, oll.p, threads);
        REQUIRE(cudaGetLastError() == cudaSuccess);
        for (unsigned t = 0; t < threads; ++t) {
          const unsigned src = t / 32 * 32 + reference_source(static_cast<ShflOp>(op), t % 32, arg, width);
          INFO("op " << op << " width " << width << " arg " << arg << " thread " << t << " expects thread " << src);
          REQUIRE(oi[t] == static_cast<int>(src * 7 + 3));
          REQUIRE(std::bit_cast<unsigned>(of[t]) == std::bit_cast<unsigned>(1.0f / static_cast<float>(src + 3)));
          REQUIRE(std::bit_cast<unsigned long long>(od[t]) ==
                  std::bit_cast<unsigned long long>(1.0 / static_cast<double>(src + 3)));
          REQUIRE(oll[t] == static_cast<long long>(src + 1) * 0x0123456789ABCDLL);
          ++checked;
        }
      }
  CHECK(checked == (6 + 8 + 8 + 8) * 4 * 64);  // every (op, width, arg) combination ran
}

TEST_CASE("shuffles with partial masks: lanes outside the mask read as all-ones bits", "[emulator]") {
  DeviceArray<int> out(32);
  emu_test::shuffle_masked(emu_test::kShflDown, 0x0000ffffu, 8, 32, out.p, 32);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  for (int l = 0; l < 8; ++l) CHECK(out[l] == (l + 8) * 7 + 3);
  for (int l = 8; l < 32; ++l) CHECK(out[l] == -1);  // 8..15 read lanes 16..23 (not in the mask); 16..31 did not call
  emu_test::shuffle_masked(emu_test::kShflXor, 0xaaaaaaaau, 2, 32, out.p, 32);  // odd lanes only
  REQUIRE(cudaGetLastError() == cudaSuccess);
  for (int l = 0; l < 32; ++l) CHECK(out[l] == (l % 2 ? (l ^ 2) * 7 + 3 : -1));
}

TEST_CASE("ballot, any, all and __syncthreads_count/and/or", "[emulator]") {
  const unsigned threads = 64;
  DeviceArray<unsigned> ballot(threads);
  DeviceArray<int> any(threads), all(threads), any5(threads), all_lt32(threads);
  emu_test::vote(ballot.p, any.p, all.p, any5.p, all_lt32.p, threads);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  for (unsigned t = 0; t < threads; ++t) {
    CHECK(ballot[t] == 0x49249249u);  // lanes 0, 3, 6, ..., 30
    CHECK(any[t] == 1);
    CHECK(all[t] == 0);
    CHECK(any5[t] == 1);
    CHECK(all_lt32[t] == 1);
  }
  DeviceArray<int> count(96), and_(96), or_(96);
  emu_test::sync_count(count.p, and_.p, or_.p, 96);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  for (unsigned t = 0; t < 96; ++t) CHECK((count[t] == 24 && and_[t] == 0 && or_[t] == 1));
}

TEST_CASE("divergent __syncthreads is reported with block, threads and both lines", "[emulator][errors]") {
  DeviceArray<int> destroyed(1);
  destroyed.fill(0);
  emu_test::divergent_barrier(destroyed.p, 1, dim3(32), 0);
  const std::string msg = launch_failure();
  INFO(msg);
  CHECK(msg.find("divergent barrier in block (0,0,0)") != std::string::npos);
  CHECK(msg.find("thread (0,0,0) waits in __syncthreads() at") != std::string::npos);
  CHECK(msg.find("thread (16,0,0)") != std::string::npos);
  CHECK(msg.find(where("@divergent-a")) != std::string::npos);
  CHECK(msg.find(where("@divergent-b")) != std::string::npos);
  CHECK(destroyed[0] == 32);  // the abandoned threads were unwound
  // Only block 2 of 4 diverges.
  emu_test::divergent_barrier(destroyed.p, 4, dim3(64), 2);
  const std::string msg2 = launch_failure();
  INFO(msg2);
  CHECK(msg2.find("block (2,0,0)") != std::string::npos);
  CHECK(std::string(cudaGetErrorString(cudaErrorLaunchFailure)).find("divergent barrier") != std::string::npos);
  check_launches_still_work();
}

TEST_CASE("a thread returning while others wait at a barrier is reported", "[emulator][errors]") {
  DeviceArray<int> destroyed(1);
  destroyed.fill(0);
  emu_test::return_before_barrier(destroyed.p, 1, dim3(32), 0, dim3(0, 0, 0));
  std::string msg = launch_failure();
  INFO(msg);
  CHECK(msg.find("thread (0,0,0) of block (0,0,0) exited while 31 threads wait at barrier __syncthreads() at") !=
        std::string::npos);
  CHECK(msg.find(where("@early-return")) != std::string::npos);
  CHECK(destroyed[0] == 32);
  emu_test::return_before_barrier(destroyed.p, 3, dim3(8, 4, 2), 1, dim3(3, 2, 1));  // 3-D ids, block 1 of 3
  msg = launch_failure();
  INFO(msg);
  CHECK(msg.find("thread (3,2,1) of block (1,0,0) exited while 63 threads wait") != std::string::npos);
  check_launches_still_work();
}

TEST_CASE("warp collective misuse is reported: lane outside its mask, full mask on a partial warp, exited lane",
          "[emulator][errors]") {
  DeviceArray<int> out(64);
  emu_test::lane_outside_mask(out.p, 32);
  std::string msg = launch_failure();
  INFO(msg);
  CHECK(msg.find("__shfl_sync at ") != std::string::npos);
  CHECK(msg.find(where("@outside-mask")) != std::string::npos);
  CHECK(msg.find("thread (5,0,0) of block (0,0,0) (warp 0, lane 5) is not in its mask 0x00000001") !=
        std::string::npos);

  emu_test::full_mask_partial_warp(out.p, 48);
  msg = launch_failure();
  INFO(msg);
  CHECK(msg.find(where("@partial-warp")) != std::string::npos);
  CHECK(msg.find("of block (0,0,0) (warp 1, lane ") != std::string::npos);
  CHECK(msg.find("passes mask 0xffffffff but warp 1 has only 16 lanes (blockDim (48,1,1))") != std::string::npos);

  emu_test::lane_exits_before_shuffle(out.p, 32);
  msg = launch_failure();
  INFO(msg);
  CHECK(msg.find("thread (3,0,0) of block (0,0,0) exited while lanes of warp 0 wait for it in __shfl_sync(mask "
                 "0xffffffff) at") != std::string::npos);
  CHECK(msg.find(where("@lane-exit")) != std::string::npos);
  check_launches_still_work();
}

TEST_CASE("deadlock between a shuffle and a barrier is reported, never hangs", "[emulator][errors]") {
  DeviceArray<int> out(64);
  for (int repeat = 0; repeat < 20; ++repeat) {  // abandoned blocks leak nothing
    emu_test::shuffle_vs_barrier_deadlock(out.p, 64);
    const std::string msg = launch_failure();
    INFO(msg);
    REQUIRE(msg.find("deadlock in block (0,0,0):") != std::string::npos);
    REQUIRE(msg.find("thread (0,0,0) and 31 more wait in __shfl_sync(mask 0xffffffff) at " + std::string()) !=
            std::string::npos);
    REQUIRE(msg.find(where("@deadlock-shuffle")) != std::string::npos);
    REQUIRE(msg.find("thread (16,0,0) and 31 more wait in __syncthreads() at") != std::string::npos);
    REQUIRE(msg.find(where("@deadlock-barrier")) != std::string::npos);
  }
  check_launches_still_work();
}

TEST_CASE("a missing barrier shows up as schedule-dependent results", "[emulator][schedules]") {
  const unsigned blocks = 4, threads = 64, n = blocks * threads;
  DeviceArray<int> in(n), out(n);
  int salt = 0;
  auto mismatches = [&](Schedule s, bool with_barrier) {
    ScheduleGuard guard(s);
    ++salt;  // new values every launch: stale shared memory never holds the expected value
    for (unsigned i = 0; i < n; ++i) in[i] = static_cast<int>(i * 3 + 12345 + 100000 * salt);
    out.fill(0);
    emu_test::neighbour(in.p, out.p, blocks, threads, with_barrier);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    int bad = 0;
    for (unsigned b = 0; b < blocks; ++b)
      for (unsigned t = 0; t < threads; ++t) bad += out[b * threads + t] != in[b * threads + (t + 1) % threads];
    return bad;
  };
  // forward: thread t reads s[t+1] before thread t+1 wrote it; reverse: only the last thread (reading s[0]) does.
  CHECK(mismatches(Schedule::forward(), false) == static_cast<int>(blocks * (threads - 1)));
  CHECK(mismatches(Schedule::reverse(), false) == static_cast<int>(blocks));
  const int shuffled = mismatches(Schedule::random(3), false);  // about half the threads read too early
  CHECK((shuffled > static_cast<int>(blocks) && shuffled < static_cast<int>(blocks * (threads - 1))));
  for (const Schedule& s : kSchedules) CHECK(mismatches(s, true) == 0);
}

TEST_CASE("a warp collective completes as its lanes arrive, while other warps have not started or wait elsewhere",
          "[emulator][schedules]") {
  const int steps = 6;
  DeviceArray<int> seen(2 * steps), progress(2);
  auto run = [&](Schedule s) {
    ScheduleGuard guard(s);
    progress.fill(0);
    seen.fill(-1);
    emu_test::warp_progress(seen.p, progress.p, steps);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    std::vector<int> of_warp[2];
    for (int w = 0; w < 2; ++w) of_warp[w].assign(seen.p + w * steps, seen.p + (w + 1) * steps);
    return std::pair{of_warp[0], of_warp[1]};
  };
  const std::vector<int> none(steps, 0), all(steps, steps);
  // forward: warp 0 does all its shuffles before warp 1 starts; reverse: the other way round.
  CHECK(run(Schedule::forward()) == std::pair{none, all});
  CHECK(run(Schedule::reverse()) == std::pair{all, none});
  // random: the warp to run is drawn at every collective, so the warps interleave (neither does all its
  // steps before the other starts) unless one is drawn 6 times in a row (odds 1 in 32 per launch).
  int interleaved = 0;
  for (int launch = 0; launch < 20; ++launch) {
    const auto [w0, w1] = run(Schedule::random(static_cast<std::uint64_t>(launch)));
    interleaved += w0 != none && w0 != all && w1 != none && w1 != all;
  }
  CHECK(interleaved >= 10);
}

TEST_CASE("warp sums read from shared memory without a barrier fail deterministically under one schedule",
          "[emulator][schedules]") {
  const int n = 100000;
  const unsigned blocks = 13, threads = 256;
  DeviceArray<float> x(n), partial(blocks);
  double expected = 0;
  for (int i = 0; i < n; ++i) expected += (x[i] = static_cast<float>(i % 100));  // integers: every partial sum exact
  auto sum_of = [&](Schedule s, bool with_barrier) {
    ScheduleGuard guard(s);
    partial.fill(0.0f);
    (with_barrier ? emu_test::block_sum_shuffle : emu_test::block_sum_shuffle_racy)(x.p, n, partial.p, blocks,
                                                                                      threads);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    double total = 0;
    for (unsigned b = 0; b < blocks; ++b) total += partial[b];
    return total;
  };
  // forward: warp 0 reads the other warps' slots before any other warp ran, finding the 0xFF poison
  // (NaN), in every block and every launch; reverse: every other warp wrote its sum before warp 0 ran.
  for (int launch = 0; launch < 3; ++launch) CHECK(std::isnan(sum_of(Schedule::forward(), false)));
  CHECK(sum_of(Schedule::reverse(), false) == expected);
  for (const Schedule& s : kSchedules) CHECK(sum_of(s, true) == expected);
}

TEST_CASE("a warp that runs ahead into the next row's shared partials is caught under reverse",
          "[emulator][schedules]") {
  // The race behind batch norm's per-channel loop: without a barrier before writing its partial, a warp
  // that has finished row r overwrites its slot with row r + 1 while warp 0 may still read the slots.
  const int rows = 5, cols = 1000;
  const unsigned threads = 256;
  DeviceArray<float> x(rows * cols), out(rows);
  std::vector<double> expected(rows, 0.0);
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < cols; ++j) expected[r] += (x[r * cols + j] = static_cast<float>((r * 7 + j) % 50));
  auto wrong_rows = [&](Schedule s, bool with_barrier) {
    ScheduleGuard guard(s);
    out.fill(0.0f);
    emu_test::row_sums(x.p, rows, cols, out.p, threads, with_barrier);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    int wrong = 0;
    for (int r = 0; r < rows; ++r) wrong += out[r] != static_cast<float>(expected[r]);
    return wrong;
  };
  // reverse: warps 7..1 reach row r + 1's write before warp 0 (the last to run) reads row r's partials;
  // forward: warp 0 reads first. Every row but the last is wrong, in every launch.
  for (int launch = 0; launch < 3; ++launch) CHECK(wrong_rows(Schedule::reverse(), false) == rows - 1);
  CHECK(wrong_rows(Schedule::forward(), false) == 0);
  for (const Schedule& s : kSchedules) CHECK(wrong_rows(s, true) == 0);
}

TEST_CASE("block_reduce (kernels/cuda/warp_reduce.cuh) begins with a barrier: callers may read the scratch first",
          "[emulator][schedules]") {
  // Thread 0 broadcasts a scale through scratch[0], every thread reads it, then block_reduce reuses the
  // scratch: without its entry barrier, warp 0 overwrites scratch[0] with its partial before the other
  // warps read the scale (under forward).
  const unsigned threads = 256;
  DeviceArray<float> x(threads), out(threads);
  double sum = 0;
  for (unsigned i = 0; i < threads; ++i) sum += (x[i] = static_cast<float>(i % 9 + 1));
  const float expected = static_cast<float>(sum * x[0]);  // small integers: exact in any order
  for (const Schedule& s : kSchedules) {
    ScheduleGuard guard(s);
    out.fill(0.0f);
    emu_test::broadcast_then_block_reduce(x.p, out.p, threads);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    for (unsigned t = 0; t < threads; ++t) REQUIRE(out[t] == expected);
  }
}

TEST_CASE("atomics from many blocks are exact", "[emulator]") {
  const unsigned blocks = 128, threads = 256, total = blocks * threads;
  DeviceArray<float> fsum(1);
  DeviceArray<double> dsum(1);
  DeviceArray<int> count(1);
  DeviceArray<unsigned> max_gid(1);
  DeviceArray<unsigned long long> cas(1);
  fsum.fill(0), dsum.fill(0), count.fill(0), max_gid.fill(0), cas.fill(0);
  emu_test::atomics(fsum.p, dsum.p, count.p, max_gid.p, cas.p, blocks, threads);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  double expected = 0;
  for (unsigned g = 0; g < total; ++g) expected += g % 7;
  CHECK(fsum[0] == static_cast<float>(expected));  // integer-valued and below 2^24: exact in any order
  CHECK(dsum[0] == expected);
  CHECK(count[0] == static_cast<int>(total));
  CHECK(max_gid[0] == total - 1);
  CHECK(cas[0] == total);
}

TEST_CASE("invalid launch configurations are rejected without running", "[emulator]") {
  DeviceArray<int> out(1);
  struct Case {
    dim3 grid, block;
    std::size_t shmem;
  };
  const Case bad[] = {{1, 1025, 0},        {1, dim3(32, 32, 2), 0}, {1, dim3(1, 1, 65), 0}, {dim3(0), 32, 0},
                      {1, dim3(32, 0), 0}, {dim3(1, 65536), 32, 0}, {1, 32, 228 * 1024 + 1}};
  for (const Case& c : bad) {
    out.fill(0);
    emu_test::launch_with(c.grid, c.block, c.shmem, out.p);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    CHECK(cudaGetLastError() == cudaSuccess);
    CHECK(ember::emu::last_error_message().find("launch with grid") != std::string::npos);
    CHECK(out[0] == 0);
  }
  out.fill(0);
  emu_test::launch_with(dim3(2, 2, 2), dim3(8, 8, 16), 228 * 1024, out.p);  // the limits themselves are fine
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(out[0] == 1);
}

TEST_CASE("runtime API: memory limit, copies, frees, info, streams, events, properties", "[emulator]") {
  const std::size_t base = ember::emu::memory_in_use();
  std::size_t free_before = 0, total = 0, free_after = 0;
  REQUIRE(cudaMemGetInfo(&free_before, &total) == cudaSuccess);
  CHECK(total == std::size_t{16} << 30);
  void* p = nullptr;
  REQUIRE(cudaMalloc(&p, 1 << 20) == cudaSuccess);
  REQUIRE(cudaMemGetInfo(&free_after, &total) == cudaSuccess);
  CHECK(free_before - free_after == std::size_t{1} << 20);
  CHECK(reinterpret_cast<std::uintptr_t>(p) % 256 == 0);

  ember::emu::set_memory_limit(base + (3u << 20));
  void* q = nullptr;
  CHECK(cudaMalloc(&q, 3u << 20) == cudaErrorMemoryAllocation);
  CHECK(q == nullptr);
  CHECK(cudaGetLastError() == cudaErrorMemoryAllocation);
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(cudaMalloc(&q, 2u << 20) == cudaSuccess);
  ember::emu::set_memory_limit(SIZE_MAX);

  std::vector<char> host(1 << 20, 7), back(1 << 20, 0);
  CHECK(cudaMemcpy(p, host.data(), host.size(), cudaMemcpyHostToDevice) == cudaSuccess);
  CHECK(cudaMemcpy(q, p, host.size(), cudaMemcpyDeviceToDevice) == cudaSuccess);
  CHECK(cudaMemcpyAsync(back.data(), q, host.size(), cudaMemcpyDeviceToHost, nullptr) == cudaSuccess);
  CHECK(back == host);
  CHECK(cudaMemset(q, 0, 16) == cudaSuccess);
  CHECK(cudaMemcpy(back.data(), q, 16, cudaMemcpyDefault) == cudaSuccess);
  CHECK(back[0] == 0);
  CHECK(cudaMemcpy(p, host.data(), host.size() + 1, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);  // overruns
  CHECK(cudaMemcpy(back.data(), host.data(), 16, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);     // not device
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  CHECK(cudaFree(nullptr) == cudaSuccess);
  int not_device = 0;
  CHECK(cudaFree(&not_device) == cudaErrorInvalidValue);
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  CHECK(cudaFree(p) == cudaSuccess);
  CHECK(cudaFree(q) == cudaSuccess);
  CHECK(ember::emu::memory_in_use() == base);
  void* pinned = nullptr;
  CHECK(cudaMallocHost(&pinned, 100) == cudaSuccess);
  CHECK(cudaFreeHost(pinned) == cudaSuccess);

  cudaStream_t s = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
  REQUIRE(cudaEventCreate(&start) == cudaSuccess);
  REQUIRE(cudaEventCreate(&stop) == cudaSuccess);
  CHECK(cudaEventRecord(start, s) == cudaSuccess);
  CHECK(cudaEventRecord(stop, s) == cudaSuccess);
  CHECK(cudaStreamSynchronize(s) == cudaSuccess);
  float ms = -1;
  CHECK(cudaEventElapsedTime(&ms, start, stop) == cudaSuccess);
  CHECK(ms >= 0);
  CHECK(cudaEventElapsedTime(&ms, start, nullptr) == cudaErrorInvalidValue);
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  CHECK(cudaEventDestroy(start) == cudaSuccess);
  CHECK(cudaEventDestroy(stop) == cudaSuccess);
  CHECK(cudaStreamDestroy(s) == cudaSuccess);

  int count = 0, dev = -1;
  CHECK((cudaGetDeviceCount(&count) == cudaSuccess && count == ember::emu::device_count() && count >= 1));
  CHECK((cudaSetDevice(0) == cudaSuccess && cudaGetDevice(&dev) == cudaSuccess && dev == 0));
  CHECK(cudaSetDevice(count) == cudaErrorInvalidDevice);
  CHECK(cudaGetLastError() == cudaErrorInvalidDevice);
  cudaDeviceProp prop;
  REQUIRE(cudaGetDeviceProperties(&prop, 0) == cudaSuccess);
  CHECK(std::string(prop.name) == "Ember kernel emulator");
  CHECK((prop.major == 9 && prop.minor == 0 && prop.warpSize == 32 && prop.maxThreadsPerBlock == 1024));
  CHECK((prop.multiProcessorCount > 0 && prop.totalGlobalMem == total && prop.sharedMemPerBlock == 48 * 1024));
  CHECK(std::string(cudaGetErrorName(cudaErrorMemoryAllocation)) == "cudaErrorMemoryAllocation");
  CHECK(std::string(cudaGetErrorString(cudaSuccess)) == "no error");
}

TEST_CASE("EMBER_EMU_SCHEDULE values parse", "[emulator][schedules]") {
  CHECK(ember::emu::parse_schedule("forward") == Schedule::forward());
  CHECK(ember::emu::parse_schedule("reverse") == Schedule::reverse());
  CHECK(ember::emu::parse_schedule("random:7") == Schedule::random(7));
  CHECK(ember::emu::parse_schedule("random") == Schedule::random(0));
  CHECK_FALSE(ember::emu::parse_schedule("random:x").has_value());
  CHECK_FALSE(ember::emu::parse_schedule("backwards").has_value());
}

TEST_CASE("launch throughput (prints timings)", "[.perf]") {
  const int n = 1 << 20;
  DeviceArray<float> a(n), b(n), c(n);
  a.fill(1.0f), b.fill(2.0f);
  DeviceArray<float> partial(4096);
  auto time_ms = [](auto&& fn) {
    fn();  // warm up stacks and workers
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) fn();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 5;
  };
  const double add = time_ms([&] { emu_test::vector_add(a.p, b.p, c.p, n, 4096, 256); });
  const double shared = time_ms([&] { emu_test::block_sum_shared(a.p, n, partial.p, 4096, 256); });
  const double shuffle = time_ms([&] { emu_test::block_sum_shuffle(a.p, n, partial.p, 4096, 256); });
  REQUIRE(cudaGetLastError() == cudaSuccess);
  WARN("workers " << ember::emu::worker_count() << "; 2^20 threads (4096 x 256): vector add " << add
                  << " ms, shared-memory reduction (9 barriers) " << shared << " ms, shuffle reduction " << shuffle
                  << " ms");
}
