/// @file kernels/device_checks.cpp @brief The calling thread's context label for device-side checks.
#include "kernels/device_checks.h"

#include <utility>

namespace ember::kernels {
namespace {

std::string& context() {
  thread_local std::string label;
  return label;
}

}  // namespace

void set_check_context(std::string label) { context() = std::move(label); }
const std::string& check_context() { return context(); }

}  // namespace ember::kernels
