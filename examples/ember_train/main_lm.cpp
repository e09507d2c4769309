/// @file examples/ember_train/main_lm.cpp @brief ember-train-lm entry point (examples/ember_train/entry.h): a GPT on Debian's fortunes.
#include "examples/ember_train/entry.h"

int main(int argc, char** argv) { return ember::train::run_lm_main(argc, argv); }
