/// @file tests/emulator/main.cpp @brief Catch2 main of the kernel emulator's own tests (ember_emulator_tests).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
