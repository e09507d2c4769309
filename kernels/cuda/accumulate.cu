/// @file kernels/cuda/accumulate.cu @brief The fused CUDA kernels Ember is about: dst += alpha * src (float4), its multi-tensor form, and multi-tensor scale with sum of squares and a non-finite flag.
//
// Multi-tensor launches follow apex's multi_tensor_apply (kernels/cuda/multi_tensor.h): tensor
// pointers and each block's (tensor slot, chunk) travel by value in the kernel arguments (< 4 KiB),
// one block per chunk of 65536 elements, so a whole parameter list costs ceil(chunks / 320) launches.
//
// scale_many's sum of squares is deterministic: each block reduces its chunk in double in a fixed
// order (thread-strided partial sums, then fixed shuffle trees) and writes one partial per chunk;
// a one-block second kernel adds the partials in a fixed order. No floating-point atomics, so the
// result is bitwise the same on every run and under every emulator schedule. The non-finite flag is
// an atomicOr in shared memory, written out per block and OR-ed by the second kernel.
//
// dst += alpha * src is computed as dst + (alpha * src) with the product rounded on its own (no FMA),
// so the result is bitwise the CPU backend's.
#include <cfloat>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/accumulate.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/device_scratch.h"
#include "kernels/cuda/multi_tensor.h"
#include "kernels/cuda/partials.cuh"
#include "kernels/cuda/warp_reduce.cuh"
#include "kernels/dispatch.h"

