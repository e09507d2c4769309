/// @file tests/emulator/test_streams.cpp @brief Tests of the emulated runtime's asynchrony and devices: lazy streams in adversarial order, events, the legacy default stream, pinned vs pageable copies, sticky faults, several devices, counters, the device-work API of the library fakes.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cuda/emulator/device_work.h"
#include "kernels/cuda/emulator/launch.h"
#include "tests/emulator/stream_kernels.h"

using ember::emu::StreamMode;

namespace {

constexpr int kN = 1000;

/// cudaMalloc'd floats, freed at scope exit. In the emulator device memory is host memory, so `peek`
/// reads it without synchronizing: what a queued-but-not-run kernel left there (0xFF poison = NaN).
struct Buffer {
  float* p = nullptr;
  explicit Buffer(int n = kN) { REQUIRE(cudaMalloc(&p, n * sizeof(float)) == cudaSuccess); }
  ~Buffer() { cudaFree(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  float peek(int i) const { return p[i]; }
  /// Copies back with a blocking cudaMemcpy (which waits only for the legacy default stream's work).
  std::vector<float> read(int n = kN) const {
    std::vector<float> h(n);
    REQUIRE(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
    return h;
  }
};

struct Stream {
  cudaStream_t s = nullptr;
  explicit Stream(unsigned flags = cudaStreamNonBlocking) {
    REQUIRE(cudaStreamCreateWithFlags(&s, flags) == cudaSuccess);
  }
  ~Stream() { cudaStreamDestroy(s); }
};
struct Event {
  cudaEvent_t e = nullptr;
  Event() { REQUIRE(cudaEventCreateWithFlags(&e, cudaEventDisableTiming) == cudaSuccess); }
  ~Event() { cudaEventDestroy(e); }
};

struct ModeGuard {
  StreamMode saved = ember::emu::stream_mode();
  explicit ModeGuard(StreamMode m) { ember::emu::set_stream_mode(m); }
  ~ModeGuard() { ember::emu::set_stream_mode(saved); }
};
struct DeviceGuard {
  int saved = 0;
  explicit DeviceGuard(int d) {
    cudaGetDevice(&saved);
    REQUIRE(cudaSetDevice(d) == cudaSuccess);
  }
  ~DeviceGuard() { cudaSetDevice(saved); }
};

bool all_equal(const std::vector<float>& v, float x) {
  for (float f : v)
    if (f != x) return false;
  return true;
}

/// Producer on one stream fills `a` with 2; consumer on another computes b = a + 1, after a
/// cudaStreamWaitEvent on the producer's event or (the bug) without it. Returns b after syncing the
/// consumer stream only.
std::vector<float> producer_consumer(bool with_wait) {
  ModeGuard lazy(StreamMode::lazy);
  Stream producer, consumer;
  Event produced;
  Buffer a, b;
  emu_test::fill(a.p, kN, 2.0f, producer.s);
  REQUIRE(cudaEventRecord(produced.e, producer.s) == cudaSuccess);
  if (with_wait) REQUIRE(cudaStreamWaitEvent(consumer.s, produced.e, 0) == cudaSuccess);
  emu_test::add_one(a.p, b.p, kN, consumer.s);
  REQUIRE(cudaStreamSynchronize(consumer.s) == cudaSuccess);
  std::vector<float> out(kN);
  std::memcpy(out.data(), b.p, sizeof(float) * kN);  // the consumer's stream is synchronized
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  return out;
}

}  // namespace

TEST_CASE("lazy streams: queued work runs only when something waits for it", "[emulator][streams]") {
  ModeGuard lazy(StreamMode::lazy);
  Stream s;
  Buffer a;
  emu_test::fill(a.p, kN, 3.0f, s.s);
  CHECK(std::isnan(a.peek(0)));  // still queued: the allocation's poison
  CHECK(cudaStreamQuery(s.s) == cudaErrorNotReady);
  REQUIRE(cudaStreamSynchronize(s.s) == cudaSuccess);
  CHECK(a.peek(0) == 3.0f);
  CHECK(a.peek(kN - 1) == 3.0f);
  CHECK(cudaStreamQuery(s.s) == cudaSuccess);
}

TEST_CASE("eager streams run work when it is queued", "[emulator][streams]") {
  ModeGuard eager(StreamMode::eager);
  Stream s;
  Buffer a;
  emu_test::fill(a.p, kN, 3.0f, s.s);
  CHECK(a.peek(kN - 1) == 3.0f);
  CHECK(ember::emu::parse_stream_mode("eager") == StreamMode::eager);
  CHECK_FALSE(ember::emu::parse_stream_mode("sometimes").has_value());
}

TEST_CASE("a missing cudaStreamWaitEvent between producer and consumer fails every time", "[emulator][streams]") {
  CHECK(all_equal(producer_consumer(true), 3.0f));
  for (int run = 0; run < 3; ++run) {
    const std::vector<float> b = producer_consumer(false);
    CHECK(std::isnan(b[0]));  // the consumer ran first and read the producer's unwritten (poisoned) output
    CHECK(std::isnan(b[kN - 1]));
  }
}

TEST_CASE("a device-wide sync runs the most recently queued stream first", "[emulator][streams]") {
  ModeGuard lazy(StreamMode::lazy);
  Stream producer, consumer;
  Buffer a, b;
  emu_test::fill(a.p, kN, 5.0f, producer.s);
  emu_test::add_one(a.p, b.p, kN, consumer.s);  // no wait: a race
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  CHECK(std::isnan(b.peek(0)));  // consumer before producer, although queued after it
  CHECK(a.peek(0) == 5.0f);      // the producer did run
}

TEST_CASE("an event orders work across streams and completes when its stream reaches it", "[emulator][streams]") {
  ModeGuard lazy(StreamMode::lazy);
  Stream s1, s2;
  Event e;
  Buffer a, b;
  CHECK(cudaEventQuery(e.e) == cudaSuccess);  // never recorded: complete
  emu_test::fill(a.p, kN, 1.0f, s1.s);
  REQUIRE(cudaEventRecord(e.e, s1.s) == cudaSuccess);
  emu_test::fill(a.p, kN, 7.0f, s1.s);  // after the record: not needed by waiters of e
  REQUIRE(cudaStreamWaitEvent(s2.s, e.e, 0) == cudaSuccess);
  emu_test::add_one(a.p, b.p, kN, s2.s);
  REQUIRE(cudaStreamSynchronize(s2.s) == cudaSuccess);
  CHECK(b.peek(0) == 2.0f);   // saw the first fill only
  CHECK(a.peek(0) == 1.0f);   // s1's second fill is still queued: nothing needed it
  CHECK(cudaEventQuery(e.e) == cudaSuccess);
  REQUIRE(cudaEventSynchronize(e.e) == cudaSuccess);
  REQUIRE(cudaStreamSynchronize(s1.s) == cudaSuccess);
  CHECK(a.peek(0) == 7.0f);
  CHECK(cudaStreamWaitEvent(s2.s, e.e, 5) == cudaErrorInvalidValue);
  (void)cudaGetLastError();
}

TEST_CASE("cudaEventQuery answers not-ready once, then makes progress", "[emulator][streams]") {
  ModeGuard lazy(StreamMode::lazy);
  Stream s;
  Event e;
  Buffer a;
  emu_test::fill(a.p, kN, 1.0f, s.s);
  REQUIRE(cudaEventRecord(e.e, s.s) == cudaSuccess);
  CHECK(cudaEventQuery(e.e) == cudaErrorNotReady);
  CHECK(std::isnan(a.peek(0)));
  int polls = 0;
  while (cudaEventQuery(e.e) == cudaErrorNotReady && polls < 10) ++polls;
  CHECK(polls == 0);
  CHECK(a.peek(0) == 1.0f);
}

TEST_CASE("the legacy default stream orders blocking streams but not non-blocking ones", "[emulator][streams]") {
  ModeGuard lazy(StreamMode::lazy);
  Buffer a, b, c;
  {
    Stream blocking(cudaStreamDefault);
    emu_test::fill(a.p, kN, 4.0f, blocking.s);
    emu_test::add_one(a.p, b.p, kN, nullptr);  // legacy stream: implicitly after the blocking stream's work
    CHECK(all_equal(b.read(), 5.0f));        // cudaMemcpy synchronizes the legacy stream
  }
  {
    Stream nonblocking(cudaStreamNonBlocking);
    emu_test::fill(c.p, kN, 4.0f, nonblocking.s);
    emu_test::add_one(c.p, b.p, kN, nullptr);  // not ordered after the non-blocking stream: a race
    const std::vector<float> got = b.read();
    CHECK(std::isnan(got[0]));
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  }
  {
    Stream blocking(cudaStreamDefault);
    emu_test::fill(a.p, kN, 8.0f, nullptr);
    emu_test::add_one(a.p, c.p, kN, blocking.s);  // a blocking stream waits for the legacy stream's work
    REQUIRE(cudaStreamSynchronize(blocking.s) == cudaSuccess);
    CHECK(c.peek(0) == 9.0f);
  }
}

TEST_CASE("async copies: pageable sources are staged at the call, pinned ones read when the copy runs", "[emulator][streams]") {
  ModeGuard lazy(StreamMode::lazy);
  Stream s;
  Buffer a, b;
  std::vector<float> pageable(kN, 1.0f);
  float* pinned = nullptr;
  REQUIRE(cudaMallocHost(&pinned, kN * sizeof(float)) == cudaSuccess);
  std::fill(pinned, pinned + kN, 1.0f);
  REQUIRE(cudaMemcpyAsync(a.p, pageable.data(), kN * sizeof(float), cudaMemcpyHostToDevice, s.s) == cudaSuccess);
  REQUIRE(cudaMemcpyAsync(b.p, pinned, kN * sizeof(float), cudaMemcpyHostToDevice, s.s) == cudaSuccess);
  std::fill(pageable.begin(), pageable.end(), 2.0f);  // too late: staged
  std::fill(pinned, pinned + kN, 2.0f);               // the copy has not read it yet
  REQUIRE(cudaStreamSynchronize(s.s) == cudaSuccess);
  CHECK(a.peek(0) == 1.0f);
  CHECK(b.peek(0) == 2.0f);
  // Device to pinned host memory is asynchronous; to pageable memory it returns when done.
  emu_test::fill(a.p, kN, 6.0f, s.s);
  REQUIRE(cudaMemcpyAsync(pinned, a.p, kN * sizeof(float), cudaMemcpyDeviceToHost, s.s) == cudaSuccess);
  CHECK(pinned[0] == 2.0f);
  REQUIRE(cudaMemcpyAsync(pageable.data(), a.p, kN * sizeof(float), cudaMemcpyDeviceToHost, s.s) == cudaSuccess);
  CHECK(pageable[0] == 6.0f);
  CHECK(pinned[0] == 6.0f);  // queued before the blocking copy, so it ran too
  CHECK(cudaFreeHost(pinned) == cudaSuccess);
}

TEST_CASE("counters count launches, host synchronizations and bytes per host thread", "[emulator][streams]") {
  ModeGuard lazy(StreamMode::lazy);
  Stream s;
  Buffer a;
  std::vector<float> host(kN, 1.0f);
  ember::emu::reset_counters();
  REQUIRE(cudaMemcpyAsync(a.p, host.data(), kN * sizeof(float), cudaMemcpyHostToDevice, s.s) == cudaSuccess);
  emu_test::add_one(a.p, a.p, kN, s.s);
  emu_test::add_one(a.p, a.p, kN, s.s);
  const auto queued = ember::emu::counters();
  CHECK(queued.kernel_launches == 2);
  CHECK(queued.host_syncs == 0);
  CHECK(queued.bytes_host_to_device == kN * sizeof(float));
  REQUIRE(cudaMemcpyAsync(host.data(), a.p, kN * sizeof(float), cudaMemcpyDeviceToHost, s.s) == cudaSuccess);
  REQUIRE(cudaStreamSynchronize(s.s) == cudaSuccess);
  const auto c = ember::emu::counters();
  CHECK(c.host_syncs == 2);  // the copy into pageable memory blocks, and the synchronize
  CHECK(c.syncs_by_call.at("cudaMemcpyAsync") == 1);
  CHECK(c.syncs_by_call.at("cudaStreamSynchronize") == 1);
  CHECK(c.bytes_device_to_host == kN * sizeof(float));
  CHECK(host[0] == 3.0f);
  ember::emu::reset_counters();
  CHECK(ember::emu::counters().kernel_launches == 0);
}

TEST_CASE("a kernel fault is sticky: every later call on the device reports it until reset", "[emulator][streams]") {
  ModeGuard lazy(StreamMode::lazy);
  Buffer a;
  emu_test::faulty(a.p, nullptr);
  CHECK(cudaGetLastError() == cudaSuccess);  // queued fine; the fault happens when it runs
  CHECK(cudaDeviceSynchronize() == cudaErrorLaunchFailure);
  CHECK(ember::emu::last_error_message().find("exited while") != std::string::npos);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  CHECK(cudaGetLastError() == cudaSuccess);
  void* p = nullptr;
  CHECK(cudaMalloc(&p, 16) == cudaErrorLaunchFailure);
  emu_test::fill(a.p, kN, 1.0f, nullptr);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  REQUIRE(cudaDeviceReset() == cudaSuccess);
  (void)cudaGetLastError();
  emu_test::fill(a.p, kN, 1.0f, nullptr);
  CHECK(cudaDeviceSynchronize() == cudaSuccess);
  CHECK(a.peek(0) == 1.0f);
}

TEST_CASE("the device-work API: queued library operations, span checks, pending work, trace", "[emulator][streams]") {
  ModeGuard lazy(StreamMode::lazy);
  Stream s;
  Buffer a;
  ember::emu::reset_counters();
  ember::emu::set_trace(true);
  int runs = 0;
  REQUIRE(ember::emu::enqueue(s.s, "fakeLibCall", {{a.p, kN * sizeof(float), "a"}}, [&] {
            return ++runs < 3 ? ember::emu::WorkStatus::pending : ember::emu::WorkStatus::done;
          }) == cudaSuccess);
  emu_test::fill(a.p, kN, 1.0f, s.s);
  CHECK(runs == 0);
  CHECK(cudaStreamSynchronize(s.s) == cudaSuccess);
  CHECK(runs == 3);
  CHECK(a.peek(0) == 1.0f);
  CHECK(ember::emu::counters().library_call_count("fakeLibCall") == 1);
  const auto trace = ember::emu::trace();
  REQUIRE(trace.size() == 2);
  CHECK(trace[0].name == "fakeLibCall");
  CHECK(trace[1].name == "kernel");
  CHECK(trace[0].stream == ember::emu::stream_id(s.s));
  CHECK(trace[0].seq < trace[1].seq);
  ember::emu::set_trace(false);

  // A host buffer given as a device operand: the work does not run; the device faults.
  std::vector<float> host(4);
  bool ran = false;
  REQUIRE(ember::emu::enqueue(s.s, "fakeLibCall", {{host.data(), 16, "x"}}, [&] {
            ran = true;
            return ember::emu::WorkStatus::done;
          }) == cudaSuccess);
  CHECK(cudaStreamSynchronize(s.s) == cudaErrorIllegalAddress);
  CHECK_FALSE(ran);
  CHECK(ember::emu::last_error_message().find("operand x") != std::string::npos);
  REQUIRE(cudaDeviceReset() == cudaSuccess);
  (void)cudaGetLastError();

  // Work must not call back into the runtime.
  cudaError_t inner = cudaSuccess;
  REQUIRE(ember::emu::enqueue(s.s, "fakeLibCall", {}, [&] {
            void* p = nullptr;
            inner = cudaMalloc(&p, 4);
            return ember::emu::WorkStatus::done;
          }) == cudaSuccess);
  CHECK(cudaStreamSynchronize(s.s) == cudaSuccess);
  CHECK(inner == cudaErrorNotPermitted);
  (void)cudaGetLastError();
}

TEST_CASE("several devices: ownership of memory, streams and events", "[emulator][devices]") {
  int n = 0;
  REQUIRE(cudaGetDeviceCount(&n) == cudaSuccess);
  CHECK(cudaSetDevice(n) == cudaErrorInvalidDevice);
  (void)cudaGetLastError();
  if (n < 2) {
    WARN("skipped: run with EMBER_EMU_DEVICES=2 (ctest does)");
    return;
  }
  ModeGuard lazy(StreamMode::lazy);
  cudaStream_t s1 = nullptr;
  float* on1 = nullptr;
  cudaEvent_t e1 = nullptr;
  {
    DeviceGuard d1(1);
    REQUIRE(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking) == cudaSuccess);
    REQUIRE(cudaMalloc(&on1, kN * sizeof(float)) == cudaSuccess);
    REQUIRE(cudaEventCreate(&e1) == cudaSuccess);
    CHECK(ember::emu::memory_in_use() >= kN * sizeof(float));
    CHECK(ember::emu::device_of(on1, 4) == 1);
    CHECK(ember::emu::stream_device(s1) == 1);
  }
  DeviceGuard d0(0);
  Buffer on0;
  // A launch on device 0 into a stream of device 1 is refused, like CUDA.
  emu_test::fill(on0.p, kN, 1.0f, s1);
  CHECK(cudaGetLastError() == cudaErrorInvalidResourceHandle);
  CHECK(ember::emu::last_error_message().find("stream of device 1") != std::string::npos);
  // An event of device 1 cannot be recorded on device 0's stream; waiting on it across devices is fine.
  CHECK(cudaEventRecord(e1, nullptr) == cudaErrorInvalidResourceHandle);
  (void)cudaGetLastError();
  {
    DeviceGuard d1(1);
    emu_test::fill(on1, kN, 2.0f, s1);
    REQUIRE(cudaEventRecord(e1, s1) == cudaSuccess);
  }
  Stream s0;
  REQUIRE(cudaStreamWaitEvent(s0.s, e1, 0) == cudaSuccess);
  REQUIRE(cudaMemcpyAsync(on0.p, on1, kN * sizeof(float), cudaMemcpyDeviceToDevice, s0.s) == cudaSuccess);  // a peer copy
  REQUIRE(cudaStreamSynchronize(s0.s) == cudaSuccess);
  CHECK(on0.peek(0) == 2.0f);
  // A kernel on device 0 that is given device 1's memory faults (no peer access); device 1 is unaffected.
  emu_test::add_one(on1, on0.p, kN, s0.s);
  CHECK(cudaStreamSynchronize(s0.s) == cudaErrorIllegalAddress);
  CHECK(ember::emu::last_error_message().find("of device 1's memory") != std::string::npos);
  {
    DeviceGuard d1(1);
    (void)cudaGetLastError();
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(cudaStreamDestroy(s1) == cudaSuccess);
    CHECK(cudaEventDestroy(e1) == cudaSuccess);
    CHECK(cudaFree(on1) == cudaSuccess);
  }
  REQUIRE(cudaDeviceReset() == cudaSuccess);
  (void)cudaGetLastError();
}

TEST_CASE("several devices: pointers inside by-value structs are checked, padding bytes are not",
          "[emulator][devices]") {
  int n = 0;
  REQUIRE(cudaGetDeviceCount(&n) == cudaSuccess);
  if (n < 2) {
    WARN("skipped: run with EMBER_EMU_DEVICES=2 (ctest does)");
    return;
  }
  ModeGuard lazy(StreamMode::lazy);
  float* on1 = nullptr;
  {
    DeviceGuard d1(1);
    REQUIRE(cudaMalloc(&on1, kN * sizeof(float)) == cudaSuccess);
  }
  DeviceGuard d0(0);
  Buffer on0;
  Stream s0;
  emu_test::fill(on0.p, kN, 2.0f, s0.s);
  // The padding after `add` holds stale bits that, with add's byte, spell an address inside device 1's
  // allocation (cudaMalloc is 256-byte aligned, so on1 + 1): a correct launch, which must run.
  emu_test::PaddedArgs padded{};
  const std::uintptr_t stale = reinterpret_cast<std::uintptr_t>(on1) | 1u;
  std::memcpy(reinterpret_cast<unsigned char*>(&padded) + offsetof(emu_test::PaddedArgs, add), &stale, sizeof stale);
  padded.scale = 3.0;
  padded.shift = 0.5;
  padded.add = true;
  std::vector<const void*> seen;
  auto record = [](const void* address, int, void* ctx) { static_cast<std::vector<const void*>*>(ctx)->push_back(address); };
  ember::emu::detail::visit_addresses(padded, 0, record, &seen);
  CHECK(seen.empty());  // whatever a copy does with the padding, the struct is not scanned
  const emu_test::PointerArgs pointers{on1, on0.p};
  seen.clear();
  ember::emu::detail::visit_addresses(pointers, 0, record, &seen);
  CHECK(seen == std::vector<const void*>{on1, on0.p});
  emu_test::scale_padded(on0.p, kN, padded, s0.s);
  REQUIRE(cudaStreamSynchronize(s0.s) == cudaSuccess);
  CHECK(on0.read()[kN - 1] == 7.5f);
  // A pointer member of device 1's memory in a padding-free struct faults like a pointer argument.
  emu_test::add_one_via(pointers, kN, s0.s);
  CHECK(cudaStreamSynchronize(s0.s) == cudaErrorIllegalAddress);
  CHECK(ember::emu::last_error_message().find("kernel argument 0 holds address") != std::string::npos);
  CHECK(ember::emu::last_error_message().find("of device 1's memory") != std::string::npos);
  {
    DeviceGuard d1(1);
    CHECK(cudaFree(on1) == cudaSuccess);
  }
  REQUIRE(cudaDeviceReset() == cudaSuccess);
  (void)cudaGetLastError();
}
