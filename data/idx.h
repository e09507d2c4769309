/// @file data/idx.h @brief Reader for the IDX format of (Fashion-)MNIST, plain or gzip-compressed, with strict validation.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ember::data {

/// An IDX array of unsigned bytes (element type 0x08): its dimensions and its row-major data.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
  int64_t numel() const;
};

/// Parses an IDX image from memory. `source` names it in error messages. Throws ember::Error on a bad
/// magic number, an element type other than 0x08 (unsigned byte), zero dimensions, a header or data
/// shorter than the dimensions say (truncated) or bytes left over after the data.
IdxArray parse_idx(const std::vector<uint8_t>& bytes, const std::string& source);

/// Reads an IDX file; `.gz` or plain (zlib detects gzip by its magic). Throws ember::Error when the file
/// cannot be opened, the gzip stream is corrupt or truncated, or the IDX content is malformed.
IdxArray read_idx(const std::string& path);

}  // namespace ember::data
