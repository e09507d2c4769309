/// @file tests/emulator/stream_kernels.h @brief Launchers of the stream and device tests' kernels (stream_kernels.cu); each only queues its kernel on the given stream.
#pragma once
#include "kernels/cuda/emulator/cuda_compat.h"

namespace emu_test {

/// out[i] = value for i < n.
void fill(float* out, int n, float value, cudaStream_t stream);
/// out[i] = in[i] + 1 for i < n (a consumer of `in`).
void add_one(const float* in, float* out, int n, cudaStream_t stream);
/// Every thread waits at a barrier that thread 0 skips: a kernel fault (sticky error).
void faulty(float* out, cudaStream_t stream);

}  // namespace emu_test
