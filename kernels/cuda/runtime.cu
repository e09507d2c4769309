/// @file kernels/cuda/runtime.cu @brief The CUDA runtime layer: the caching device allocator (one per device) and host <-> device transfers.
//
// No kernels here. A device's allocator hands out blocks that its compute stream (device_context.cu)
// uses; since all of that device's work is ordered on that stream, a block returned by deallocate() may
// be handed to the next allocate() at once. Host reads (to_host) synchronize the stream.
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "core/allocator.h"
#include "kernels/cuda/backend_info.h"
#include "kernels/cuda/common.cuh"
#include "kernels/dispatch.h"
#include "kernels/transfer.h"

namespace ember::cuda {

namespace {

constexpr size_t kSmallLimit = size_t{1} << 20;  // below: 512-byte classes; above: 2 MiB multiples
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t{2} << 20;

/// The size class of a request: the block size actually reserved for it.
size_t size_class(size_t bytes) {
  const size_t r = bytes < kSmallLimit ? kSmallRound : kLargeRound;
  return (bytes + r - 1) / r * r;
}

/// Caching allocator of one device: per-size-class free lists of device blocks; cudaMalloc only on a
/// miss; on a failed cudaMalloc (or one over the simulated limit) the cache is released and the call
/// retried once, then an ember::Error names the request, the bytes in use and the bytes cached.
class CachingAllocator final : public Allocator {
 public:
  explicit CachingAllocator(int device) : device_(device) {}

  void* allocate(size_t bytes) override {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.allocations;
    if (bytes == 0) return nullptr;
    const size_t cls = size_class(bytes);
    void* p = take_cached(cls);
    if (p == nullptr) p = device_malloc(bytes, cls);
    stats_.current_bytes += static_cast<int64_t>(cls);
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
    return p;
  }

  void deallocate(void* p, size_t bytes) override {
    if (p == nullptr) return;
    std::lock_guard<std::mutex> lk(mu_);
    const size_t cls = size_class(bytes);
    free_lists_[cls].push_back(p);  // stream-ordered: later work on the one stream may reuse it
    stats_.current_bytes -= static_cast<int64_t>(cls);
    stats_.cached_bytes += static_cast<int64_t>(cls);
  }

  AllocatorStats stats() const override {
    std::lock_guard<std::mutex> lk(mu_);
    return stats_;
  }

  void reset_peak() override {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.peak_bytes = stats_.current_bytes;
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lk(mu_);
    release_cache();
  }

  void set_limit(int64_t bytes) override {
    std::lock_guard<std::mutex> lk(mu_);
    limit_ = bytes;
  }

 private:
  void* take_cached(size_t cls) {
    auto it = free_lists_.find(cls);
    if (it == free_lists_.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    stats_.cached_bytes -= static_cast<int64_t>(cls);
    return p;
  }

  /// One cudaMalloc of `cls` bytes; nullptr when it fails or would pass the simulated limit, which
  /// counts everything reserved from the device (in use + cached), as a real device's memory does.
  void* try_malloc(size_t cls) {
    if (limit_ > 0 && stats_.current_bytes + stats_.cached_bytes + static_cast<int64_t>(cls) > limit_) return nullptr;
    const kernels::DeviceScope on(Device::cuda(device_));
    void* p = nullptr;
    if (cudaMalloc(&p, cls) != cudaSuccess) {
      (void)cudaGetLastError();  // clear it, or the next launch check would report this OOM
      return nullptr;
    }
    return p;
  }

  void* device_malloc(size_t bytes, size_t cls) {
    void* p = try_malloc(cls);
    if (p == nullptr) {
      release_cache();
      p = try_malloc(cls);
    }
    EMBER_CHECK(p != nullptr, "CUDA out of memory on cuda:", device_, ": requested ", bytes, " bytes (block of ", cls, " bytes) with ",
                stats_.current_bytes, " bytes in use and ", stats_.cached_bytes, " bytes cached (after freeing the cache)",
                limit_ > 0 ? " under a limit of " : "", limit_ > 0 ? std::to_string(limit_) + " bytes" : "");
    return p;
  }

  void release_cache() {
    const kernels::DeviceScope on(Device::cuda(device_));
    for (auto& [cls, blocks] : free_lists_) {
      for (void* p : blocks) {
        (void)cudaFree(p);  // synchronizes the device: no queued kernel still uses p
        stats_.cached_bytes -= static_cast<int64_t>(cls);
      }
      blocks.clear();
    }
    (void)cudaGetLastError();
  }

  const int device_;
  mutable std::mutex mu_;
  AllocatorStats stats_;
  int64_t limit_ = 0;
  std::map<size_t, std::vector<void*>> free_lists_;
};

/// Device `index`'s allocator, created on first use. Never destroyed: tensors released during static
/// destruction may still return blocks to it.
Allocator& allocator_of(int index) {
  static std::mutex mu;
  static auto& allocators = *new std::map<int, std::unique_ptr<CachingAllocator>>();
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) (void)cudaGetLastError();
  EMBER_CHECK(index >= 0 && index < count, "cuda:", index, ": no such device (", count, " CUDA device(s) available)");
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = allocators[index];
  if (!slot) slot = std::make_unique<CachingAllocator>(index);
  return *slot;
}

// ---- transfers (kernels/transfer.h) ----

void from_host(const void* host, Tensor& dst) {
  // From pageable memory the call returns once the source has been staged, so `host` may be reused.
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), host, dst.nbytes(), cudaMemcpyHostToDevice, stream()));
}

void to_host(const Tensor& src, void* host) {
  EMBER_CUDA_CHECK(cudaMemcpyAsync(host, src.data_ptr(), src.nbytes(), cudaMemcpyDeviceToHost, stream()));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void synchronize() { EMBER_CUDA_CHECK(cudaStreamSynchronize(stream())); }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace

const kernels::Registrar registrar([] {
  register_allocator(DeviceType::CUDA, allocator_of);
  auto& t = kernels::table_for<kernels::TransferKernels>(DeviceType::CUDA);
  t.from_host = from_host;
  t.to_host = to_host;
  t.synchronize = synchronize;
  t.device_count = device_count;
#ifdef EMBER_CUDA_EMULATED
  kernels::table_for<kernels::CudaBackendInfo>(DeviceType::CUDA).emulated = true;
#endif
});

}  // namespace ember::cuda
