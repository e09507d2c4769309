/// @file tests/emulator/stream_kernels.h @brief Launchers of the stream and device tests' kernels (stream_kernels.cu); each only queues its kernel on the given stream.
#pragma once
#include "kernels/cuda/emulator/cuda_compat.h"

namespace emu_test {

/// out[i] = value for i < n.
void fill(float* out, int n, float value, cudaStream_t stream);
/// out[i] = in[i] + 1 for i < n (a consumer of `in`).
void add_one(const float* in, float* out, int n, cudaStream_t stream);
/// A by-value kernel argument with padding: 7 indeterminate bytes follow `add` (24 bytes, so the x86-64
/// ABI passes it in memory and copies keep the padding, like the library's GateArgs).
struct PaddedArgs {
  double scale, shift;
  bool add;
};
/// out[i] = out[i] * a.scale + a.shift + (a.add ? 1 : 0) for i < n.
void scale_padded(float* out, int n, PaddedArgs a, cudaStream_t stream);
/// A padding-free by-value argument carrying pointers, which the emulator checks like pointer arguments.
struct PointerArgs {
  const float* in;
  float* out;
};
/// a.out[i] = a.in[i] + 1 for i < n.
void add_one_via(PointerArgs a, int n, cudaStream_t stream);
/// Every thread waits at a barrier that thread 0 skips: a kernel fault (sticky error).
void faulty(float* out, cudaStream_t stream);

}  // namespace emu_test
