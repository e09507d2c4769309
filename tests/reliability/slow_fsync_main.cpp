/// @file tests/reliability/slow_fsync_main.cpp @brief ember-train-slow-fsync: ember-train whose fsync() sleeps, so that a test killing it lands inside checkpoint writes often (tests/reliability/test_kill_checkpoint.cpp).
//
// The library has no write-delay hook. This test program defines fsync() itself: the dynamic linker
// resolves libember's fsync calls to this definition (exported with --export-dynamic-symbol, see
// tests/reliability/CMakeLists.txt), which sleeps EMBER_TEST_FSYNC_DELAY_US microseconds per started
// 64 KiB of the file, then calls the C library's fsync. A checkpoint write is then slow between its data
// being written to the temporary file and its rename, the window a kill must not corrupt.
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "examples/ember_train/entry.h"

namespace {

long fsync_delay_us() {
  static const long us = [] {
    const char* v = std::getenv("EMBER_TEST_FSYNC_DELAY_US");
    return v == nullptr ? 0L : std::strtol(v, nullptr, 10);
  }();
  return us;
}

}  // namespace

extern "C" int fsync(int fd) {
  using Fsync = int (*)(int);
  static const Fsync real = reinterpret_cast<Fsync>(dlsym(RTLD_NEXT, "fsync"));
  struct stat st {};
  if (fsync_delay_us() > 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
    ::usleep(static_cast<useconds_t>(fsync_delay_us() * (1 + st.st_size / (64 << 10))));
  return real(fd);
}

int main(int argc, char** argv) { return ember::train::run_main(argc, argv); }
