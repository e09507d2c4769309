/// @file core/dtype.h @brief Element types: f32 (everywhere), f64 (CPU, gradient checks), i64 (labels, indices).
#pragma once
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <type_traits>

namespace ember {

enum class DType : uint8_t { f32 = 0, f64 = 1, i64 = 2 };

constexpr size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 8; }
constexpr bool is_floating(DType t) { return t == DType::f32 || t == DType::f64; }
const char* dtype_name(DType t);
inline std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }

template <class T> struct type_tag { using type = T; };

/// Calls f(type_tag<T>{}) with T = float or double for a floating dtype; throws otherwise.
/// `what` names the operation for the error message.
template <class F>
decltype(auto) visit_floating(DType t, const char* what, F&& f);

}  // namespace ember

#include "core/error.h"

namespace ember {
template <class F>
decltype(auto) visit_floating(DType t, const char* what, F&& f) {
  switch (t) {
    case DType::f32: return f(type_tag<float>{});
    case DType::f64: return f(type_tag<double>{});
    default: break;
  }
  EMBER_FAIL(what, ": expected a floating dtype (f32 or f64), got ", dtype_name(t));
}
}  // namespace ember
