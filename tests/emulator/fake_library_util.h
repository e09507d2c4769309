/// @file tests/emulator/fake_library_util.h @brief Helpers of the emulated-library tests (test_fake_cublas.cpp, test_fake_cudnn.cpp): device buffers moved with cudaMemcpy, random data, observing a device fault.
#pragma once
#include <cuda_runtime.h>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstring>
#include <random>
#include <vector>

namespace fake_test {

/// A cudaMalloc'd array; host code reads and writes it only through cudaMemcpy (after synchronizing).
template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t count) : n_(count) { REQUIRE(cudaMalloc(&p_, bytes()) == cudaSuccess); }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return p_; }
  std::size_t size() const { return n_; }
  std::size_t bytes() const { return n_ * sizeof(T); }
  void upload(const std::vector<T>& host) {
    REQUIRE(host.size() == n_);
    REQUIRE(cudaMemcpy(p_, host.data(), bytes(), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  /// Synchronizes the device, then copies the array back.
  std::vector<T> download() const {
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    std::vector<T> host(n_);
    REQUIRE(cudaMemcpy(host.data(), p_, bytes(), cudaMemcpyDeviceToHost) == cudaSuccess);
    return host;
  }

 private:
  std::size_t n_;
  T* p_ = nullptr;
};

/// `n` floats uniform in [-1, 1) from a fixed seed.
inline std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

/// True when every byte of `v` is 0xFF (the emulation's poison).
template <class T>
bool all_poisoned(const std::vector<T>& v, std::size_t from = 0) {
  const auto* b = reinterpret_cast<const unsigned char*>(v.data());
  for (std::size_t i = from * sizeof(T); i < v.size() * sizeof(T); ++i)
    if (b[i] != 0xFF) return false;
  return true;
}

/// Synchronizes and reports whether the queued work faulted with an illegal address (the device's
/// sticky error), then resets the device (the emulator keeps its allocations) for the following tests.
inline bool device_faulted() {
  const bool faulted = cudaDeviceSynchronize() == cudaErrorIllegalAddress;
  (void)cudaDeviceReset();
  (void)cudaGetLastError();
  return faulted;
}

/// Whether the emulation has a second device (the multi-device checks need one).
inline bool has_two_devices() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n >= 2;
}

}  // namespace fake_test
