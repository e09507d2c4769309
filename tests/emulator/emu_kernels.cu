/// @file tests/emulator/emu_kernels.cu @brief Test kernels for the kernel emulator; plain CUDA (also compiles with nvcc). Lines marked "// @name" are looked up by the tests.
#include "tests/emulator/emu_kernels.h"

#include "kernels/cuda/warp_reduce.cuh"

namespace emu_test {
namespace {

__device__ __forceinline__ unsigned lane_id() {
  return (threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) % 32u;
}

template <class T>
__device__ T shfl(ShflOp op, unsigned mask, T v, int arg, int width) {
  switch (op) {
    case kShflIdx:
      return __shfl_sync(mask, v, arg, width);
    case kShflUp:
      return __shfl_up_sync(mask, v, static_cast<unsigned>(arg), width);
    case kShflDown:
      return __shfl_down_sync(mask, v, static_cast<unsigned>(arg), width);
    default:
      return __shfl_xor_sync(mask, v, arg, width);
  }
}

/// Counts its destruction: lets the tests see that threads of an abandoned block were unwound.
struct DestructionCounter {
  int* counter;
  __device__ ~DestructionCounter() { atomicAdd(counter, 1); }
};

// grid-stride loop; any grid
__global__ void vector_add_kernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c,
                                  int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) c[i] = a[i] + b[i];
}

// blockDim.x a power of 2 <= 1024; tree reduction in static shared memory
__global__ void block_sum_shared_kernel(const float* x, int n, float* partial) {
  EMBER_SHARED(float[1024], s);
  float v = 0.0f;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v += x[i];
  s[threadIdx.x] = v;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
}

// blockDim.x a multiple of 32; shuffles within warps, then warp 0 over the warp sums
__global__ void block_sum_shuffle_kernel(const float* x, int n, float* partial) {
  EMBER_SHARED(float[32], warp_sums);
  float v = 0.0f;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v += x[i];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    v = threadIdx.x < blockDim.x / 32 ? warp_sums[threadIdx.x] : 0.0f;
    for (int mask = 16; mask > 0; mask /= 2) v += __shfl_xor_sync(0xffffffffu, v, mask);
    if (threadIdx.x == 0) partial[blockIdx.x] = v;
  }
}

__global__ void dynamic_shared_poison_kernel(unsigned* not_poisoned, unsigned bytes) {
  EMBER_DYNAMIC_SHARED(unsigned char, raw);
  unsigned bad = 0;
  for (unsigned i = threadIdx.x; i < bytes; i += blockDim.x) bad += raw[i] != 0xFFu;
  __syncthreads();
  for (unsigned i = threadIdx.x; i < bytes; i += blockDim.x) raw[i] = static_cast<unsigned char>(i);
  atomicAdd(not_poisoned, bad);
}

struct SharedRecord {
  double value;
  int count[5];
};

__global__ void static_shared_poison_kernel(unsigned* not_poisoned) {
  EMBER_SHARED(unsigned char[1000], raw);
  EMBER_SHARED(SharedRecord, record);
  const unsigned char* rec = reinterpret_cast<const unsigned char*>(&record);
  unsigned bad = 0;
  for (unsigned i = threadIdx.x; i < sizeof raw; i += blockDim.x) bad += raw[i] != 0xFFu;
  for (unsigned i = threadIdx.x; i < sizeof record; i += blockDim.x) bad += rec[i] != 0xFFu;
  __syncthreads();
  for (unsigned i = threadIdx.x; i < sizeof raw; i += blockDim.x) raw[i] = static_cast<unsigned char>(i);
  if (threadIdx.x == 0) record = SharedRecord{1.0, {0, 0, 0, 0, 0}};
  atomicAdd(not_poisoned, bad);
}

__global__ void dynamic_shared_reverse_kernel(const float* in, float* out) {
  EMBER_DYNAMIC_SHARED(float, buf);
  const unsigned base = blockIdx.x * blockDim.x;
  buf[threadIdx.x] = in[base + threadIdx.x];
  __syncthreads();
  out[base + threadIdx.x] = buf[blockDim.x - 1 - threadIdx.x];
}

