/// @file tests/main.cpp @brief main of the CPU + emulated-CUDA test binary.
#include "tests/catch_session.h"

int main(int argc, char** argv) { return ember::test::run_catch_session(argc, argv); }
