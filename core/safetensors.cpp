/// @file core/safetensors.cpp @brief safetensors serialization/parsing with strict header validation, and atomic file writes.
#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/grad_mode.h"
#include "core/error.h"

namespace ember {

// The data section is raw little-endian; Ember copies it as is, which needs a little-endian host.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

using ordered_json = nlohmann::ordered_json;
constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the limit of the reference implementation

bool parse_dtype(const std::string& s, DType& out) {
  if (s == "F32") { out = DType::f32; return true; }
  if (s == "F64") { out = DType::f64; return true; }
  if (s == "I64") { out = DType::i64; return true; }
  return false;
}

bool is_known_foreign_dtype(const std::string& s) {
  static const std::set<std::string> known{"BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32",
                                           "U32", "U64", "F8_E4M3", "F8_E5M2"};
  return known.count(s) > 0;
}

std::string errno_text() { return std::strerror(errno); }

/// A CPU, contiguous, detached copy (or the tensor itself when it already is one).
Tensor host_contiguous(const Tensor& t) {
  NoGradGuard no_grad;
  Tensor h = t.detach();
  if (!h.device().is_cpu()) h = h.to(Device::cpu());
  if (!h.is_contiguous()) h = h.contiguous();
  return h;
}

/// A JSON value for an error message: scalars as written, containers by their type only (dumping a
/// deeply nested array would recurse once per level).
std::string brief(const nlohmann::json& v) {
  return v.is_primitive() ? v.dump() : std::string("a JSON ") + v.type_name();
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& source, const std::string& name, const nlohmann::json& v) {
  const std::string where = "safetensors " + source + ": tensor '" + name + "'";
  EMBER_CHECK(v.is_object(), where, ": header entry is not a JSON object");
  EMBER_CHECK(v.contains("dtype") && v["dtype"].is_string(), where, ": missing or non-string \"dtype\"");
  EMBER_CHECK(v.contains("shape") && v["shape"].is_array(), where, ": missing or non-array \"shape\"");
  EMBER_CHECK(v.contains("data_offsets") && v["data_offsets"].is_array() && v["data_offsets"].size() == 2,
              where, ": missing \"data_offsets\" [begin, end]");
  for (const auto& [key, _] : v.items())
    EMBER_CHECK(key == "dtype" || key == "shape" || key == "data_offsets", where, ": unexpected key \"", key, "\"");
  Entry e{name, DType::f32, {}, 0, 0};
  const std::string dt = v["dtype"].get<std::string>();
  if (!parse_dtype(dt, e.dtype)) {
    EMBER_FAIL(where, ": dtype ", dt, is_known_foreign_dtype(dt) ? " is not supported by Ember" : " is unknown",
               " (supported: F32, F64, I64)");
  }
  // The product of the non-zero dimensions must fit int64 (element counts and strides are int64), and
  // so must the byte count.
  uint64_t nonzero_product = 1, numel = 1, expected = 0;
  bool too_large = false;
  for (const auto& d : v["shape"]) {
    EMBER_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), where,
                ": shape entries must be non-negative integers, got ", brief(d));
    const uint64_t n = d.get<uint64_t>();
    too_large = too_large || n > static_cast<uint64_t>(INT64_MAX) ||
                (n != 0 && __builtin_mul_overflow(nonzero_product, n, &nonzero_product));
    numel *= too_large ? 1 : n;
    e.shape.push_back(too_large ? 0 : static_cast<int64_t>(n));
  }
  too_large = too_large || nonzero_product > static_cast<uint64_t>(INT64_MAX) ||
              __builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(e.dtype)), &expected) ||
              expected > static_cast<uint64_t>(INT64_MAX);
  EMBER_CHECK(!too_large, where, ": shape ", v["shape"].size() <= 8 ? v["shape"].dump() : "(" + std::to_string(v["shape"].size()) + " dimensions)",
              " is too large (more than 2^63 elements or bytes)");
  for (const auto& o : v["data_offsets"])
    EMBER_CHECK(o.is_number_unsigned() || (o.is_number_integer() && o.get<int64_t>() >= 0), where,
                ": data_offsets must be non-negative integers, got ", brief(o));
  e.begin = v["data_offsets"][0].get<uint64_t>();
  e.end = v["data_offsets"][1].get<uint64_t>();
  EMBER_CHECK(e.begin <= e.end, where, ": data_offsets [", e.begin, ", ", e.end, "] run backwards");
  EMBER_CHECK(e.end - e.begin == expected, where, ": data_offsets [", e.begin, ", ", e.end, "] hold ",
              e.end - e.begin, " bytes but ", dt, shape_str(e.shape), " needs ", expected);
  return e;
}

}  // namespace

Tensor SafetensorsContent::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  return Tensor();
}

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
  }
  return "?";
}

