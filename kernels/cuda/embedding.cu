/// @file kernels/cuda/embedding.cu @brief CUDA embedding: a row gather forward with a device-side index check; a deterministic backward that sorts (row, position) keys and gives each distinct row to one block.
//
// Forward: block per position (positions b, b + gridDim.x, ...), threads over the row's dim values;
// thread 0 flags an index outside [0, num) in the device's check record (kernels/cuda/device_checks.h),
// the host raises the CPU's error at its next synchronization.
// Backward, no floating-point atomics: (1) each position i becomes the 64-bit key (row << 32) | i
// (row = 0xffffffff for an out-of-range index; the array is padded to a power of two with ~0);
// (2) a bitonic sort of the keys: stages whose pairs lie within a tile of kTile keys run in shared
// memory (one launch per stage group), the wider steps as one launch each. Keys are unique, so the
// sorted order does not depend on the sort's schedule: rows ascending, positions ascending within a row;
// (3) one block per segment start: it sums the row's positions in order, in double, and adds the sum
// to grad_weight[row] (rounded once): the CPU backend's bits (kernels/cpu/embedding.cpp).
#include <cmath>
#include <cstdint>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/device_checks.h"
#include "kernels/cuda/device_scratch.h"
#include "kernels/cuda/warp_reduce.cuh"
#include "kernels/device_checks.h"
#include "kernels/dispatch.h"
#include "kernels/embedding.h"

namespace ember::kernels::cuda_backend {
namespace {

constexpr unsigned kThreads = 256;
constexpr int64_t kTile = 2048;  // keys per shared-memory tile (16 KiB)
constexpr unsigned kTileThreads = 512;
constexpr uint64_t kInvalidRow = 0xffffffffull;

__device__ inline uint64_t key_row(uint64_t key) { return key >> 32; }
__device__ inline int64_t key_position(uint64_t key) { return static_cast<int64_t>(key & 0xffffffffull); }

/// The lower index of compare-exchange pair p in a bitonic step of distance j: pairs (i, i + j).
__device__ inline int64_t pair_low(int64_t p, int64_t j) { return 2 * j * (p / j) + p % j; }

/// Orders keys[i] and keys[i + j]: ascending when bit k of i is clear (k = the merge size).
__device__ inline void compare_exchange(uint64_t* keys, int64_t i, int64_t j, int64_t k, int64_t global_i) {
  const uint64_t a = keys[i], b = keys[i + j];
  const bool ascending = (global_i & k) == 0;
  if ((a > b) == ascending) {
    keys[i] = b;
    keys[i + j] = a;
  }
}

// ---------------------------------------------------------------------------------------- kernels

/// out[i, :] = weight[indices[i], :] (NaN and a failure of `check` for an index outside [0, num)).
/// Grid min(n, 8 per SM) x row_block_threads(dim), no shared memory. Bytes: 8*n (indices) + 4*n*dim read
/// (rows of weight, repeated rows from cache) + 4*n*dim written.
__global__ void embedding_forward_kernel(const int64_t* indices, const float* weight, float* out,
                                         ember::cuda::DeferredCheck check, int64_t n, int64_t num, int64_t dim) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const int64_t r = indices[i];
    const bool valid = r >= 0 && r < num;
    if (!valid && threadIdx.x == 0) {
      atomicAdd(&check.record->failures, 1ull);
      atomicMin(&check.record->first_tag, check.tag);
    }
    float* orow = out + i * dim;
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) orow[d] = valid ? weight[r * dim + d] : NAN;
  }
}

/// keys[i] = (row << 32) | i for i < n (row = indices[i], or kInvalidRow when outside [0, num)); ~0 for
/// the padding n <= i < padded. Grid-stride, min(ceil(padded/256), 8 per SM) x 256. Bytes: 8*n read +
/// 8*padded written.
__global__ void embedding_keys_kernel(const int64_t* indices, uint64_t* keys, int64_t n, int64_t padded,
                                      int64_t num) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < padded;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (i >= n) {
      keys[i] = ~0ull;
      continue;
    }
    const int64_t r = indices[i];
    const uint64_t row = r >= 0 && r < num ? static_cast<uint64_t>(r) : kInvalidRow;
    keys[i] = (row << 32) | static_cast<uint64_t>(i);
  }
}

/// The bitonic stages k = k_lo, 2 k_lo, ..., k_hi restricted to distances j < tile, inside each tile of
/// `tile` keys (a power of two dividing `padded`) in shared memory. Grid min(padded/tile, 8 per SM) x
/// 512 (blocks loop over tiles), static shared 16 KiB. Bytes: 16*padded (keys read and written once).
__global__ void bitonic_tile_kernel(uint64_t* keys, int64_t padded, int64_t tile, int64_t k_lo, int64_t k_hi) {
  EMBER_SHARED(uint64_t[kTile], s);
  for (int64_t t = blockIdx.x; t * tile < padded; t += gridDim.x) {
    uint64_t* g = keys + t * tile;
    for (int64_t i = threadIdx.x; i < tile; i += blockDim.x) s[i] = g[i];
    __syncthreads();
    for (int64_t k = k_lo; k <= k_hi; k *= 2) {
      for (int64_t j = (k / 2 < tile / 2 ? k / 2 : tile / 2); j > 0; j /= 2) {
        for (int64_t p = threadIdx.x; p < tile / 2; p += blockDim.x) {
          const int64_t i = pair_low(p, j);
          compare_exchange(s, i, j, k, t * tile + i);
        }
        __syncthreads();
      }
    }
    for (int64_t i = threadIdx.x; i < tile; i += blockDim.x) g[i] = s[i];
    __syncthreads();
  }
}

