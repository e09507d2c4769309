/// @file tests/emulated/test_pinned.cpp @brief Pinned host memory on emulated CUDA: a copy from a pinned tensor is queued without a host synchronization and arrives intact under lazy streams; the caching host allocator never hands out a block that a queued copy still reads; the DataLoader's pinned batches equal the ordinary ones; the errors.
#include <catch2/catch.hpp>

#include <algorithm>

#include "core/allocator.h"
#include "data/dataloader.h"
#include "kernels/cuda/device_context.h"
#include "kernels/cuda/emulator/runtime.h"
#include "kernels/transfer.h"
#include "tests/kernels/cuda_test_util.h"

using namespace ember;
using Catch::Matchers::Contains;

namespace {

/// Lazy streams while it lives: queued work runs only when something waits for it, so a copy that reads
/// its source late really does read it late.
struct LazyStreams {
  emu::StreamMode saved = emu::stream_mode();
  LazyStreams() { emu::set_stream_mode(emu::StreamMode::lazy); }
  ~LazyStreams() { emu::set_stream_mode(saved); }
};

/// n samples of shape [1, 2, 2]; sample i holds pixels 4i .. 4i+3 (mod 256), label i % 10.
std::shared_ptr<data::ImageDataset> small_dataset(int64_t n) {
  std::vector<uint8_t> px;
  std::vector<int64_t> y;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < 4; ++j) px.push_back(static_cast<uint8_t>((4 * i + j) % 256));
    y.push_back(i % 10);
  }
  return std::make_shared<data::ImageDataset>(px, y, Shape{1, 2, 2}, 10);
}

}  // namespace

TEST_CASE("a copy from pinned memory to CUDA is queued without a host synchronization and arrives intact",
          "[emulated][pinned][cuda]") {
  const LazyStreams lazy;
  const Tensor h = test::random_input({5000}, 11);
  const Tensor p = h.pin_memory();
  CHECK(p.is_pinned());
  CHECK_FALSE(h.is_pinned());
  CHECK(p.device() == Device::cpu());
  CHECK(p.data_ptr() != h.data_ptr());
  CHECK(p.to_vector<float>() == h.to_vector<float>());
  CHECK(p.pin_memory().is_same(p));  // pinned already: the tensor itself, as in PyTorch

  emu::reset_counters();
  emu::set_trace(true);
  const Tensor d = p.to(test::kCuda, /*non_blocking=*/true);
  const auto trace = emu::trace();
  emu::set_trace(false);
  const emu::Counters c = emu::counters();
  CHECK(c.host_syncs == 0);
  CHECK(c.bytes_host_to_device == 5000 * sizeof(float));
  // Queued on the device's compute stream, followed by the event that guards the pinned block.
  const std::uint64_t compute = emu::stream_id(cuda::stream());
  const auto copy = std::find_if(trace.begin(), trace.end(), [](const emu::TraceEntry& e) {
    return e.name == "cudaMemcpyAsync";
  });
  REQUIRE(copy != trace.end());
  REQUIRE(copy + 1 != trace.end());
  CHECK(copy->stream == compute);
  CHECK(copy[1].name == "cudaEventRecord");
  CHECK(copy[1].stream == compute);
  // The data arrives under lazy streams, through later device work on the same stream.
  CHECK(test::max_ulp((d * 2.0 + 1.0), h * 2.0 + 1.0) == 0);

  // copy_ into a device tensor is PyTorch's copy_(src, non_blocking = false): from pinned memory it waits.
  Tensor dst = empty({5000}, test::kOnCuda);
  emu::reset_counters();
  dst.copy_(p);
  CHECK(emu::counters().host_syncs == 1);
  CHECK(dst.to_vector<float>() == h.to_vector<float>());
}

TEST_CASE("a non-blocking copy from pinned memory reads its source when it runs; to(device) waits for it",
          "[emulated][pinned][cuda]") {
  const LazyStreams lazy;
  const Tensor h = full({1000}, 1.0);
  Tensor p = h.pin_memory();
  // Queued, not staged: a write into the pinned source before the device got there is what arrives
  // (the rule of PyTorch's non_blocking copies, documented on Tensor::to).
  const Tensor late = p.to(test::kCuda, /*non_blocking=*/true);
  std::fill_n(p.data<float>(), 1000, 2.0f);
  CHECK(late.to_vector<float>() == std::vector<float>(1000, 2.0f));
  // to(device) (non_blocking = false, PyTorch's default) returns when the copy is complete: one host
  // synchronization, and the source may be written at once.
  emu::reset_counters();
  const Tensor done = p.to(test::kCuda);
  CHECK(emu::counters().host_syncs == 1);
  CHECK(emu::counters().syncs_by_call.at("cudaStreamSynchronize") == 1);
  std::fill_n(p.data<float>(), 1000, 3.0f);
  CHECK(done.to_vector<float>() == std::vector<float>(1000, 2.0f));
  // From pageable memory the source is staged at the call (the emulator, like CUDA, does not make the
  // host wait for the device): written right after, the copy still carries the old values.
  Tensor pageable = full({1000}, 4.0);
  emu::reset_counters();
  const Tensor staged = pageable.to(test::kCuda);
  CHECK(emu::counters().host_syncs == 0);
  std::fill_n(pageable.data<float>(), 1000, 5.0f);
  CHECK(staged.to_vector<float>() == std::vector<float>(1000, 4.0f));
  emu::reset_counters();
  (void)pageable.to(test::kCuda, /*non_blocking=*/false);
  CHECK(emu::counters().host_syncs == 0);  // nothing to wait for: the source was staged
  // Already on the device, or device to host: nothing to wait for beyond what to(d) does.
  emu::reset_counters();
  CHECK(done.to(test::kCuda, false).is_same(done));
  CHECK(emu::counters().host_syncs == 0);
}

