/// @file core/device.h @brief Device value type: {type, index}, e.g. cpu or cuda:0; RuntimeStats, the counts of what a device type did.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>

namespace ember {

enum class DeviceType : uint8_t { CPU = 0, CUDA = 1 };
inline constexpr int kNumDeviceTypes = 2;

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  constexpr Device() = default;
  constexpr Device(DeviceType t, int i = 0) : type(t), index(i) {}
  /// Parses "cpu", "cuda", "cuda:1". Throws ember::Error on anything else.
  static Device parse(const std::string& s);

  static constexpr Device cpu() { return Device(DeviceType::CPU, 0); }
  static constexpr Device cuda(int i = 0) { return Device(DeviceType::CUDA, i); }
  constexpr bool is_cpu() const { return type == DeviceType::CPU; }
  constexpr bool is_cuda() const { return type == DeviceType::CUDA; }
  constexpr bool operator==(const Device&) const = default;
  std::string str() const;
};

const char* device_type_name(DeviceType t);

/// What Ember's runtime did on the devices of one type, process-wide (all host threads, all devices)
/// since the start or the last reset; counted by the backends in every build, real GPU or emulated.
struct RuntimeStats {
  int64_t kernel_launches = 0;  ///< Ember's own kernels (library calls such as cuBLAS are not counted)
  /// Calls in which Ember blocks the host until the device has done work: copies to the host, stream
  /// or device synchronizations, waits for a collective (not the data loader's copies to the device).
  int64_t host_syncs = 0;
};
inline std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

}  // namespace ember
