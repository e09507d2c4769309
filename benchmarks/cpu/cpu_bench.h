/// @file benchmarks/cpu/cpu_bench.h @brief What the CPU benchmark files share: registration hooks, the peak row for a working set, tensor lists.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "benchmarks/param_lists.h"
#include "core/tensor.h"

namespace ember::bench::cpu {

/// Array sizes (f32 elements) of the STREAM triads: 3 arrays of 256 KiB stay in L2, 3 of 4 MiB in L3,
/// 3 of 64 MiB go to DRAM.
inline constexpr int64_t kTriadL2 = int64_t{1} << 16;
inline constexpr int64_t kTriadL3 = int64_t{1} << 20;
inline constexpr int64_t kTriadDram = int64_t{1} << 24;

/// The triad row ("peak/triad_l2|l3|dram") whose cache level holds `working_set_bytes` (the bytes a
/// kernel touches per call), so cache-resident kernels are compared with cache bandwidth.
std::string peak_for_working_set(double working_set_bytes);
/// The FMA peak row: the widest FMA the CPU has (AVX-512, else AVX2 + FMA) on every OpenMP thread.
/// "peak/fma_avx2" is the AVX2 loop alone, for comparison on AVX-512 CPUs.
inline const std::string kPeakFma = "peak/fma";

/// The micro-batch of the layer and GEMM rows (ember-train's default).
inline constexpr int64_t kMicroBatch = 32;

/// One f32 tensor per shape of the list, filled with `value`.
std::vector<Tensor> make_tensors(const ParamList& l, double value);

void register_peak();
void register_accumulate();
void register_optimizer();
void register_batchnorm();
void register_loss();
void register_gemm();
void register_layers();

}  // namespace ember::bench::cpu
