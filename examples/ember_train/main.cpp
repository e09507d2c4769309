/// @file examples/ember_train/main.cpp @brief ember-train entry point (examples/ember_train/entry.h).
#include "examples/ember_train/entry.h"

int main(int argc, char** argv) { return ember::train::run_main(argc, argv); }
