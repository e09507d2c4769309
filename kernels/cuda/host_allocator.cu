/// @file kernels/cuda/host_allocator.cu @brief The caching allocator of pinned host memory (Tensor::pin_memory): cudaHostAlloc'd blocks in power-of-two size classes, reused; a block freed while a copy from it is still queued is handed out again only after an event recorded behind that copy has completed (polled with cudaEventQuery, never a host synchronization).
//
// No kernels here. This is PyTorch's CachingHostAllocator: a host-to-device copy from pinned memory is
// queued on the device's compute stream and reads the block when the stream gets to it (runtime.cu
// calls record_pinned_use after queuing it), so the host may free the tensor at once, but the block must
// not carry new data before that copy has run. Each such copy records an event (from a per-device pool)
// on its stream; a freed block with events waits in `pending_` until every event reports complete, and
// allocate() polls them first. Blocks are never split or merged: requests round up to a power of two of
// at least 512 bytes and a free block of exactly that class is taken, else a new one is allocated.
#include <algorithm>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "core/allocator.h"
#include "core/counting_allocator.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/host_allocator.h"
#include "kernels/dispatch.h"

namespace ember::cuda {
namespace {

constexpr size_t kMinBlock = 512;
/// A block in use whose copies keep coming (a pinned tensor sent to the device every step) drops its
/// completed events once it holds this many, so the event list stays short.
constexpr size_t kPruneEvents = 8;

size_t size_class(size_t bytes) {
  size_t s = kMinBlock;
  while (s < bytes) s <<= 1;
  return s;
}

/// One cudaHostAlloc'd block; `events` are recorded behind the queued copies that read it (device, event).
struct HostBlock {
  char* ptr = nullptr;
  size_t size = 0;
  bool allocated = false;
  std::vector<std::pair<int, cudaEvent_t>> events;
};

class CachingHostAllocator final : public CountingAllocator {
 public:
  void* allocate(size_t bytes) override {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.allocations;
    if (bytes == 0) return nullptr;
    const size_t size = size_class(bytes);
    EMBER_CHECK(within_limit(static_cast<int64_t>(size)), "pinned host memory: out of memory: requested ", bytes,
                " bytes with ", stats_.current_bytes, " bytes in use and a limit of ", limit_, " bytes");
    process_pending();
    HostBlock* b = nullptr;
    auto& free_list = free_[size];
    if (!free_list.empty()) {
      b = free_list.back();
      free_list.pop_back();
    } else {
      b = new_block(bytes, size);
    }
    b->allocated = true;
    count_in_use(static_cast<int64_t>(size));
    return b->ptr;
  }

  void deallocate(void* p, size_t) override {
    if (p == nullptr) return;
    std::lock_guard<std::mutex> lk(mu_);
    auto it = blocks_.find(static_cast<char*>(p));
    EMBER_CHECK(it != blocks_.end() && it->second.allocated, "pinned host allocator: pointer ", p,
                " was not allocated here");
    HostBlock* b = &it->second;
    b->allocated = false;
    count_in_use(-static_cast<int64_t>(b->size));
    if (b->events.empty()) {
      free_[b->size].push_back(b);
    } else {
      pending_.push_back(b);  // a queued copy may still read it
    }
  }

  void record_use(const void* host, cudaStream_t stream) {
    std::lock_guard<std::mutex> lk(mu_);
    HostBlock* b = containing(host);
    if (b == nullptr) return;
    if (b->events.size() >= kPruneEvents) drop_completed(*b);
    const int device = current_device();
    cudaEvent_t e = take_event(device);
    const cudaError_t err = cudaEventRecord(e, stream);
    if (err != cudaSuccess) {
      event_pool_[device].push_back(e);
      EMBER_CUDA_CHECK(err);
    }
    b->events.emplace_back(device, e);
  }

  /// Returns the free blocks to the system (cudaFreeHost); blocks still awaiting their copies stay.
  void empty_cache() override {
    std::lock_guard<std::mutex> lk(mu_);
    process_pending();
    release_free();
  }

