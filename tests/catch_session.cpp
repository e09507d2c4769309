/// @file tests/catch_session.cpp @brief Catch2's implementation and the runner of tests/catch_session.h, compiled once for all test binaries (it is the slowest file of the suite to compile).
#define CATCH_CONFIG_RUNNER
#include "tests/catch_session.h"

#include <catch2/catch.hpp>

namespace ember::test {

int run_catch_session(int argc, char** argv, int abort_after) {
  Catch::Session session;
  if (abort_after > 0) session.configData().abortAfter = abort_after;
  const int rc = session.applyCommandLine(argc, argv);
  return rc != 0 ? rc : session.run();
}

}  // namespace ember::test
