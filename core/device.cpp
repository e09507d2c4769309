/// @file core/device.cpp @brief Device and DType names and parsing.
#include "core/device.h"

#include "core/dtype.h"
#include "core/error.h"

namespace ember {

const char* device_type_name(DeviceType t) { return t == DeviceType::CPU ? "cpu" : "cuda"; }

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : std::string("cuda:") + std::to_string(index);
}

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5) {
    size_t pos = 0;
    int idx = -1;
    try {
      idx = std::stoi(s.substr(5), &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    if (pos == s.size() - 5 && idx >= 0) return cuda(idx);
  }
  EMBER_FAIL("invalid device string '", s, "' (expected cpu, cuda or cuda:N)");
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::i64: return "i64";
  }
  return "?";
}

}  // namespace ember
