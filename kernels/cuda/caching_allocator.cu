/// @file kernels/cuda/caching_allocator.cu @brief The caching device allocator, one per device: segments from cudaMalloc split into blocks and coalesced again on free, best fit, statistics of allocated and reserved bytes, a release path with one device synchronization.
//
// No kernels here. Requests round up to 512 bytes. Requests of at most 1 MiB are cut from 2 MiB
// segments (the small pool); larger ones from 20 MiB segments below 10 MiB, else from a segment of
// their own size rounded to 2 MiB (the large pool) — the layout PyTorch's allocator uses. A free block
// is split when the rest is worth keeping (small: >= 512 bytes; large: > 1 MiB) and merged with its free
// neighbours in the segment when returned, so alternating sizes do not fragment the cache. Blocks are
// used by their device's compute stream only (device_context.cu), so a returned block may be handed out
// again at once: later work on that stream runs after the work that used it.
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "core/allocator.h"
#include "core/counting_allocator.h"
#include "kernels/cuda/common.cuh"
#include "kernels/dispatch.h"
#include "kernels/runtime_stats.h"

namespace ember::cuda {
namespace {

constexpr size_t kRound = 512;
constexpr size_t kSmallRequest = size_t{1} << 20;   // up to this: small pool
constexpr size_t kSmallSegment = size_t{2} << 20;
constexpr size_t kLargeSegment = size_t{20} << 20;  // shared by large requests below kOwnSegment
constexpr size_t kOwnSegment = size_t{10} << 20;    // from here: a segment of the request's own size
constexpr size_t kSegmentRound = size_t{2} << 20;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

/// A piece of a segment: allocated or free; prev/next are its neighbours in the segment.
struct Block {
  char* ptr = nullptr;
  size_t size = 0;
  bool small = false, free = true;
  Block *prev = nullptr, *next = nullptr;
};

/// Free blocks ordered by size, then address: lower_bound gives the best fit.
struct BySize {
  bool operator()(const Block* a, const Block* b) const {
    return a->size != b->size ? a->size < b->size : a->ptr < b->ptr;
  }
};

class CachingAllocator final : public CountingAllocator {
 public:
  explicit CachingAllocator(int device) : device_(device) {}

  void* allocate(size_t bytes) override {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.allocations;
    if (bytes == 0) return nullptr;
    const size_t size = round_up(bytes, kRound);
    const bool small = size <= kSmallRequest;
    if (limit_ > 0 && stats_.current_bytes + static_cast<int64_t>(size) > limit_) out_of_memory(bytes, size);
    Block* b = best_fit(size, small);
    if (b == nullptr) b = new_segment(bytes, size, small);
    pool(small).erase(b);
    split(b, size);
    b->free = false;
    live_[b->ptr] = b;
    stats_.current_bytes += static_cast<int64_t>(b->size);
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
    update_cached();
    return b->ptr;
  }

  void deallocate(void* p, size_t) override {
    if (p == nullptr) return;
    std::lock_guard<std::mutex> lk(mu_);
    auto it = live_.find(p);
    EMBER_CHECK(it != live_.end(), "cuda:", device_, " allocator: pointer ", p, " was not allocated here");
    Block* b = it->second;
    live_.erase(it);
    stats_.current_bytes -= static_cast<int64_t>(b->size);
    b->free = true;
    Block *prev = b->prev, *next = b->next;
    b = merge(b, prev);
    b = merge(b, next);
    pool(b->small).insert(b);
    update_cached();
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lk(mu_);
    release_cache();
  }

  // set_limit (CountingAllocator) simulates device memory here: bytes in use may not pass it, nor bytes
  // reserved from the device (a new segment is taken only after releasing the cache fails to make room).

 private:
  std::set<Block*, BySize>& pool(bool small) { return small ? small_pool_ : large_pool_; }

  Block* best_fit(size_t size, bool small) {
    Block key;
    key.size = size;
    auto it = pool(small).lower_bound(&key);
    return it == pool(small).end() ? nullptr : *it;
  }