TEST_CASE("a pinned block freed while its copy is queued is handed out again only after the copy has run",
          "[emulated][pinned][cuda]") {
  const LazyStreams lazy;
  const Tensor h = test::random_input({3000}, 12);  // 12000 bytes: the 16 KiB size class
  const std::vector<float> expected = h.to_vector<float>();

  SECTION("a new block while the copy is queued; the old one after a synchronization") {
    Tensor p = h.pin_memory();
    const void* first = p.data_ptr();
    const Tensor d = p.to(test::kCuda, true);  // queued: reads `first` when the stream runs it
    p = Tensor();                        // the host frees the block at once
    Tensor q = zeros({3000}).pin_memory();
    CHECK(q.data_ptr() != first);
    std::fill_n(q.data<float>(), 3000, -7.0f);  // the host overwrites its new buffer immediately
    CHECK(d.to_vector<float>() == expected);    // the device got the freed block's bytes
    // The copy has run (to_vector synchronized the stream): the next allocation of the class reuses it.
    const Tensor r = zeros({3000}).pin_memory();
    CHECK(r.data_ptr() == first);
  }

  SECTION("polled with cudaEventQuery: reused once the event reports complete, never a host synchronization") {
    Tensor p = h.pin_memory();
    const void* first = p.data_ptr();
    const Tensor d = p.to(test::kCuda, true);
    p = Tensor();
    emu::reset_counters();
    std::vector<Tensor> held;  // kept alive, so each allocation takes a block of its own
    int reused_at = -1;
    for (int i = 0; i < 4 && reused_at < 0; ++i) {
      held.push_back(zeros({3000}).pin_memory());
      std::fill_n(held.back().data<float>(), 3000, static_cast<float>(-i));
      if (held.back().data_ptr() == first) reused_at = i;
    }
    // The emulator answers the first query of an event "not ready" (the GPU may be busy), then makes
    // progress: the block comes back on the second allocation, not the first.
    CHECK(reused_at == 1);
    CHECK(emu::counters().host_syncs == 0);
    CHECK(d.to_vector<float>() == expected);
  }

  SECTION("statistics: freed blocks are cached, empty_cache returns the free ones") {
    Allocator& pinned = pinned_allocator();
    const AllocatorStats before = pinned.stats();
    {
      const Tensor p = h.pin_memory();
      const AllocatorStats in_use = pinned.stats();
      CHECK(in_use.current_bytes == before.current_bytes + 16384);
      CHECK(in_use.allocations == before.allocations + 1);
    }
    const AllocatorStats after = pinned.stats();
    CHECK(after.current_bytes == before.current_bytes);
    CHECK(after.reserved_bytes == after.current_bytes + after.cached_bytes);
    CHECK(after.cached_bytes >= 16384);
    pinned.empty_cache();
    CHECK(pinned.stats().cached_bytes == 0);
  }
}

TEST_CASE("a pinned tensor sent to the device every step: each copy queued, each arrives, the block is reused after",
          "[emulated][pinned][cuda]") {
  const LazyStreams lazy;
  Tensor p = zeros({700}).pin_memory();  // 2800 bytes: the 4 KiB size class
  const void* block = p.data_ptr();
  std::vector<Tensor> sent;
  emu::reset_counters();
  for (int step = 0; step < 20; ++step) {  // more copies than a live block keeps events for before pruning
    sent.push_back(p.to(test::kCuda, /*non_blocking=*/true));
    if (step % 5 == 4) (void)sent.back().to_vector<float>();  // now and then the host catches up
    // Written only after the device caught up with every earlier copy (the rule on Tensor::to).
    if (step % 5 == 4) std::fill_n(p.data<float>(), 700, static_cast<float>(step + 1));
  }
  CHECK(emu::counters().host_syncs == 4);  // the four host reads, none for the twenty copies
  for (int step = 0; step < 20; ++step) {
    INFO("step " << step);
    CHECK(sent[static_cast<size_t>(step)].to_vector<float>() == std::vector<float>(700, static_cast<float>(step / 5 * 5)));
  }
  p = Tensor();
  CHECK(zeros({700}).pin_memory().data_ptr() == block);  // every copy from it has run
}