 private:
  /// The block containing `p`, or nullptr.
  HostBlock* containing(const void* p) {
    const char* c = static_cast<const char*>(p);
    auto it = blocks_.upper_bound(const_cast<char*>(c));
    if (it == blocks_.begin()) return nullptr;
    --it;
    return c < it->first + it->second.size ? &it->second : nullptr;
  }

  /// True when the event has completed. A query that fails for another reason than "not ready" (a
  /// faulted device) counts as not complete: the block then stays out of use, the safe side.
  static bool completed(cudaEvent_t e) {
    const cudaError_t r = cudaEventQuery(e);
    if (r == cudaSuccess) return true;
    if (r != cudaErrorNotReady) (void)cudaGetLastError();
    return false;
  }

  /// Returns b's completed events to the pool; true when none is left.
  bool drop_completed(HostBlock& b) {
    auto keep = std::stable_partition(b.events.begin(), b.events.end(),
                                      [](const std::pair<int, cudaEvent_t>& de) { return !completed(de.second); });
    for (auto it = keep; it != b.events.end(); ++it) event_pool_[it->first].push_back(it->second);
    b.events.erase(keep, b.events.end());
    return b.events.empty();
  }

  /// Moves every freed block whose copies have all completed to the free lists (polls, never waits).
  void process_pending() {
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (drop_completed(**it)) {
        free_[(*it)->size].push_back(*it);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }

  /// An event of `device` (the current device) from the pool, or a new one without timing.
  cudaEvent_t take_event(int device) {
    auto& pool = event_pool_[device];
    if (!pool.empty()) {
      cudaEvent_t e = pool.back();
      pool.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
  }

  /// A new block from cudaHostAlloc; when that fails, the free blocks are released and it is tried once more.
  HostBlock* new_block(size_t bytes, size_t size) {
    void* p = nullptr;
    cudaError_t err = cudaHostAlloc(&p, size, cudaHostAllocPortable);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      release_free();
      err = cudaHostAlloc(&p, size, cudaHostAllocPortable);
    }
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      EMBER_FAIL("pinned host memory: cudaHostAlloc of ", size, " bytes (for a request of ", bytes, ") failed: ",
                 cudaGetErrorName(err), ", with ", stats_.current_bytes, " bytes in use and ", stats_.cached_bytes,
                 " bytes cached");
    }
    HostBlock& b = blocks_[static_cast<char*>(p)];
    b.ptr = static_cast<char*>(p);
    b.size = size;
    count_reserved(static_cast<int64_t>(size));
    return &b;
  }

  void release_free() {
    for (auto& [size, list] : free_) {
      for (HostBlock* b : list) {
        (void)cudaFreeHost(b->ptr);
        count_reserved(-static_cast<int64_t>(b->size));
        blocks_.erase(b->ptr);
      }
      list.clear();
    }
    (void)cudaGetLastError();
  }

  std::map<char*, HostBlock> blocks_;                  ///< every block, by address (node-based: stable pointers)
  std::map<size_t, std::vector<HostBlock*>> free_;     ///< free blocks whose copies are done, by size class
  std::vector<HostBlock*> pending_;                    ///< freed blocks with copies possibly still queued
  std::map<int, std::vector<cudaEvent_t>> event_pool_;  ///< completed events per device, for reuse
};

CachingHostAllocator& instance() {
  static auto* a = new CachingHostAllocator();  // never destroyed: tensors freed in static destructors return here
  return *a;
}

Allocator& pinned_allocator_of() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) (void)cudaGetLastError();
  EMBER_CHECK(count > 0, "pinned host memory needs a CUDA device, and there is none (0 CUDA devices available)");
  return instance();
}

}  // namespace

void record_pinned_use(const void* host, cudaStream_t stream) { instance().record_use(host, stream); }

const kernels::Registrar host_allocator_registrar([] { register_pinned_allocator(DeviceType::CUDA, pinned_allocator_of); });

}  // namespace ember::cuda
