/// @file kernels/cuda/emulator/internal.h @brief Shared between the emulator's own .cpp files only (never included by kernels or by users).
#pragma once
#include <cstddef>
#include <string>

#include "kernels/cuda/emulator/types.h"

namespace ember::emu::detail {

/// A positive integer from the environment variable `name`, else `fallback` (a warning for bad values).
std::size_t env_size(const char* name, std::size_t fallback);
/// Records error `e` (and its explanation) as the calling host thread's last error; returns e.
cudaError_t fail(cudaError_t e, std::string message = {});

}  // namespace ember::emu::detail
