/// @file ops/runtime.cpp @brief ops/runtime.h on the backends' tables (kernels/transfer.h) and counters (kernels/runtime_stats.h).
#include "ops/runtime.h"

#include "kernels/matmul.h"
#include "kernels/runtime_stats.h"
#include "kernels/transfer.h"

namespace ember {

int device_count(DeviceType t) { return kernels::device_count(t); }
bool cuda_is_available() { return kernels::device_count(DeviceType::CUDA) > 0; }
void synchronize(Device d) { kernels::synchronize(d); }
RuntimeStats runtime_stats(DeviceType t) { return kernels::runtime_stats(t); }
void reset_runtime_stats() { kernels::reset_runtime_stats(); }
std::string cpu_blas_core() { return kernels::cpu_blas_core(); }

}  // namespace ember