/// One bitonic step of distance j >= tile in merge stage k over all `padded` keys: pairs (i, i + j).
/// Grid-stride over padded/2 pairs, min(ceil(padded/512), 8 per SM) x 256. Bytes: 16*padded.
__global__ void bitonic_step_kernel(uint64_t* keys, int64_t padded, int64_t j, int64_t k) {
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < padded / 2;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = pair_low(p, j);
    compare_exchange(keys, i, j, k, i);
  }
}

/// For each sorted position s that starts a row's run: grad_weight[row, :] += sum over the run of
/// grad_out[position, :] (in position order, in double; one rounding). Block per sorted position, min(n,
/// 8 per SM) x row_block_threads(dim), no shared memory. Bytes: 8*n keys + 4*n*dim read (grad_out) +
/// 8*R*dim (grad_weight rows read and written, R = distinct rows).
__global__ void embedding_backward_kernel(const uint64_t* keys, const float* grad_out, float* grad_weight, int64_t n,
                                          int64_t num, int64_t dim) {
  for (int64_t s = blockIdx.x; s < n; s += gridDim.x) {
    const uint64_t row = key_row(keys[s]);
    if (row >= static_cast<uint64_t>(num) || (s > 0 && key_row(keys[s - 1]) == row)) continue;
    float* wr = grad_weight + static_cast<int64_t>(row) * dim;
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
      double acc = 0.0;
      for (int64_t t = s; t < n && key_row(keys[t]) == row; ++t)
        acc += static_cast<double>(grad_out[key_position(keys[t]) * dim + d]);
      wr[d] = static_cast<float>(static_cast<double>(wr[d]) + acc);
    }
  }
}

// -------------------------------------------------------------------------------------- launchers

using ember::cuda::check_f32;

int64_t embedding_forward(const Tensor& indices, const Tensor& weight, Tensor& out) {
  check_f32("embedding", weight);
  const int64_t n = indices.numel(), num = weight.size(0), dim = weight.size(1);
  // On failure (read after the next host sync): the CPU's message, plus where the forward was queued.
  const ember::cuda::DeferredCheck check =
      ember::cuda::defer_check([indices, num, device = weight.device(), context = check_context()] {
        raise_bad_indices(indices, num,
                          " (found on " + device.str() + (context.empty() ? "" : " in " + context) +
                              "; a device-side check, raised at the next host synchronization)");
      });
  const unsigned threads = dim > 0 ? ember::cuda::row_block_threads(dim) : ember::cuda::kWarpSize;
  ember::cuda::launch(embedding_forward_kernel, ember::cuda::row_grid(n), threads, 0, ember::cuda::stream(),
                      static_cast<const int64_t*>(indices.data_ptr()), static_cast<const float*>(weight.data_ptr()),
                      static_cast<float*>(out.data_ptr()), check, n, num, dim);
  EMBER_CUDA_CHECK_LAUNCH("embedding_forward_kernel");
  return 0;
}

/// Sorts `padded` keys (a power of two) ascending with the bitonic network.
void bitonic_sort(uint64_t* keys, int64_t padded) {
  const int64_t tile = padded < kTile ? padded : kTile;
  const unsigned tiles = ember::cuda::grid_for(padded / tile, 1);
  ember::cuda::launch(bitonic_tile_kernel, tiles, kTileThreads, 0, ember::cuda::stream(), keys, padded, tile,
                      int64_t{2}, tile);
  EMBER_CUDA_CHECK_LAUNCH("bitonic_tile_kernel");
  for (int64_t k = 2 * tile; k <= padded; k *= 2) {
    for (int64_t j = k / 2; j >= tile; j /= 2) {
      ember::cuda::launch(bitonic_step_kernel, ember::cuda::grid_for(padded / 2, kThreads), kThreads, 0,
                          ember::cuda::stream(), keys, padded, j, k);
      EMBER_CUDA_CHECK_LAUNCH("bitonic_step_kernel");
    }
    ember::cuda::launch(bitonic_tile_kernel, tiles, kTileThreads, 0, ember::cuda::stream(), keys, padded, tile, k, k);
    EMBER_CUDA_CHECK_LAUNCH("bitonic_tile_kernel");
  }
}

void embedding_backward(const Tensor& indices, const Tensor& grad_out, Tensor& grad_weight) {
  check_f32("embedding_backward", grad_weight);
  const int64_t n = indices.numel(), num = grad_weight.size(0), dim = grad_weight.size(1);
  int64_t padded = 2;
  while (padded < n) padded *= 2;
  const ember::cuda::DeviceScratch scratch(grad_weight.device().index, static_cast<size_t>(padded) * sizeof(uint64_t));
  uint64_t* keys = reinterpret_cast<uint64_t*>(scratch.get());
  ember::cuda::launch(embedding_keys_kernel, ember::cuda::grid_for(padded, kThreads), kThreads, 0,
                      ember::cuda::stream(), static_cast<const int64_t*>(indices.data_ptr()), keys, n, padded, num);
  EMBER_CUDA_CHECK_LAUNCH("embedding_keys_kernel");
  bitonic_sort(keys, padded);
  ember::cuda::launch(embedding_backward_kernel, ember::cuda::row_grid(n), ember::cuda::row_block_threads(dim), 0,
                      ember::cuda::stream(), static_cast<const uint64_t*>(keys),
                      static_cast<const float*>(grad_out.data_ptr()), static_cast<float*>(grad_weight.data_ptr()), n,
                      num, dim);
  EMBER_CUDA_CHECK_LAUNCH("embedding_backward_kernel");
}

}  // namespace

const Registrar registrar([] {
  auto& t = table_for<EmbeddingKernels>(DeviceType::CUDA);
  t.embedding_forward = embedding_forward;
  t.embedding_backward = embedding_backward;
});

}  // namespace ember::kernels::cuda_backend