namespace ember::kernels::cuda_backend {
namespace {

using ember::cuda::kChunkElems;
using ember::cuda::kMaxBlocks;
using ember::cuda::kMaxTensors;

constexpr unsigned kThreads = 256;       // accumulate (single tensor)
constexpr unsigned kChunkThreads = 512;  // multi-tensor kernels: one block per chunk

__device__ inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

/// d[i] += alpha * s[i] for i in [0, n) by the threads first, first + step, ...: float4 over n / 4
/// vectors when both pointers are 16-byte aligned, then the scalar remainder.
__device__ inline void axpy_range(float* d, const float* s, float alpha, int64_t n, int64_t first, int64_t step) {
  int64_t done = 0;
  if (aligned16(d) && aligned16(s)) {
    const int64_t n4 = n / 4;
    float4* d4 = reinterpret_cast<float4*>(d);
    const float4* s4 = reinterpret_cast<const float4*>(s);
    for (int64_t i = first; i < n4; i += step) {
      const float4 a = d4[i], b = s4[i];
      d4[i] = make_float4(a.x + __fmul_rn(alpha, b.x), a.y + __fmul_rn(alpha, b.y), a.z + __fmul_rn(alpha, b.z),
                          a.w + __fmul_rn(alpha, b.w));
    }
    done = n4 * 4;
  }
  for (int64_t i = done + first; i < n; i += step) d[i] = d[i] + __fmul_rn(alpha, s[i]);
}

/// Kernel arguments of accumulate_many_kernel (2.8 KiB, passed by value).
struct AccumulateArgs {
  float* dst[kMaxTensors];
  const float* src[kMaxTensors];
  int64_t numel[kMaxTensors];
  uint8_t slot[kMaxBlocks];
  int32_t chunk[kMaxBlocks];
};

/// Kernel arguments of scale_many_kernel (2.4 KiB, passed by value). Block b writes partial
/// first_partial + b.
struct ScaleArgs {
  float* data[kMaxTensors];
  int64_t numel[kMaxTensors];
  uint8_t slot[kMaxBlocks];
  int32_t chunk[kMaxBlocks];
  int64_t first_partial;
};
// No padding bytes: the emulator checks the pointers of padding-free structs only (launch.h).
static_assert(std::has_unique_object_representations_v<AccumulateArgs> &&
              std::has_unique_object_representations_v<ScaleArgs>);

struct ScaleScratch {
  double sums[ember::cuda::kMaxWarps + 1];
  int non_finite;
};

// ---------------------------------------------------------------------------------------- kernels

/// dst += alpha * src over n elements: float4 loads/stores when `dst` and `src` are 16-byte aligned,
/// scalar otherwise and for the n % 4 tail. Grid-stride, grid min(ceil(n/4/256), 8 per SM) x 256
/// threads, no shared memory. Bytes: 12n (read dst and src, write dst).
__global__ void accumulate_kernel(float* dst, const float* src, float alpha, int64_t n) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  axpy_range(dst, src, alpha, n, first, static_cast<int64_t>(gridDim.x) * blockDim.x);
}

/// Multi-tensor dst_t += alpha * src_t: block b does chunk args.chunk[b] of tensor slot args.slot[b]
/// (float4 when that tensor's pointers are aligned). Grid = blocks in this launch (<= 320) x 512
/// threads, no shared memory. Bytes: 12 * (sum of numels) over all launches.
__global__ void accumulate_many_kernel(AccumulateArgs args, float alpha) {
  const int t = args.slot[blockIdx.x];
  const int64_t start = static_cast<int64_t>(args.chunk[blockIdx.x]) * kChunkElems;
  const int64_t len = args.numel[t] - start < kChunkElems ? args.numel[t] - start : kChunkElems;
  axpy_range(args.dst[t] + start, args.src[t] + start, alpha, len, threadIdx.x, blockDim.x);
}

/// Multi-tensor x *= s: block b scales its chunk (float4 when aligned, then a scalar tail), sums the
/// squares of the results in double and flags NaN/Inf inputs (atomicOr on a shared int), then writes
/// sums[first_partial + b] and flags[first_partial + b]. Grid = blocks in this launch (<= 320) x 512 threads, static shared
/// ScaleScratch (~270 B). Bytes: 8 * (sum of numels) (read and write each value) + 16 per chunk.
__global__ void scale_many_kernel(ScaleArgs args, float s, double* sums, double* flags) {
  EMBER_SHARED(ScaleScratch, scratch);
  if (threadIdx.x == 0) scratch.non_finite = 0;
  __syncthreads();
  const int t = args.slot[blockIdx.x];
  const int64_t start = static_cast<int64_t>(args.chunk[blockIdx.x]) * kChunkElems;
  const int64_t len = args.numel[t] - start < kChunkElems ? args.numel[t] - start : kChunkElems;
  float* p = args.data[t] + start;
  double sq = 0.0;
  bool bad = false;
  auto scale = [&](float& x) {
    bad = bad || !(fabsf(x) <= FLT_MAX);  // NaN fails every comparison
    x = x * s;
    sq += static_cast<double>(x) * static_cast<double>(x);
  };
  int64_t tail = 0;
  if (aligned16(p)) {  // float4 over the chunk (cudaMalloc'd tensors are aligned; chunks start at 65536 * k)
    float4* p4 = reinterpret_cast<float4*>(p);
    const int64_t n4 = len / 4;
    for (int64_t k = threadIdx.x; k < n4; k += blockDim.x) {
      float4 v = p4[k];
      scale(v.x), scale(v.y), scale(v.z), scale(v.w);
      p4[k] = v;
    }
    tail = n4 * 4;
  }
  for (int64_t i = tail + threadIdx.x; i < len; i += blockDim.x) scale(p[i]);
  if (bad) atomicOr(&scratch.non_finite, 1);
  sq = ember::cuda::block_reduce(sq, ember::cuda::SumOp{}, 0.0, scratch.sums);  // barriers order the atomicOr
  if (threadIdx.x == 0) {
    sums[args.first_partial + blockIdx.x] = sq;
    flags[args.first_partial + blockIdx.x] = scratch.non_finite != 0 ? 1.0 : 0.0;
  }
}

// -------------------------------------------------------------------------------------- launchers

using ember::cuda::check_f32;

float* fptr(const Tensor& t) { return static_cast<float*>(t.data_ptr()); }

void accumulate(Tensor& dst, const Tensor& src, double alpha) {
  check_f32("accumulate", dst);
  const int64_t n = dst.numel();
  ember::cuda::launch(accumulate_kernel, ember::cuda::grid_for((n + 3) / 4, kThreads), kThreads, 0,
                      ember::cuda::stream(), fptr(dst), static_cast<const float*>(src.data_ptr()),
                      static_cast<float>(alpha), n);
  EMBER_CUDA_CHECK_LAUNCH("accumulate_kernel");
}

/// Blocks per multi-tensor launch: kMaxBlocks, or the test's grid cap.
int chunk_blocks() { return static_cast<int>(ember::cuda::grid_cap(kMaxBlocks)); }

std::vector<int64_t> numels_of(std::span<const Tensor> ts) {
  std::vector<int64_t> n;
  n.reserve(ts.size());
  for (const Tensor& t : ts) n.push_back(t.numel());
  return n;
}

void accumulate_many(std::span<Tensor> dsts, std::span<const Tensor> srcs, double alpha) {
  for (const Tensor& d : dsts) check_f32("accumulate_many", d);
  const std::vector<int64_t> numels = numels_of(std::span<const Tensor>(dsts.data(), dsts.size()));
  ember::cuda::plan_chunks(numels, chunk_blocks(), [&](const ember::cuda::ChunkLaunch& l) {
    AccumulateArgs args{};
    for (int s = 0; s < l.num_tensors; ++s) {
      const size_t t = static_cast<size_t>(l.tensor_of_slot[s]);
      args.dst[s] = fptr(dsts[t]);
      args.src[s] = static_cast<const float*>(srcs[t].data_ptr());
      args.numel[s] = numels[t];
    }
    for (int b = 0; b < l.num_blocks; ++b) {
      args.slot[b] = l.slot_of_block[b];
      args.chunk[b] = l.chunk_of_block[b];
    }
    ember::cuda::launch(accumulate_many_kernel, static_cast<unsigned>(l.num_blocks), kChunkThreads, 0,
                        ember::cuda::stream(), args, static_cast<float>(alpha));
    EMBER_CUDA_CHECK_LAUNCH("accumulate_many_kernel");
  });
}

void scale_many(std::span<Tensor> ts, double s, Tensor& status) {
  for (const Tensor& t : ts) check_f32("scale_many", t);
  double* st = static_cast<double*>(status.data_ptr());
  const std::vector<int64_t> numels = numels_of(std::span<const Tensor>(ts.data(), ts.size()));
  int64_t chunks = 0;
  for (int64_t n : numels) chunks += (n + kChunkElems - 1) / kChunkElems;
  // Layout: [sums: one double per chunk][flags: one double per chunk]; freed stream-ordered.
  ember::cuda::DeviceScratch scratch(ember::cuda::current_device(),
                                     static_cast<size_t>(std::max<int64_t>(chunks, 1)) * 2 * sizeof(double));
  double* sums = reinterpret_cast<double*>(scratch.get());
  double* flags = sums + chunks;
  int64_t first_partial = 0;
  ember::cuda::plan_chunks(numels, chunk_blocks(), [&](const ember::cuda::ChunkLaunch& l) {
    ScaleArgs args{};
    for (int slot = 0; slot < l.num_tensors; ++slot) {
      const size_t t = static_cast<size_t>(l.tensor_of_slot[slot]);
      args.data[slot] = fptr(ts[t]);
      args.numel[slot] = numels[t];
    }
    for (int b = 0; b < l.num_blocks; ++b) {
      args.slot[b] = l.slot_of_block[b];
      args.chunk[b] = l.chunk_of_block[b];
    }
    args.first_partial = first_partial;
    ember::cuda::launch(scale_many_kernel, static_cast<unsigned>(l.num_blocks), kChunkThreads, 0, ember::cuda::stream(),
                        args, static_cast<float>(s), sums, flags);
    EMBER_CUDA_CHECK_LAUNCH("scale_many_kernel");
    first_partial += l.num_blocks;
  });
  ember::cuda::finalize_partials(sums, flags, chunks, st, /*add=*/false);
}

/// status[slot] += double(x[0]) * alpha. Launch: 1 x 1. Bytes: 4 or 8 read, 8 read and written.
__global__ void add_to_status_f32_kernel(double* status, int64_t slot, const float* x, double alpha) {
  status[slot] += static_cast<double>(x[0]) * alpha;
}

void add_to_status(Tensor& status, int64_t slot, const Tensor& x, double alpha) {
  check_f32("add_to_status", x);
  ember::cuda::launch(add_to_status_f32_kernel, 1u, 1u, 0, ember::cuda::stream(), static_cast<double*>(status.data_ptr()),
                      slot, static_cast<const float*>(x.data_ptr()), alpha);
  EMBER_CUDA_CHECK_LAUNCH("add_to_status_f32_kernel");
}

void zero_status(Tensor& status) {
  EMBER_CUDA_CHECK(cudaMemsetAsync(status.data_ptr(), 0, status.nbytes(), ember::cuda::stream()));
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<AccumulateKernels>(DeviceType::CUDA);
  t.accumulate = accumulate;
  t.accumulate_many = accumulate_many;
  t.scale_many = scale_many;
  t.add_to_status = add_to_status;
  t.zero_status = zero_status;
});

}  // namespace ember::kernels::cuda_backend