std::string serialize_safetensors(const NamedTensors& tensors, const SafetensorsMetadata& metadata) {
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json meta = ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::vector<Tensor> host;
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    EMBER_CHECK(!name.empty(), "safetensors: empty tensor name");
    EMBER_CHECK(name != "__metadata__", "safetensors: a tensor may not be called \"__metadata__\"");
    EMBER_CHECK(seen.insert(name).second, "safetensors: duplicate tensor name '", name, "'");
    EMBER_CHECK(t.defined(), "safetensors: tensor '", name, "' is undefined");
    host.push_back(host_contiguous(t));
    const uint64_t bytes = host.back().nbytes();
    ordered_json entry = ordered_json::object();
    entry["dtype"] = safetensors_dtype_name(t.dtype());
    entry["shape"] = t.shape();
    entry["data_offsets"] = {offset, offset + bytes};
    header[name] = entry;
    offset += bytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + json.size() + offset);
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  out += json;
  for (const Tensor& h : host) out.append(static_cast<const char*>(h.data_ptr()), h.nbytes());
  return out;
}

SafetensorsContent parse_safetensors(const std::string& bytes, const std::string& source) {
  const std::string where = "safetensors " + source;
  EMBER_CHECK(bytes.size() >= 8, where, ": truncated: ", bytes.size(), " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  EMBER_CHECK(n <= kMaxHeaderBytes, where, ": header length ", n, " exceeds the 100 MB limit (not a safetensors file?)");
  EMBER_CHECK(n <= bytes.size() - 8, where, ": truncated: header length ", n, " but only ", bytes.size() - 8,
              " bytes follow");
  const std::string header_text = bytes.substr(8, n);
  EMBER_CHECK(!header_text.empty() && header_text[0] == '{', where, ": header does not start with '{'");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_text);
  } catch (const nlohmann::json::exception& e) {
    EMBER_FAIL(where, ": header is not valid JSON (", e.what(), ")");
  }
  EMBER_CHECK(header.is_object(), where, ": header is not a JSON object");

  SafetensorsContent out;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      EMBER_CHECK(value.is_object(), where, ": __metadata__ is not a JSON object");
      for (const auto& [mk, mv] : value.items()) {
        EMBER_CHECK(mv.is_string(), where, ": __metadata__ value of '", mk, "' is not a string");
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(source, key, value));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const uint64_t data_size = bytes.size() - 8 - n;
  uint64_t expected_begin = 0;
  for (const Entry& e : entries) {
    EMBER_CHECK(e.begin >= expected_begin, where, ": tensor '", e.name, "' overlaps the previous tensor (begins at ",
                e.begin, ", previous ends at ", expected_begin, ")");
    EMBER_CHECK(e.begin == expected_begin, where, ": hole in the data before tensor '", e.name, "' (bytes ",
                expected_begin, " to ", e.begin, " are not indexed)");
    EMBER_CHECK(e.end <= data_size, where, ": truncated: tensor '", e.name, "' ends at byte ", e.end,
                " of the data but the data section has ", data_size, " bytes");
    expected_begin = e.end;
  }
  EMBER_CHECK(expected_begin == data_size, where, ": ", data_size - expected_begin,
              " bytes after the last tensor are not indexed by the header");
  const char* data = bytes.data() + 8 + n;
  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, TensorOptions{}.set_dtype(e.dtype));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), data + e.begin, e.end - e.begin);
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmpl = (dir / (target.filename().string() + ".tmp.XXXXXX")).string();
  const int fd = ::mkstemp(tmpl.data());
  EMBER_CHECK(fd >= 0, "cannot create a temporary file beside ", path, ": ", errno_text());
  auto fail = [&](const char* what) {
    const std::string err = errno_text();
    ::close(fd);
    ::unlink(tmpl.c_str());
    EMBER_FAIL("writing ", path, ": ", what, " failed: ", err);
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("write");
    done += static_cast<size_t>(w);
  }
  if (::fchmod(fd, 0644) != 0) fail("chmod");
  if (::fsync(fd) != 0) fail("fsync");
  if (::close(fd) != 0) {
    const std::string err = errno_text();
    ::unlink(tmpl.c_str());
    EMBER_FAIL("writing ", path, ": close failed: ", err);
  }
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    const std::string err = errno_text();
    ::unlink(tmpl.c_str());
    EMBER_FAIL("writing ", path, ": rename from ", tmpl, " failed: ", err);
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {  // best effort: makes the rename itself durable
    ::fsync(dfd);
    ::close(dfd);
  }
}

void save_safetensors(const std::string& path, const NamedTensors& tensors, const SafetensorsMetadata& metadata) {
  write_file_atomically(path, serialize_safetensors(tensors, metadata));
}

SafetensorsContent load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EMBER_CHECK(in.good(), "safetensors ", path, ": cannot open: ", errno_text());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EMBER_CHECK(!in.bad(), "safetensors ", path, ": read error");
  return parse_safetensors(bytes, path);
}

}  // namespace ember
