/// @file tests/main.cpp @brief Catch2 main of the CPU + emulated-CUDA test binary.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

int main(int argc, char** argv) { return Catch::Session().run(argc, argv); }
