/// @file tests/emulator/main.cpp @brief main of the kernel emulator's own tests (ember_emulator_tests).
#include "tests/catch_session.h"

int main(int argc, char** argv) { return ember::test::run_catch_session(argc, argv); }
