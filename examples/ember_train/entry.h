/// @file examples/ember_train/entry.h @brief ember-train's main() as a function, so that a program embedding it (the tests' instrumented copy) runs exactly the same steps.
#pragma once
#include <functional>

#include "examples/ember_train/cli.h"

namespace ember::train {

/// Parses the flags, validates, makes the process group and runs; prints errors as
/// "ember-train: error: ..." (under mpirun with several ranks it then aborts the job). `adjust`, when
/// set, may change the parsed options before they are validated. Returns the process exit code.
int run_main(int argc, char** argv, const std::function<void(TrainOptions&)>& adjust = nullptr);
/// ember-train-lm's main(): the same with its command line (parse_lm_cli) and "ember-train-lm: error: ...".
int run_lm_main(int argc, char** argv);

}  // namespace ember::train