__global__ void shuffle_kernel(ShflOp op, int arg, int width, int* out_i, float* out_f, double* out_d,
                               long long* out_ll) {
  const unsigned t = threadIdx.x;  // lane * 7 + 3 in warp 0; warp 1's values differ from warp 0's
  out_i[t] = shfl(op, 0xffffffffu, static_cast<int>(t * 7 + 3), arg, width);
  out_f[t] = shfl(op, 0xffffffffu, 1.0f / static_cast<float>(t + 3), arg, width);
  out_d[t] = shfl(op, 0xffffffffu, 1.0 / static_cast<double>(t + 3), arg, width);
  out_ll[t] = shfl(op, 0xffffffffu, static_cast<long long>(t + 1) * 0x0123456789ABCDLL, arg, width);
}

__global__ void shuffle_masked_kernel(ShflOp op, unsigned mask, int arg, int width, int* out) {
  const unsigned lane = lane_id();
  int v = -1;
  if ((mask >> lane) & 1u) v = shfl(op, mask, static_cast<int>(lane * 7 + 3), arg, width);
  out[threadIdx.x] = v;
}

__global__ void vote_kernel(unsigned* ballot, int* any, int* all, int* any5, int* all_lt32) {
  const unsigned lane = lane_id(), t = threadIdx.x;
  ballot[t] = __ballot_sync(0xffffffffu, lane % 3 == 0);
  any[t] = __any_sync(0xffffffffu, lane % 3 == 0);
  all[t] = __all_sync(0xffffffffu, lane % 3 == 0);
  any5[t] = __any_sync(0xffffffffu, lane == 5);
  all_lt32[t] = __all_sync(0xffffffffu, lane < 32);
  __syncwarp();
}

__global__ void sync_count_kernel(int* count, int* all, int* any) {
  const int pred = threadIdx.x % 4 == 0;
  count[threadIdx.x] = __syncthreads_count(pred);
  all[threadIdx.x] = __syncthreads_and(pred);
  any[threadIdx.x] = __syncthreads_or(pred);
}

__global__ void indices_kernel(int* out) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  int* o = out + 6 * (block * blockDim.x * blockDim.y * blockDim.z + thread);
  o[0] = static_cast<int>(threadIdx.x);
  o[1] = static_cast<int>(threadIdx.y);
  o[2] = static_cast<int>(threadIdx.z);
  o[3] = static_cast<int>(blockIdx.x);
  o[4] = static_cast<int>(blockIdx.y);
  o[5] = static_cast<int>(blockIdx.z);
}

__global__ void atomics_kernel(float* fsum, double* dsum, int* count, unsigned* max_gid,
                               unsigned long long* cas_count) {
  const unsigned gid = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(fsum, static_cast<float>(gid % 7));
  atomicAdd(dsum, static_cast<double>(gid % 7));
  atomicAdd(count, 1);
  atomicMax(max_gid, gid);
  unsigned long long seen = *cas_count, assumed;
  do {
    assumed = seen;
    seen = atomicCAS(cas_count, assumed, assumed + 1);
  } while (seen != assumed);
}

__global__ void neighbour_racy_kernel(const int* in, int* out) {
  EMBER_SHARED(int[1024], s);
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  s[threadIdx.x] = in[i];
  out[i] = s[(threadIdx.x + 1) % blockDim.x];  // BUG on purpose: no __syncthreads() before reading a neighbour
}

__global__ void neighbour_kernel(const int* in, int* out) {
  EMBER_SHARED(int[1024], s);
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  s[threadIdx.x] = in[i];
  __syncthreads();
  out[i] = s[(threadIdx.x + 1) % blockDim.x];
}

__global__ void warp_progress_kernel(int* seen, int* progress, int steps) {
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int v = static_cast<int>(threadIdx.x);
  for (int k = 0; k < steps; ++k) {
    v = __shfl_xor_sync(0xffffffffu, v, 1);
    if (lane == 0) {
      atomicExch(&progress[warp], k + 1);
      seen[warp * steps + k] = atomicAdd(&progress[1 - warp], 0);
    }
  }
}

