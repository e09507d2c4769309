/// @file kernels/device_checks.h @brief Checks that run on the device and fail at the next host synchronization: the context label that names where the failing work was queued.
//
// A kernel can validate its input where the data lives (cross-entropy targets on a GPU) without a
// host synchronization: it flags a failure in memory the host can read, and the backend raises the
// ember::Error at the next host synchronization with that device (a transfer to the host,
// synchronize()), naming the context in which the work was queued. The CPU backend checks at once.
#pragma once
#include <string>

namespace ember::kernels {

/// Sets the calling thread's context label for work queued from now on ("micro-step 17"; "" = none).
/// optim::GradAccumulator keeps it at the micro-step being run.
void set_check_context(std::string label);
/// The calling thread's context label.
const std::string& check_context();

}  // namespace ember::kernels
