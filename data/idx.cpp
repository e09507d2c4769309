/// @file data/idx.cpp @brief IDX parsing (big-endian header, unsigned-byte payload) and gzip decompression through zlib.
#include "data/idx.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace ember::data {

namespace {

constexpr uint8_t kUnsignedByte = 0x08;
constexpr int64_t kMaxFileBytes = int64_t{1} << 32;  // 4 GiB: far above any IDX data set, guards a bad header

const char* idx_type_name(uint8_t code) {
  switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown";
  }
}

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};

}  // namespace

int64_t IdxArray::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

IdxArray parse_idx(const std::vector<uint8_t>& bytes, const std::string& source) {
  const auto size = static_cast<int64_t>(bytes.size());
  EMBER_CHECK(size >= 4, "IDX file ", source, ": truncated: ", size, " bytes, shorter than the 4-byte magic number");
  EMBER_CHECK(bytes[0] == 0 && bytes[1] == 0, "IDX file ", source, ": bad magic number (first two bytes are ",
              int{bytes[0]}, " and ", int{bytes[1]}, ", expected 0 and 0): not an IDX file");
  const uint8_t type = bytes[2];
  EMBER_CHECK(type == kUnsignedByte, "IDX file ", source, ": element type 0x", std::hex, int{type}, std::dec, " (",
              idx_type_name(type), ") is not supported; only 0x08 (unsigned byte) is");
  const int ndims = bytes[3];
  EMBER_CHECK(ndims >= 1, "IDX file ", source, ": zero dimensions in the header");
  const int64_t header = 4 + 4 * int64_t{ndims};
  EMBER_CHECK(size >= header, "IDX file ", source, ": truncated header: ", size, " bytes, the ", ndims,
              " dimensions need ", header);
  IdxArray out;
  int64_t numel = 1;
  for (int i = 0; i < ndims; ++i) {
    const int64_t d = read_be32(bytes.data() + 4 + 4 * i);
    out.dims.push_back(d);
    // Checked before multiplying: numel (up to 2^32) times d (up to 2^32 - 1) would overflow int64.
    EMBER_CHECK(d == 0 || numel <= kMaxFileBytes / d, "IDX file ", source, ": dimensions exceed 4 GiB of data");
    numel *= d;
  }
  const int64_t payload = size - header;
  EMBER_CHECK(payload >= numel, "IDX file ", source, ": truncated: dimensions need ", numel, " data bytes but only ",
              payload, " are present");
  EMBER_CHECK(payload == numel, "IDX file ", source, ": malformed: ", payload - numel,
              " unexpected bytes after the data (dimensions need ", numel, ")");
  out.data.assign(bytes.begin() + header, bytes.end());
  return out;
}

IdxArray read_idx(const std::string& path) {
  errno = 0;
  std::unique_ptr<gzFile_s, GzCloser> f(gzopen(path.c_str(), "rb"));
  EMBER_CHECK(f != nullptr, "IDX file ", path, ": cannot open: ", errno != 0 ? std::strerror(errno) : "out of memory");
  std::vector<uint8_t> bytes;
  constexpr unsigned kChunk = 1u << 20;
  for (;;) {
    const size_t at = bytes.size();
    bytes.resize(at + kChunk);
    const int n = gzread(f.get(), bytes.data() + at, kChunk);
    if (n < 0) {
      int errnum = 0;
      const char* msg = gzerror(f.get(), &errnum);
      EMBER_FAIL("IDX file ", path, ": corrupt gzip data (", msg ? msg : "unknown zlib error", ")");
    }
    bytes.resize(at + static_cast<size_t>(n));
    EMBER_CHECK(static_cast<int64_t>(bytes.size()) <= kMaxFileBytes, "IDX file ", path, ": larger than 4 GiB");
    if (n == 0) break;
  }
  // gzread reports a stream cut short (missing trailer) as end of file plus an error state.
  int errnum = Z_OK;
  const char* msg = gzerror(f.get(), &errnum);
  EMBER_CHECK(errnum == Z_OK || errnum == Z_STREAM_END, "IDX file ", path, ": truncated or corrupt gzip data (",
              msg ? msg : "unknown zlib error", ")");
  return parse_idx(bytes, path);
}

}  // namespace ember::data
