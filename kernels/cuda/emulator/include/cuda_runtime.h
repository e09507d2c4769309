/// @file kernels/cuda/emulator/include/cuda_runtime.h @brief `#include <cuda_runtime.h>` in the emulated build: the emulator's runtime API (host code such as the library wrappers compiles unchanged).
#pragma once
#include "kernels/cuda/emulator/types.h"
#include "kernels/cuda/emulator/runtime.h"
