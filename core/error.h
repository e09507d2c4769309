/// @file core/error.h @brief ember::Error and the EMBER_CHECK / EMBER_FAIL macros (file:line + a message naming operands).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace ember {

/// The one exception type Ember throws for bad input, bad configuration or backend failures.
class Error : public std::runtime_error {
 public:
  Error(const std::string& what_arg, const char* file, int line)
      : std::runtime_error(what_arg + " [" + file + ":" + std::to_string(line) + "]"),
        message_(what_arg) {}
  /// The message without the source location.
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void throw_error(const std::string& msg, const char* file, int line);
}  // namespace detail

}  // namespace ember

/// Throws ember::Error("msg...") with file:line when cond is false. Arguments are streamed.
#define EMBER_CHECK(cond, ...)                                                                    \
  do {                                                                                            \
    if (!(cond)) [[unlikely]]                                                                     \
      ::ember::detail::throw_error(::ember::detail::concat(__VA_ARGS__), __FILE__, __LINE__);     \
  } while (0)

/// Unconditionally throws ember::Error with the streamed message.
#define EMBER_FAIL(...) ::ember::detail::throw_error(::ember::detail::concat(__VA_ARGS__), __FILE__, __LINE__)
