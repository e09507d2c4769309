/// @file core/safetensors.h @brief Reading and writing the safetensors checkpoint format (PyTorch/HF compatible), atomically.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace ember {

/// The "__metadata__" map of a safetensors header: string keys to string values.
using SafetensorsMetadata = std::map<std::string, std::string>;

/// The content of a safetensors file: tensors in the order of their data offsets, and the metadata.
struct SafetensorsContent {
  NamedTensors tensors;
  SafetensorsMetadata metadata;
  /// The tensor called `name`, or an undefined Tensor.
  Tensor find(const std::string& name) const;
};

/// The safetensors dtype string: "F32", "F64", "I64".
const char* safetensors_dtype_name(DType t);

/// Serializes to the safetensors layout: u64 little-endian header length N, N bytes of JSON header
/// ({"__metadata__": {...}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}, padded with
/// spaces to a multiple of 8), then the raw little-endian data of each tensor, in the given order,
/// without gaps. Tensors may live on any device and be non-contiguous. Throws on an empty or duplicate
/// name, or a name equal to "__metadata__".
std::string serialize_safetensors(const NamedTensors& tensors, const SafetensorsMetadata& metadata = {});

/// Parses safetensors bytes into CPU tensors. `source` names the input in errors. Throws ember::Error
/// naming the problem for: fewer than 8 bytes, a header length beyond the input, invalid JSON, a
/// malformed entry, an unsupported dtype, offsets that do not match the shape, overlap, leave holes or
/// run past the data, and non-string metadata.
SafetensorsContent parse_safetensors(const std::string& bytes, const std::string& source);

/// Writes a file atomically: a temporary file beside `path`, fsync, rename over `path`, fsync of the directory.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const SafetensorsMetadata& metadata = {});
/// Reads and parses a file (see parse_safetensors).
SafetensorsContent load_safetensors(const std::string& path);

/// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename, fsync dir).
void write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace ember
