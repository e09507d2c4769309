/// @file fuzz/fuzz_safetensors.cpp @brief libFuzzer target: parse_safetensors on arbitrary bytes; only ember::Error may escape, and whatever parses must survive a serialize/parse round trip unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/safetensors.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_safetensors: %s\n", what);
  std::abort();  // a finding: libFuzzer saves the input
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  ember::SafetensorsContent c;
  try {
    c = ember::parse_safetensors(bytes, "fuzz-input");
  } catch (const ember::Error& e) {
    if (std::strstr(e.what(), "fuzz-input") == nullptr) fail("an error does not name its source");
    return 0;  // rejected with a message: the expected outcome for most inputs
  }
  // Accepted: writing it back and reading that again must give the same names, dtypes, shapes, bytes
  // and metadata (the writer's output is always valid for the reader).
  const std::string again = ember::serialize_safetensors(c.tensors, c.metadata);
  const ember::SafetensorsContent d = ember::parse_safetensors(again, "round trip");
  if (d.metadata != c.metadata) fail("metadata changed in a round trip");
  if (d.tensors.size() != c.tensors.size()) fail("tensor count changed in a round trip");
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const auto& [name, t] = c.tensors[i];
    const auto& [name2, u] = d.tensors[i];
    if (name != name2 || t.dtype() != u.dtype() || t.shape() != u.shape() || t.nbytes() != u.nbytes())
      fail("a tensor's name, dtype or shape changed in a round trip");
    if (t.nbytes() != 0 && std::memcmp(t.data_ptr(), u.data_ptr(), t.nbytes()) != 0)
      fail("a tensor's data changed in a round trip");
  }
  return 0;
}