// blockDim.x a multiple of 32
__global__ void block_sum_shuffle_racy_kernel(const float* x, int n, float* partial) {
  EMBER_SHARED(float[32], warp_sums);
  float v = 0.0f;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v += x[i];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = v;
  // BUG on purpose: no __syncthreads() before warp 0 reads the other warps' sums
  if (threadIdx.x < 32) {
    v = threadIdx.x < blockDim.x / 32 ? warp_sums[threadIdx.x] : 0.0f;
    for (int mask = 16; mask > 0; mask /= 2) v += __shfl_xor_sync(0xffffffffu, v, mask);
    if (threadIdx.x == 0) partial[blockIdx.x] = v;
  }
}

// one block, blockDim.x a multiple of 32
__global__ void row_sums_kernel(const float* x, int rows, int cols, float* out, bool with_barrier) {
  EMBER_SHARED(float[32], partials);
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int r = 0; r < rows; ++r) {
    float v = 0.0f;
    for (int j = static_cast<int>(threadIdx.x); j < cols; j += static_cast<int>(blockDim.x)) v += x[r * cols + j];
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    if (with_barrier) __syncthreads();  // warp 0 has read the previous row's partials
    if (lane == 0) partials[warp] = v;
    __syncthreads();
    if (warp == 0) {
      v = lane < blockDim.x / 32 ? partials[lane] : 0.0f;
      for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
      if (lane == 0) out[r] = v;
    }
  }
}

__global__ void broadcast_then_block_reduce_kernel(const float* x, float* out) {
  EMBER_SHARED(float[ember::cuda::kMaxWarps + 1], scratch);
  if (threadIdx.x == 0) scratch[0] = x[0];
  __syncthreads();
  const float scale = scratch[0];
  out[threadIdx.x] = ember::cuda::block_reduce(x[threadIdx.x] * scale, ember::cuda::SumOp{}, 0.0f, scratch);
}

__global__ void divergent_barrier_kernel(int* destroyed, unsigned bad) {
  DestructionCounter guard{destroyed};
  if (blockIdx.x == bad && threadIdx.x < 16) {
    __syncthreads();  // @divergent-a
  } else {
    __syncthreads();  // @divergent-b
  }
}

__global__ void return_before_barrier_kernel(int* destroyed, unsigned bad, uint3 returning) {
  DestructionCounter guard{destroyed};
  if (blockIdx.x == bad && threadIdx.x == returning.x && threadIdx.y == returning.y && threadIdx.z == returning.z)
    return;
  __syncthreads();  // @early-return
}

__global__ void lane_outside_mask_kernel(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x == 5) v = __shfl_sync(0x1u, v, 0);  // @outside-mask
  out[threadIdx.x] = v;
}

__global__ void full_mask_partial_warp_kernel(int* out) {
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);  // @partial-warp
}

__global__ void deadlock_kernel(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x % 32 < 16) {
    v = __shfl_sync(0xffffffffu, v, 0);  // @deadlock-shuffle
  } else {
    __syncthreads();  // @deadlock-barrier
  }
  out[threadIdx.x] = v;
}

__global__ void lane_exit_kernel(int* out) {
  if (threadIdx.x == 3) return;
  out[threadIdx.x] = __shfl_sync(0xffffffffu, static_cast<int>(threadIdx.x), 0);  // @lane-exit
}

__global__ void trivial_kernel(int* out) {
  if (threadIdx.x == 0 && blockIdx.x == 0) out[0] = 1;
}

/// Launches on the legacy default stream and waits for the device, as every launcher here does: the
/// tests read results straight from (emulated) device memory. Errors stay recorded for cudaGetLastError.
template <class... P, class... A>
void run(void (*kernel)(P...), dim3 grid, dim3 block, std::size_t shmem, A&&... args) {
  ember::cuda::launch(kernel, grid, block, shmem, nullptr, std::forward<A>(args)...);
  (void)cudaDeviceSynchronize();
}

}  // namespace