  /// Cuts `size` bytes off the front of free block b when the rest is worth keeping; the rest stays free.
  void split(Block* b, size_t size) {
    const size_t rest = b->size - size;
    if (b->small ? rest < kRound : rest <= kSmallRequest) return;
    auto* r = new Block{b->ptr + size, rest, b->small, true, b, b->next};
    if (b->next) b->next->prev = r;
    b->next = r;
    b->size = size;
    pool(r->small).insert(r);
  }

  /// Merges free neighbour n into b (b free, out of the pool); returns the merged block.
  Block* merge(Block* b, Block* n) {
    if (n == nullptr || !n->free) return b;
    pool(n->small).erase(n);
    Block* first = n == b->prev ? n : b;
    Block* second = n == b->prev ? b : n;
    first->size += second->size;
    first->next = second->next;
    if (second->next) second->next->prev = first;
    delete second;
    return first;
  }

  size_t segment_size(size_t size, bool small) const {
    if (small) return kSmallSegment;
    return size < kOwnSegment ? kLargeSegment : round_up(size, kSegmentRound);
  }

  /// One cudaMalloc of a segment (a free block in its pool); releases the cache and retries once when the
  /// device (or the simulated limit, which counts everything reserved) has no room; then throws.
  Block* new_segment(size_t bytes, size_t size, bool small) {
    const size_t seg = segment_size(size, small);
    char* p = try_malloc(seg);
    if (p == nullptr) {
      release_cache();
      p = try_malloc(seg);
    }
    if (p == nullptr) out_of_memory(bytes, seg);
    auto* b = new Block{p, seg, small, true, nullptr, nullptr};
    pool(small).insert(b);
    stats_.reserved_bytes += static_cast<int64_t>(seg);
    stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
    return b;
  }

  [[noreturn]] void out_of_memory(size_t bytes, size_t needed) const {
    EMBER_FAIL("CUDA out of memory on cuda:", device_, ": requested ", bytes, " bytes (", needed, " more bytes needed) with ",
               stats_.current_bytes, " bytes in use and ", stats_.cached_bytes, " bytes cached (after freeing the cache)",
               limit_ > 0 ? " under a limit of " : "", limit_ > 0 ? std::to_string(limit_) + " bytes" : "");
  }

  char* try_malloc(size_t seg) {
    if (limit_ > 0 && stats_.reserved_bytes + static_cast<int64_t>(seg) > limit_) return nullptr;
    const kernels::DeviceScope on(Device::cuda(device_));
    void* p = nullptr;
    if (cudaMalloc(&p, seg) != cudaSuccess) {
      (void)cudaGetLastError();  // clear it, or the next launch check would report this OOM
      return nullptr;
    }
    return static_cast<char*>(p);
  }

  /// Frees every segment that is entirely free, after one device synchronization: no queued work can
  /// still use them, so the cudaFree calls do not wait.
  void release_cache() {
    const kernels::DeviceScope on(Device::cuda(device_));
    (void)cudaDeviceSynchronize();
    kernels::count_host_sync(DeviceType::CUDA);
    for (auto* pool : {&small_pool_, &large_pool_}) {
      for (auto it = pool->begin(); it != pool->end();) {
        Block* b = *it;
        if (b->prev != nullptr || b->next != nullptr) {
          ++it;
          continue;
        }
        (void)cudaFree(b->ptr);
        stats_.reserved_bytes -= static_cast<int64_t>(b->size);
        it = pool->erase(it);
        delete b;
      }
    }
    (void)cudaGetLastError();
    update_cached();
  }

  void update_cached() { stats_.cached_bytes = stats_.reserved_bytes - stats_.current_bytes; }

  const int device_;
  std::set<Block*, BySize> small_pool_, large_pool_;
  std::unordered_map<void*, Block*> live_;
};

}  // namespace

Allocator& allocator_of(int index) {
  static std::mutex mu;
  static auto& allocators = *new std::map<int, std::unique_ptr<CachingAllocator>>();  // never destroyed
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) (void)cudaGetLastError();
  EMBER_CHECK(index >= 0 && index < count, "cuda:", index, ": no such device (", count, " CUDA device(s) available)");
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = allocators[index];
  if (!slot) slot = std::make_unique<CachingAllocator>(index);
  return *slot;
}

const kernels::Registrar allocator_registrar([] { register_allocator(DeviceType::CUDA, allocator_of); });

}  // namespace ember::cuda
