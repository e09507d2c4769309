/// @file tests/emulator/emu_kernels.h @brief Launchers of the kernel emulator's test kernels (emu_kernels.cu); each launches and returns.
#pragma once
#include "kernels/cuda/emulator/cuda_compat.h"

namespace emu_test {

// Shuffle and vote operations selected at run time by the test kernels.
enum ShflOp : int { kShflIdx = 0, kShflUp = 1, kShflDown = 2, kShflXor = 3 };

void vector_add(const float* a, const float* b, float* c, int n, unsigned blocks, unsigned threads);
/// One partial sum per block (blockDim.x a power of 2, at most 1024) into partial[blockIdx.x].
void block_sum_shared(const float* x, int n, float* partial, unsigned blocks, unsigned threads);
/// Same, by warp shuffles (blockDim.x a multiple of 32).
void block_sum_shuffle(const float* x, int n, float* partial, unsigned blocks, unsigned threads);
/// Counts the dynamic shared bytes that were not 0xFF at block start into *not_poisoned, then scribbles on them.
void dynamic_shared_poison(unsigned* not_poisoned, unsigned blocks, unsigned threads, std::size_t shmem_bytes);
/// The same for two static shared variables (EMBER_SHARED: 1000 bytes and a struct).
void static_shared_poison(unsigned* not_poisoned, unsigned blocks, unsigned threads);
/// Reverses each block's slice of `in` through float dynamic shared memory.
void dynamic_shared_reverse(const float* in, float* out, unsigned blocks, unsigned threads);
/// Every thread t (one block) shuffles t*7+3 (int), 1/(t+3) (float, double), (t+1)*0x0123456789ABCD; full mask.
void shuffle(ShflOp op, int arg, int width, int* out_i, float* out_f, double* out_d, long long* out_ll,
             unsigned threads);
/// Lanes whose lane index is set in `mask` shuffle lane*7+3 with that mask; other lanes write -1.
void shuffle_masked(ShflOp op, unsigned mask, int arg, int width, int* out, unsigned threads);
/// Per thread: ballot/any/all of (lane % 3 == 0) over the full mask, and any(lane == 5), all(lane < 32).
void vote(unsigned* ballot, int* any, int* all, int* any5, int* all_lt32, unsigned threads);
/// __syncthreads_count/and/or of (threadIdx.x % 4 == 0) for each thread.
void sync_count(int* count, int* all, int* any, unsigned threads);
/// out[global linear id] = (threadIdx, blockIdx) packed as 6 ints.
void indices(int* out, dim3 grid, dim3 block);
/// Integer-valued atomics from every thread: sum += gid % 7 (float and double), count += 1, max = gid.
void atomics(float* fsum, double* dsum, int* count, unsigned* max_gid, unsigned long long* cas_count, unsigned blocks,
             unsigned threads);
/// out[i] = in[i+1 within the block] read WITHOUT a barrier (racy) or with one (correct).
void neighbour(const int* in, int* out, unsigned blocks, unsigned threads, bool with_barrier);
/// One block of 2 warps; every lane does `steps` __shfl_xor_sync. After its step k, lane 0 of warp w
/// stores k + 1 in progress[w] and what it then reads in progress[1 - w] in seen[w * steps + k].
void warp_progress(int* seen, int* progress, int steps);
/// block_sum_shuffle WITHOUT the __syncthreads() between the warps' writes of their sums to shared
/// memory and warp 0's reads of them (racy on purpose).
void block_sum_shuffle_racy(const float* x, int n, float* partial, unsigned blocks, unsigned threads);
/// One block reduces each row r of x [rows, cols] into out[r]: warp sums into shared memory, then warp 0
/// sums those. Without `with_barrier` a warp writes its partial of row r + 1 while warp 0 may still be
/// reading the partials of row r (racy on purpose).
void row_sums(const float* x, int rows, int cols, float* out, unsigned threads, bool with_barrier);
/// Thread 0 broadcasts x[0] through a scratch array that every thread reads, then the block calls
/// ember::cuda::block_reduce (kernels/cuda/warp_reduce.cuh) with the same scratch:
/// out[t] = sum_i x[i] * x[0]. Correct only if block_reduce begins with a barrier.
void broadcast_then_block_reduce(const float* x, float* out, unsigned threads);

// Misuse, in block `bad` only (other blocks are correct). Each thread that gets past a guard
// counts its destructor in *destroyed, so a test can check abandoned threads were unwound.
void divergent_barrier(int* destroyed, unsigned blocks, dim3 block, unsigned bad);
void return_before_barrier(int* destroyed, unsigned blocks, dim3 block, unsigned bad, dim3 returning_thread);
void lane_outside_mask(int* out, unsigned threads);            // lane 5 calls with mask 0x1
void full_mask_partial_warp(int* out, unsigned threads);       // e.g. 48 threads, full mask
void shuffle_vs_barrier_deadlock(int* out, unsigned threads);  // half a warp shuffles, half waits at a barrier
void lane_exits_before_shuffle(int* out, unsigned threads);    // lane 3 returns, the rest shuffle
void launch_with(dim3 grid, dim3 block, std::size_t shmem_bytes, int* out);  // a trivial kernel: out[0] = 1

}  // namespace emu_test
