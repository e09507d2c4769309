/// @file examples/ember_train/main.cpp @brief ember-train entry point: parse flags, run, print errors as "ember-train: error: ...".
#include <iostream>
#include <memory>
#include <string>

#include "core/error.h"
#include "examples/ember_train/cli.h"
#include "examples/ember_train/train.h"

namespace {

/// Reports the error; under mpirun with several ranks it then takes the whole job down (MPI_Abort), so
/// the other ranks do not wait for this one in their next collective.
int fail(const std::string& what, const std::shared_ptr<ember::distributed::ProcessGroup>& group) {
  if (group && group->size() > 1) {
    std::cerr << "ember-train: rank " << group->rank() << ": error: " << what << "\n";
    group->abort(1);
  } else {
    std::cerr << "ember-train: error: " << what << "\n";
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::shared_ptr<ember::distributed::ProcessGroup> group;
  try {
    ember::train::CliResult cli = ember::train::parse_cli(argc, argv);
    if (cli.exit_now) {
      std::cout << cli.text;
      return cli.exit_code;
    }
    ember::train::validate(cli.options);
    group = ember::train::make_process_group(cli.options);
    ember::train::run_training(cli.options, std::cout, group);
    return 0;
  } catch (const ember::Error& e) {
    return fail(e.message(), group);
  } catch (const std::exception& e) {
    return fail(e.what(), group);
  }
}
