/// @file kernels/cuda/emulator/fake_api.h @brief Wrapping of the fake library headers (include/*.h): global declarations in the emulated build, namespace ember_fake when the nvcc check (tests/emulator/api_check) compares them with the real headers.
#pragma once

// The fake headers put their declarations between EMBER_FAKE_API_BEGIN and EMBER_FAKE_API_END.
// tests/emulator/api_check/*.cu define EMBER_FAKE_API_NAMESPACE, include the real header and then the
// fake one by its path, and static_assert that every fake declaration matches the real one.
#ifdef EMBER_FAKE_API_NAMESPACE
#define EMBER_FAKE_API_BEGIN namespace ember_fake {
#define EMBER_FAKE_API_END }
#else
#define EMBER_FAKE_API_BEGIN
#define EMBER_FAKE_API_END
#endif
