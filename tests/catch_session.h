/// @file tests/catch_session.h @brief run_catch_session: the Catch2 runner every test binary's main() calls; Catch2's implementation is compiled once, in tests/catch_session.cpp.
#pragma once

namespace ember::test {

/// Applies the command line and runs the selected tests; returns the exit code (non-zero on a bad
/// command line or a failure). abort_after > 0 stops after that many failed assertions. Exceptions
/// thrown outside a test propagate.
int run_catch_session(int argc, char** argv, int abort_after = 0);

}  // namespace ember::test
