/// @file kernels/cpu/cpu_kernels.h @brief Registration hooks of the CPU backend, one per op family.
#pragma once

namespace ember::kernels::cpu {

void register_elementwise();
void register_reduce();
void register_matmul();
void register_softmax();
void register_accumulate();
void register_random();

}  // namespace ember::kernels::cpu