TEST_CASE("pinned copies to two GPUs: each guarded by an event of its own device", "[emulated][pinned][devices][cuda]") {
  if (emu::device_count() < 2) {
    WARN("skipped: needs EMBER_EMU_DEVICES=2 (ctest sets it)");
    return;
  }
  const LazyStreams lazy;
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  const Tensor h = test::random_input({900}, 13);
  Tensor p = h.pin_memory();
  const void* block = p.data_ptr();
  emu::reset_counters();
  const Tensor on1 = p.to(Device::cuda(1), true), on0 = p.to(Device::cuda(0), true);  // an event on each device's stream
  CHECK(emu::counters().host_syncs == 0);
  p = Tensor();
  const Tensor q = zeros({900}).pin_memory();  // both copies still queued: a new block
  CHECK(q.data_ptr() != block);
  CHECK(on1.to_vector<float>() == h.to_vector<float>());
  CHECK(on0.to_vector<float>() == h.to_vector<float>());
  CHECK(zeros({900}).pin_memory().data_ptr() == block);  // both devices ran their copies
  int current = -1;
  REQUIRE(cudaGetDevice(&current) == cudaSuccess);
  CHECK(current == 0);
}

TEST_CASE("DataLoader with pin_memory returns pinned batches equal to the ordinary ones", "[emulated][pinned][data][cuda]") {
  const LazyStreams lazy;
  auto ds = small_dataset(23);
  data::DataLoader plain(ds, {.micro_batch = 4, .shuffle = true, .seed = 5});
  data::DataLoader pinned(ds, {.micro_batch = 4, .shuffle = true, .seed = 5, .pin_memory = true});
  CHECK_FALSE(plain.pins_memory());
  CHECK(pinned.pins_memory());
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    plain.set_epoch(epoch);
    pinned.set_epoch(epoch);
    for (int64_t k = 0; k < pinned.steps_per_epoch(); ++k) {
      INFO("epoch " << epoch << ", step " << k);
      const data::Batch a = plain.batch(k), b = pinned.batch(k);
      CHECK_FALSE(a.x.is_pinned());
      CHECK(b.x.is_pinned());
      CHECK(b.y.is_pinned());
      CHECK(b.x.shape() == a.x.shape());
      CHECK(b.x.dtype() == a.x.dtype());
      CHECK(b.y.dtype() == a.y.dtype());
      CHECK(b.x.to_vector<float>() == a.x.to_vector<float>());
      CHECK(b.y.to_vector<int64_t>() == a.y.to_vector<int64_t>());
      CHECK(b.x.to(test::kCuda).to_vector<float>() == a.x.to_vector<float>());
    }
  }
}

TEST_CASE("a training-style loop over pinned batches copies without host synchronizations and recycles the blocks",
          "[emulated][pinned][data][cuda]") {
  const LazyStreams lazy;
  auto ds = small_dataset(64);
  data::DataLoader loader(ds, {.micro_batch = 8, .shuffle = true, .seed = 3, .pin_memory = true});
  const int64_t reserved_before = pinned_allocator().stats().reserved_bytes;
  double total = 0;
  for (int64_t k = 0; k < loader.steps_per_epoch(); ++k) {
    const data::Batch b = loader.batch(k);
    emu::reset_counters();
    const Tensor x = b.x.to(test::kCuda, true), y = b.y.to(test::kCuda, true);
    CHECK(emu::counters().host_syncs == 0);  // the copy of batch k+1 does not wait for batch k's work
    total += sum(x).item();  // the step's host reads synchronize
    for (const int64_t label : y.to_vector<int64_t>()) total += static_cast<double>(label);
  }
  // Each step's blocks come back once its copies have run: at most one batch's blocks (x: 128 bytes ->
  // 512, y: 64 bytes -> 512) were ever added, whatever the number of steps.
  CHECK(pinned_allocator().stats().reserved_bytes - reserved_before <= 2 * 512);
  double expected = 0;
  for (int64_t i = 0; i < 64; ++i) {
    for (int64_t j = 0; j < 4; ++j) expected += static_cast<double>((4 * i + j) % 256) / 255.0;
    expected += static_cast<double>(i % 10);
  }
  CHECK(total == Approx(expected).epsilon(1e-6));
}

TEST_CASE("pin_memory errors: device tensors, tensors that require grad, the CPU's pinned allocator",
          "[emulated][pinned][cuda]") {
  const Tensor d = ones({3}, test::kOnCuda);
  CHECK_FALSE(d.is_pinned());
  CHECK_THROWS_WITH(d.pin_memory(), Contains("pin_memory: only CPU tensors can be pinned") && Contains("on cuda:0"));
  const Tensor w = ones({3}, TensorOptions{}.set_requires_grad(true));
  CHECK_THROWS_WITH(w.pin_memory(), Contains("requires grad") && Contains("detach()"));
  CHECK(w.detach().pin_memory().is_pinned());
  CHECK(has_pinned_allocator(DeviceType::CUDA));
  CHECK_FALSE(has_pinned_allocator(DeviceType::CPU));
  CHECK_THROWS_WITH(pinned_allocator(DeviceType::CPU), Contains("no pinned host memory for cpu"));
  // Without a CUDA device the DataLoader would ignore the option (as PyTorch's does without an
  // accelerator); here one is present, so it holds.
  CHECK(data::DataLoader(small_dataset(4), {.pin_memory = true}).pins_memory());
}