void vector_add(const float* a, const float* b, float* c, int n, unsigned blocks, unsigned threads) {
  run(vector_add_kernel, blocks, threads, 0, a, b, c, n);
}
void block_sum_shared(const float* x, int n, float* partial, unsigned blocks, unsigned threads) {
  run(block_sum_shared_kernel, blocks, threads, 0, x, n, partial);
}
void block_sum_shuffle(const float* x, int n, float* partial, unsigned blocks, unsigned threads) {
  run(block_sum_shuffle_kernel, blocks, threads, 0, x, n, partial);
}
void dynamic_shared_poison(unsigned* not_poisoned, unsigned blocks, unsigned threads, std::size_t shmem_bytes) {
  run(dynamic_shared_poison_kernel, blocks, threads, shmem_bytes, not_poisoned, shmem_bytes);
}
void static_shared_poison(unsigned* not_poisoned, unsigned blocks, unsigned threads) {
  run(static_shared_poison_kernel, blocks, threads, 0, not_poisoned);
}
void dynamic_shared_reverse(const float* in, float* out, unsigned blocks, unsigned threads) {
  run(dynamic_shared_reverse_kernel, blocks, threads, threads * sizeof(float), in, out);
}
void shuffle(ShflOp op, int arg, int width, int* out_i, float* out_f, double* out_d, long long* out_ll,
             unsigned threads) {
  run(shuffle_kernel, 1, threads, 0, op, arg, width, out_i, out_f, out_d, out_ll);
}
void shuffle_masked(ShflOp op, unsigned mask, int arg, int width, int* out, unsigned threads) {
  run(shuffle_masked_kernel, 1, threads, 0, op, mask, arg, width, out);
}
void vote(unsigned* ballot, int* any, int* all, int* any5, int* all_lt32, unsigned threads) {
  run(vote_kernel, 1, threads, 0, ballot, any, all, any5, all_lt32);
}
void sync_count(int* count, int* all, int* any, unsigned threads) {
  run(sync_count_kernel, 1, threads, 0, count, all, any);
}
void indices(int* out, dim3 grid, dim3 block) { run(indices_kernel, grid, block, 0, out); }
void atomics(float* fsum, double* dsum, int* count, unsigned* max_gid, unsigned long long* cas_count, unsigned blocks,
             unsigned threads) {
  run(atomics_kernel, blocks, threads, 0, fsum, dsum, count, max_gid, cas_count);
}
void neighbour(const int* in, int* out, unsigned blocks, unsigned threads, bool with_barrier) {
  run(with_barrier ? neighbour_kernel : neighbour_racy_kernel, blocks, threads, 0, in, out);
}
void warp_progress(int* seen, int* progress, int steps) { run(warp_progress_kernel, 1, 64, 0, seen, progress, steps); }
void block_sum_shuffle_racy(const float* x, int n, float* partial, unsigned blocks, unsigned threads) {
  run(block_sum_shuffle_racy_kernel, blocks, threads, 0, x, n, partial);
}
void row_sums(const float* x, int rows, int cols, float* out, unsigned threads, bool with_barrier) {
  run(row_sums_kernel, 1, threads, 0, x, rows, cols, out, with_barrier);
}
void broadcast_then_block_reduce(const float* x, float* out, unsigned threads) {
  run(broadcast_then_block_reduce_kernel, 1, threads, 0, x, out);
}
void divergent_barrier(int* destroyed, unsigned blocks, dim3 block, unsigned bad) {
  run(divergent_barrier_kernel, blocks, block, 0, destroyed, bad);
}
void return_before_barrier(int* destroyed, unsigned blocks, dim3 block, unsigned bad, dim3 returning_thread) {
  run(return_before_barrier_kernel, blocks, block, 0, destroyed, bad,
                      make_uint3(returning_thread.x, returning_thread.y, returning_thread.z));
}
void lane_outside_mask(int* out, unsigned threads) {
  run(lane_outside_mask_kernel, 1, threads, 0, out);
}
void full_mask_partial_warp(int* out, unsigned threads) {
  run(full_mask_partial_warp_kernel, 1, threads, 0, out);
}
void shuffle_vs_barrier_deadlock(int* out, unsigned threads) {
  run(deadlock_kernel, 1, threads, 0, out);
}
void lane_exits_before_shuffle(int* out, unsigned threads) {
  run(lane_exit_kernel, 1, threads, 0, out);
}
void launch_with(dim3 grid, dim3 block, std::size_t shmem_bytes, int* out) {
  run(trivial_kernel, grid, block, shmem_bytes, out);
}

}  // namespace emu_test
