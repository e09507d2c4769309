/// @file tests/emulator/api_check/api_check.h @brief Compile-time comparison of the emulator's fake CUDA library declarations (namespace ember_fake) with the real headers (global namespace).
//
// Each check TU (compiled by nvcc, so the real headers are the ones in the CUDA toolkit) includes the
// real header, defines EMBER_FAKE_API_NAMESPACE, includes the fake header by its path, maps each fake
// type to the real type it stands for (EMBER_API_MAP), and then asserts:
//  - EMBER_API_SAME_SIGNATURE(f): the fake f, with its types mapped, has the real f's function type;
//  - EMBER_API_SAME_VALUE(X): enumerator (or constant) X has the same value in both;
//  - EMBER_API_SAME_SIZE(T): type T has the same size in both (structs passed by value, ids).
#pragma once
#include <cstddef>
#include <type_traits>

namespace api_check {

/// The real type a fake type stands for: itself unless specialized by EMBER_API_MAP.
template <class T>
struct real {
  using type = T;
};
template <class T>
using real_t = typename real<T>::type;
template <class T>
struct real<T*> {
  using type = real_t<T>*;
};
template <class T>
struct real<const T> {
  using type = const real_t<T>;
};
template <class T, std::size_t N>
struct real<T[N]> {
  using type = real_t<T>[N];
};
template <class R, class... A>
struct real<R(A...)> {
  using type = real_t<R>(real_t<A>...);
};

}  // namespace api_check

/// Declares that ember_fake::FAKE stands for ::REAL.
#define EMBER_API_MAP(FAKE, REAL)     \
  template <>                         \
  struct api_check::real<ember_fake::FAKE> { \
    using type = ::REAL;              \
  }
#define EMBER_API_SAME_SIGNATURE(fn)                                                   \
  static_assert(std::is_same_v<decltype(::fn), api_check::real_t<decltype(ember_fake::fn)>>, \
                #fn ": the fake declaration differs from the real header's")
#define EMBER_API_SAME_VALUE(name)                                                                     \
  static_assert(static_cast<long long>(::name) == static_cast<long long>(ember_fake::name), \
                #name ": the fake value differs from the real header's")
#define EMBER_API_SAME_SIZE(type) \
  static_assert(sizeof(::type) == sizeof(ember_fake::type), #type ": the fake size differs from the real header's")
