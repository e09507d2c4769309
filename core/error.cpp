/// @file core/error.cpp @brief Out-of-line throw for EMBER_CHECK (keeps the macro small at call sites).
#include "core/error.h"

namespace ember::detail {
void throw_error(const std::string& msg, const char* file, int line) { throw Error(msg, file, line); }
}  // namespace ember::detail
