/// @file tests/train/run_compare.h @brief Helpers of the end-to-end training tests: run an ember-train command, compare two checkpoints tensor by tensor.
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "examples/ember_train/checkpoint.h"
#include "tests/train/temp_dir.h"

namespace ember::test {

/// Runs `cmd` through the shell with output to `log`; fails the test (showing the log) unless it exits 0.
inline void run_ok(const std::string& cmd, const std::string& log) {
  const std::string full = cmd + " >" + log + " 2>&1";
  const int rc = std::system(full.c_str());
  INFO(full << "\n" << read_bytes(log));
  REQUIRE((WIFEXITED(rc) && WEXITSTATUS(rc) == 0));
}

#ifdef EMBER_MPIEXEC
/// `mpirun -np N` (as root if need be, oversubscribed, one OpenMP thread per rank, no CMA single-copy,
/// which containers lack) as a command prefix.
inline std::string mpirun(int ranks) {
  return "OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
         "OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1 "
         "OMPI_MCA_mpi_yield_when_idle=1 " EMBER_MPIEXEC " --oversubscribe -np " +
         std::to_string(ranks) + " ";
}
#endif

/// How close two checkpoints must be, per tensor.
struct Closeness {
  double rel = 0;        ///< max |a - b| <= rel * max |a| + abs_floor ...
  double abs_floor = 0;  ///< ... for every tensor, except:
  /// parameters whose exact gradient is 0 (a bias feeding batch norm): their gradient, and so their
  /// optimizer state, is pure rounding noise, compared by absolute error: max |a - b| <= zero_grad_abs.
  std::vector<std::string> zero_grad;
  double zero_grad_abs = 0;
};

/// Checks every tensor of checkpoint b against a (model and optimizer state, same names and shapes) per
/// tensor, so a wrong small tensor (a bias) cannot hide behind a large one.
inline void check_checkpoints_close(const std::string& path_a, const std::string& path_b, const Closeness& c) {
  const train::Checkpoint a = train::load_checkpoint(path_a), b = train::load_checkpoint(path_b);
  auto zero_grad = [&](const std::string& name) {
    return std::any_of(c.zero_grad.begin(), c.zero_grad.end(),
                       [&](const std::string& p) { return name == p || name.starts_with(p + "."); });
  };
  auto compare = [&](const NamedTensors& ta, const NamedTensors& tb, const std::string& prefix) {
    REQUIRE(ta.size() == tb.size());
    for (size_t i = 0; i < ta.size(); ++i) {
      REQUIRE(ta[i].first == tb[i].first);
      const auto va = ta[i].second.to_vector<double>(), vb = tb[i].second.to_vector<double>();
      REQUIRE(va.size() == vb.size());
      double diff = 0, scale = 0;
      for (size_t j = 0; j < va.size(); ++j) {
        diff = std::max(diff, std::abs(va[j] - vb[j]));
        scale = std::max(scale, std::abs(va[j]));
      }
      INFO(prefix << ta[i].first << ": max |a - b| = " << diff << ", max |a| = " << scale);
      CHECK(diff <= (zero_grad(ta[i].first) ? c.zero_grad_abs : c.rel * scale + c.abs_floor));
    }
  };
  compare(a.model, b.model, "");
  compare(a.optim, b.optim, "optim.");
}

}  // namespace ember::test
