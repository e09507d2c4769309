/// @file kernels/cuda/testing.h @brief Test-only control of the CUDA backend's launch sizing: ScopedGridCap lowers every launcher's grid cap, so the loops of blocks run several times on small inputs.
//
// Plain C++ (tests include it without the CUDA headers). The backend that is linked (emulated or real)
// fills the hooks from a static initializer (kernels/cuda/grid_cap.cu); without one they stay null and
// ScopedGridCap does nothing.
#pragma once
#include "kernels/dispatch.h"

namespace ember::cuda::testing {

/// The backend's grid-cap override: 0 means none (each launcher uses its own cap).
struct GridCapHooks {
  unsigned (*get)() = nullptr;
  void (*set)(unsigned blocks) = nullptr;
};

inline GridCapHooks& grid_cap_hooks() { return kernels::table_for<GridCapHooks>(DeviceType::CUDA); }

/// While it lives, every CUDA launcher whose blocks loop over their work (grid-stride, row, channel and
/// batch loops, multi-tensor chunk lists) launches at most `blocks` blocks, so on small inputs each block
/// runs its loop several times. The cap is read when a launcher sizes its grid. Not for concurrent use
/// from several host threads; restores the previous cap on destruction.
class ScopedGridCap {
 public:
  explicit ScopedGridCap(unsigned blocks) {
    EMBER_CHECK(blocks >= 1, "ScopedGridCap: a grid needs at least one block");
    const GridCapHooks& h = grid_cap_hooks();
    if (h.get == nullptr || h.set == nullptr) return;
    saved_ = h.get();
    h.set(blocks);
    active_ = true;
  }
  ~ScopedGridCap() {
    if (active_) grid_cap_hooks().set(saved_);
  }
  ScopedGridCap(const ScopedGridCap&) = delete;
  ScopedGridCap& operator=(const ScopedGridCap&) = delete;

 private:
  unsigned saved_ = 0;
  bool active_ = false;
};

}  // namespace ember::cuda::testing
