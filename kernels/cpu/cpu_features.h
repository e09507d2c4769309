/// @file kernels/cpu/cpu_features.h @brief What the CPU's vector units can run, for the kernels that pick an AVX-512 / AVX2 version of a loop at run time (and for OpenBLAS's kernel selection).
#pragma once

namespace ember::kernels::cpu {

/// AVX-512 F, DQ, BW and VL (Skylake-SP and later, Zen 4 and later): the set the AVX-512 loops use.
inline bool has_avx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}
inline bool has_avx2() { return __builtin_cpu_supports("avx2"); }
/// AVX2 with FMA3 (Haswell, Zen and later).
inline bool has_avx2_fma() { return has_avx2() && __builtin_cpu_supports("fma"); }

}  // namespace ember::kernels::cpu
