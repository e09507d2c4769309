/// @file kernels/cpu/blas_core.cpp @brief OpenBLAS's kernels for this CPU: its AVX-512 or AVX2 GEMMs where its build does not recognize the CPU model and would fall back to SSE3 ("Prescott").
//
// OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels by CPU model when it loads. A CPU newer
// than the OpenBLAS release is unknown to it and gets the generic Prescott (SSE3) kernels: OpenBLAS
// 0.3.21 (Debian 12) on an Intel Xeon of family 6 model 207 (Emerald Rapids) made a GPT training step
// 2.7x slower than its SkylakeX kernels do (docs/benchmarks.md, "OpenBLAS's kernels"). OPENBLAS_CORETYPE
// overrides the choice, but only when set before the library loads. So, once, while libember loads
// (after OpenBLAS, which it links; before any GEMM): when OpenBLAS chose Prescott, the user has not set
// OPENBLAS_CORETYPE and the CPU has AVX-512 (F, BW, DQ, VL) or AVX2 + FMA, Ember sets OPENBLAS_CORETYPE
// to SkylakeX or Haswell and runs OpenBLAS's dynamic-arch selection again (gotoblas_dynamic_quit and
// gotoblas_dynamic_init, which is what OpenBLAS does at load with the variable set). Both are looked up
// as weak symbols: an OpenBLAS without DYNAMIC_ARCH (or another BLAS) is left as it is.
#include <cblas.h>

#include <cstdlib>
#include <string>

#include "kernels/cpu/cpu_features.h"
#include "kernels/matmul.h"

extern "C" {
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));
char* openblas_get_corename(void) __attribute__((weak));
}

namespace ember::kernels {
namespace {

std::string corename() {
  if (openblas_get_corename == nullptr) return "";
  const char* name = openblas_get_corename();
  return name ? name : "";
}

/// The OpenBLAS core this CPU can run, better than Prescott: "SkylakeX", "Haswell" or "" (none).
const char* supported_core() {
  if (cpu::has_avx512()) return "SkylakeX";
  if (cpu::has_avx2_fma()) return "Haswell";
  return "";
}

struct BlasCore {
  std::string chosen_by_openblas;  ///< its own choice at load
  std::string active;              ///< after Ember's selection
  bool switched = false;

  BlasCore() {
    chosen_by_openblas = active = corename();
    const std::string better = supported_core();
    const bool generic = chosen_by_openblas == "Prescott" || chosen_by_openblas == "prescott";
    if (!generic || better.empty() || std::getenv("OPENBLAS_CORETYPE") != nullptr || gotoblas_dynamic_init == nullptr ||
        gotoblas_dynamic_quit == nullptr)
      return;
    ::setenv("OPENBLAS_CORETYPE", better.c_str(), 0);  // read by gotoblas_dynamic_init (and by child processes)
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    active = corename();
    switched = active != chosen_by_openblas;
  }
};

const BlasCore& blas_core() {
  static const BlasCore core;
  return core;
}

[[maybe_unused]] const BlasCore& kSelectedAtLoad = blas_core();  // at library load, single-threaded, before any GEMM

}  // namespace

std::string cpu_blas_core() {
  const BlasCore& c = blas_core();
  if (c.active.empty()) return "";
  std::string s = "OpenBLAS " + c.active;
  if (c.switched) s += " (selected by Ember; OpenBLAS chose " + c.chosen_by_openblas + " for this CPU)";
  return s;
}

}  // namespace ember::kernels
