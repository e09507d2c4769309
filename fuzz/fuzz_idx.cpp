/// @file fuzz/fuzz_idx.cpp @brief libFuzzer target: the IDX reader on arbitrary bytes, in memory (parse_idx) and, for gzip input, through a file (read_idx); only ember::Error may escape.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/idx.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_idx: %s\n", what);
  std::abort();
}

/// A file the gzip inputs are written to (one per process, removed at exit).
const std::string& scratch_file() {
  static const std::string path = [] {
    char tmpl[] = "/tmp/ember-fuzz-idx-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd < 0) fail("cannot create a scratch file");
    ::close(fd);
    std::atexit([] { ::unlink(scratch_file().c_str()); });
    return std::string(tmpl);
  }();
  return path;
}

void check(const ember::data::IdxArray& a) {
  if (a.dims.empty()) fail("accepted an array without dimensions");
  if (a.numel() != static_cast<int64_t>(a.data.size())) fail("data size differs from the product of the dimensions");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  try {
    check(ember::data::parse_idx(bytes, "fuzz-input"));
  } catch (const ember::Error& e) {
    if (std::strstr(e.what(), "fuzz-input") == nullptr) fail("an error does not name its source");
  }
  // gzip streams go through the file reader as well (zlib inflate, truncation and trailer checks).
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
    const std::string& path = scratch_file();
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) fail("cannot write the scratch file");
    try {
      check(ember::data::read_idx(path));
    } catch (const ember::Error& e) {
      if (std::strstr(e.what(), path.c_str()) == nullptr) fail("an error does not name the file");
    }
  }
  return 0;
}
