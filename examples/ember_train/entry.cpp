/// @file examples/ember_train/entry.cpp @brief run_main and run_lm_main: parse flags, run, print errors as "ember-train: error: ..." (or ember-train-lm).
#include "examples/ember_train/entry.h"

#include <iostream>
#include <memory>
#include <string>

#include "core/error.h"
#include "examples/ember_train/train.h"

namespace ember::train {
namespace {


/// Reports the error; under mpirun with several ranks it then takes the whole job down (MPI_Abort), so
/// the other ranks do not wait for this one in their next collective.
int fail(const char* program, const std::string& what, const std::shared_ptr<distributed::ProcessGroup>& group) {
  if (group && group->size() > 1) {
    std::cerr << program << ": rank " << group->rank() << ": error: " << what << "\n";
    group->abort(1);
  } else {
    std::cerr << program << ": error: " << what << "\n";
  }
  return 1;
}

using Parser = CliResult (*)(int, const char* const*);

int run(int argc, char** argv, const std::function<void(TrainOptions&)>& adjust, Parser parse, const char* program) {
  std::shared_ptr<distributed::ProcessGroup> group;
  try {
    CliResult cli = parse(argc, argv);
    if (cli.exit_now) {
      std::cout << cli.text;
      return cli.exit_code;
    }
    if (adjust) adjust(cli.options);
    validate(cli.options);
    group = make_process_group(cli.options);
    run_training(cli.options, std::cout, group);
    return 0;
  } catch (const Error& e) {
    return fail(program, e.message(), group);
  } catch (const std::exception& e) {
    return fail(program, e.what(), group);
  } catch (...) {  // not derived from std::exception: still an error message and exit status 1, not std::terminate
    return fail(program, "an unknown exception", group);
  }
}

}  // namespace

int run_main(int argc, char** argv, const std::function<void(TrainOptions&)>& adjust) {
  return run(argc, argv, adjust, parse_cli, "ember-train");
}

int run_lm_main(int argc, char** argv) { return run(argc, argv, nullptr, parse_lm_cli, "ember-train-lm"); }

}  // namespace ember::train
