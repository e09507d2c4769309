/// @file examples/ember_train/main.cpp @brief ember-train entry point: parse flags, run, print errors as "ember-train: error: ...".
#include <iostream>

#include "core/error.h"
#include "examples/ember_train/cli.h"
#include "examples/ember_train/train.h"

int main(int argc, char** argv) {
  try {
    ember::train::CliResult cli = ember::train::parse_cli(argc, argv);
    if (cli.exit_now) {
      std::cout << cli.text;
      return cli.exit_code;
    }
    ember::train::run_training(cli.options, std::cout);
    return 0;
  } catch (const ember::Error& e) {
    std::cerr << "ember-train: error: " << e.message() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "ember-train: error: " << e.what() << "\n";
    return 1;
  }
}
